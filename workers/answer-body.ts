import fastJson from 'fast-json-stringify'
import { ItemSchema, RecommendationSchema } from '../src/schemas/recommendation.ts'
import type { ItemRecommendation, RecommendationBody } from './types.ts'

/** A serialized answer that can be cut to any `limit` without JSON work: `items` is the JSON of
 *  every item joined by commas and `ends[i]` where item i ends in it, so the body for limit L is
 *  `head + items.slice(0, ends[L - 1]) + tail`. A user is scored once with MAX_LIMIT items and
 *  every limit is served from that one result (the ranking is a total order, so the top L of the
 *  top MAX_LIMIT are the top L). An error body is all head. */
export interface AnswerBody {
  head: string
  items: string
  ends: number[]
  tail: string
  /** the last body encoded for sending, memoized on the cached answer (see encodedBody) */
  encoded?: { limit: number, bytes: Buffer }
}

// The types are the schemas' own (types.ts derives them), so each serializer takes what it encodes.
const serializeBody: (b: RecommendationBody) => string = fastJson(RecommendationSchema)
const serializeItem: (i: ItemRecommendation) => string = fastJson(ItemSchema)
const ITEMS_OPEN = '"items":['

export function toAnswerBody (body: RecommendationBody): AnswerBody {
  const parts = body.recommendations.items.map(serializeItem)
  const ends: number[] = []
  let at = -1
  for (const p of parts) ends.push(at += p.length + 1)
  const s = serializeBody({ ...body, recommendations: { ...body.recommendations, items: [] } })
  // Only metadata follows the items, and none of its strings can contain this text.
  const cut = s.lastIndexOf(`${ITEMS_OPEN}]`) + ITEMS_OPEN.length
  return { head: s.slice(0, cut), items: parts.join(','), ends, tail: s.slice(cut) }
}

export function errorAnswerBody (json: string): AnswerBody { return { head: json, items: '', ends: [], tail: '' } }

export function bodyFor (b: AnswerBody, limit: number): string {
  const n = b.ends.length
  if (n === 0) return b.head + b.tail
  return b.head + (limit >= n ? b.items : b.items.slice(0, b.ends[limit - 1])) + b.tail
}

/** The body for `limit` as UTF-8 bytes. Memoized for the last limit asked, since nearly every
 *  request asks for the same one: a hit then neither joins strings nor encodes them. */
export function encodedBody (b: AnswerBody, limit: number): Buffer {
  const e = b.encoded
  if (e !== undefined && e.limit === limit) return e.bytes
  const bytes = Buffer.from(bodyFor(b, limit), 'utf8')
  b.encoded = { limit, bytes }
  return bytes
}

/** What an answer holds in memory, with room for one memoized encoded body of a usual limit. */
export function bodyBytes (b: AnswerBody): number {
  return 2 * (b.head.length + b.tail.length) + b.items.length + Math.min(b.items.length, 4096) + 8 * b.ends.length
}
