import { Type, type Static } from 'typebox'
import { Compile } from 'typebox/compile'
import { UserIdInteger, errorSchema } from './common.ts'
import { InvalidateResponse } from './recommendation.ts'

/** The wire schemas of POST /events. The route takes the body as an array of anything: entries are
 *  checked one by one in lib/event-writer.ts (with the validators below, then against the
 *  database), so that a bad batch is answered with every bad entry named rather than with Ajv's
 *  first error. */

export const MAX_EVENTS_PER_BATCH = 1000
const MAX_ITEM_ID = 4_294_967_295 // items.id is INT UNSIGNED

// The shared id schema, in its JSON-number form: the same range as every other route.
const UserId = UserIdInteger
const CategoryName = Type.String({ minLength: 1, maxLength: 64 })
// RFC 3339 date-time: a date, a time and a zone (Z or ±hh:mm); a local time without zone is ambiguous.
const At = Type.String({ format: 'date-time', maxLength: 64 })

export const SearchEventSchema = Type.Object({
  type: Type.Literal('search'),
  user_id: UserId,
  category: CategoryName,
  query: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  at: Type.Optional(At)
}, { additionalProperties: false })

export const PurchaseEventSchema = Type.Object({
  type: Type.Literal('purchase'),
  user_id: UserId,
  item_id: Type.Integer({ minimum: 1, maximum: MAX_ITEM_ID }),
  category: Type.Optional(CategoryName),
  at: Type.Optional(At)
}, { additionalProperties: false })

export const EventSchema = Type.Union([SearchEventSchema, PurchaseEventSchema])
export type EventInput = Static<typeof EventSchema>

/** Compiled checks of one entry, for lib/event-writer.ts. */
export const checkSearchEvent = Compile(SearchEventSchema)
export const checkPurchaseEvent = Compile(PurchaseEventSchema)

export const EventsBody = Type.Array(Type.Unknown(), { description: `search and purchase events, 1 to ${MAX_EVENTS_PER_BATCH}` })

/** What was stored, then the invalidation's answer (the users' cached answers are dropped). */
export const EventsResponse = Type.Object({
  stored: Type.Object({ searches: Type.Integer(), purchases: Type.Integer() }),
  ...InvalidateResponse.properties
})

/** One bad entry of a batch: its index in the body and what is wrong with it. */
export const EntryErrorSchema = Type.Object({ index: Type.Integer(), error: Type.String() })
export type EntryError = Static<typeof EntryErrorSchema>

/** A 400 of POST /events: the common error body, with the bad entries when there are some (a
 *  RecError's details, see lib/event-writer.ts InvalidEventsError). */
export const InvalidEventsErrorSchema = errorSchema({
  entries: Type.Optional(Type.Array(EntryErrorSchema))
})
