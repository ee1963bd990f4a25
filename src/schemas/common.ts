import { Type, type TProperties } from 'typebox'
import { MAX_LIMIT } from '../lib/limits.ts'
import {
  LIMIT_PATTERN, MAX_USER_ID, USER_ID_PATTERN, USER_ID_RULE, LIMIT_RULE,
  invalidLimitMessage, invalidUserIdsMessage, parseUserId
} from '../lib/user-id.ts'

/** Schemas every route shares: the error body, user ids and limits. Ids and limits follow the rules
 *  of lib/user-id.ts (same patterns, same bounds); Ajv runs without type coercion, so what a schema
 *  accepts is exactly what the handler reads. */

const errorFields = {
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  request_id: Type.Optional(Type.String())
}

/** Every error body: what lib/errors.ts errorBody builds. */
export const ErrorSchema = Type.Object(errorFields, { $id: 'Error' })

/** The error body of a route whose errors carry more (a RecError's `details`, sent by the app's
 *  error handler): the common fields, in their order, then `extra`. */
export const errorSchema = <P extends TProperties>(extra: P) => Type.Object({ ...errorFields, ...extra })

/** Marks the id and limit schemas, so that a validation error on any of them gets the one message
 *  of lib/user-id.ts whatever the route (see inputErrorMessage). Ajv is told it is an annotation. */
export const INPUT_KIND = 'x-rec-input'
type Kind = 'user-id' | 'user-id-list' | 'limit'
const kind = (k: Kind) => ({ [INPUT_KIND]: k })

/** A user id as text: in a path, in a query, or as a string in a JSON body. */
export const UserIdString = Type.String({ pattern: USER_ID_PATTERN, description: USER_ID_RULE, ...kind('user-id') })
/** A user id as a JSON number (POST /events takes only this form). */
export const UserIdInteger = Type.Integer({ minimum: 1, maximum: MAX_USER_ID, ...kind('user-id') })
/** A user id in a JSON body: a number or a decimal string. */
export const UserIdJson = Type.Union([UserIdInteger, UserIdString], kind('user-id'))

export const LimitString = Type.String({ pattern: LIMIT_PATTERN, description: LIMIT_RULE, ...kind('limit') })
export const LimitInteger = Type.Integer({ minimum: 1, maximum: MAX_LIMIT, ...kind('limit') })
/** A limit in a JSON body: a number or a decimal string. */
export const LimitJson = Type.Union([LimitInteger, LimitString], kind('limit'))

export const UserIdParams = Type.Object({ id: UserIdString })
export const LimitQuery = Type.Object({ limit: Type.Optional(LimitString) }, { additionalProperties: false })

/** `user_ids=1,2,3` in a query: room for maxIds ids of 10 digits and their commas. */
export const userIdCsv = (maxIds: number) => Type.String({
  minLength: 1,
  maxLength: 11 * maxIds,
  pattern: `^(?:${USER_ID_PATTERN.slice(1, -1)})(?:,(?:${USER_ID_PATTERN.slice(1, -1)}))*$`,
  description: `comma-separated user ids, each ${USER_ID_RULE}`,
  ...kind('user-id-list')
})

/** `"user_ids": [...]` in a JSON body. */
export const userIdArray = (maxIds: number) => Type.Array(UserIdJson, { minItems: 1, maxItems: maxIds })

/** What Fastify hands the error handler for a schema failure (Ajv errors, with `verbose`). */
interface ValidationEntry { instancePath: string, data?: unknown, parentSchema?: Record<string, unknown> }

/** The message for a failed id or limit schema, the same one the handlers' parsers give; undefined
 *  for any other validation error (Ajv's own message is kept). `part` is the request part that
 *  failed (params, query or body), used to name every bad entry of a list as the query form does. */
export function inputErrorMessage (errors: ValidationEntry[], part: unknown): string | undefined {
  for (const e of errors) {
    const k = e.parentSchema?.[INPUT_KIND] as Kind | undefined
    if (k === 'limit') return invalidLimitMessage(e.data)
    if (k === 'user-id-list') {
      const bad = typeof e.data === 'string' && e.data !== '' ? e.data.split(',').filter((s) => parseUserId(s) === undefined) : []
      if (bad.length > 0) return invalidUserIdsMessage(bad)
    } else if (k === 'user-id') {
      const list = at(part, e.instancePath.split('/').slice(1, -1))
      const bad = Array.isArray(list) ? list.filter((v) => parseUserId(v) === undefined) : []
      return invalidUserIdsMessage(bad.length > 0 ? bad : [e.data])
    }
  }
  return undefined
}

/** The value at a JSON pointer's (already split) segments. */
function at (root: unknown, segments: string[]): unknown {
  let v = root
  for (const s of segments) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[s.replaceAll('~1', '/').replaceAll('~0', '~')]
  }
  return v
}
