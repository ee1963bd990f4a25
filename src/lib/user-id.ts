import { RecError } from './errors.ts'
import { MAX_LIMIT } from './limits.ts'

/** The one way user ids and limits are read, on every route (the schemas in schemas/common.ts use
 *  the same patterns, and these parsers are what handlers call):
 *  - a user id is an integer from 1 to MAX_USER_ID (users.id is a signed INT);
 *  - a limit is an integer from 1 to MAX_LIMIT;
 *  - written as text (a path, a query, or a string in a JSON body) it is plain decimal digits with no
 *    sign, leading zero, fraction, exponent, hex, separator or whitespace, so `1e3`, ` 12`, `0x10`,
 *    `+5`, `01` and `1.5` are 400s rather than silently different users;
 *  - in a JSON body it may also be a JSON number that is such an integer (`true`, `1.5`, `-1` and
 *    `0` are 400s). POST /events, whose event schema is typed, takes JSON numbers only.
 *  A bad id or limit is a 400 with code REC_ERR_VALIDATION and the same message on every route. */
export const MAX_USER_ID = 2_147_483_647

export const VALIDATION_CODE = 'REC_ERR_VALIDATION'

/** An anchored regex source matching exactly the decimal integers 1..max, without leading zeros. */
export function decimalRangePattern (max: number): string {
  if (!Number.isSafeInteger(max) || max < 1) throw new Error(`bad range maximum ${max}`)
  const top = String(max)
  const alternatives: string[] = []
  // Every number with fewer digits than max.
  if (top.length > 1) alternatives.push(top.length === 2 ? '[1-9][0-9]?' : `[1-9][0-9]{0,${top.length - 2}}`)
  // Numbers with as many digits: a prefix of max, then one smaller digit, then anything.
  for (let i = 0; i < top.length; i++) {
    const low = i === 0 ? 1 : 0
    const high = Number(top[i]) - 1
    if (high < low) continue
    const digit = low === high ? String(low) : `[${low}-${high}]`
    const rest = top.length - i - 1
    alternatives.push(`${top.slice(0, i)}${digit}${rest === 0 ? '' : rest === 1 ? '[0-9]' : `[0-9]{${rest}}`}`)
  }
  alternatives.push(top)
  return `^(?:${alternatives.join('|')})$`
}

export const USER_ID_PATTERN = decimalRangePattern(MAX_USER_ID)
export const LIMIT_PATTERN = decimalRangePattern(MAX_LIMIT)
const USER_ID_RE = new RegExp(USER_ID_PATTERN)
const LIMIT_RE = new RegExp(LIMIT_PATTERN)

export const USER_ID_RULE = `an integer from 1 to ${MAX_USER_ID} in plain decimal digits`
export const LIMIT_RULE = `an integer from 1 to ${MAX_LIMIT} in plain decimal digits`

function parseBounded (raw: unknown, max: number, re: RegExp): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 1 && raw <= max ? raw : undefined
  return typeof raw === 'string' && re.test(raw) ? Number(raw) : undefined
}

/** A user id (number or decimal string, see above), or undefined when it is not one. */
export function parseUserId (raw: unknown): number | undefined {
  return parseBounded(raw, MAX_USER_ID, USER_ID_RE)
}

/** A limit (number or decimal string, see above), or undefined when it is not one. */
export function parseLimit (raw: unknown): number | undefined {
  return parseBounded(raw, MAX_LIMIT, LIMIT_RE)
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v)

/** The one message for bad ids: every bad entry named (up to 20), then the rule. */
export function invalidUserIdsMessage (bad: unknown[]): string {
  const named = bad.slice(0, 20).map(show).join(', ') + (bad.length > 20 ? ` (+${bad.length - 20} more)` : '')
  return `invalid user id${bad.length === 1 ? '' : 's'} ${named}: expected ${USER_ID_RULE}`
}

export function invalidLimitMessage (raw: unknown): string {
  return `invalid limit ${show(raw)}: expected ${LIMIT_RULE}`
}

export const invalidInput = (message: string) => new RecError(400, VALIDATION_CODE, message)

export function requireUserId (raw: unknown): number {
  const id = parseUserId(raw)
  if (id === undefined) throw invalidInput(invalidUserIdsMessage([raw]))
  return id
}

/** An absent limit is the default; anything else must be a valid limit. */
export function requireLimit (raw: unknown, defaultLimit: number): number {
  if (raw === undefined) return defaultLimit
  const limit = parseLimit(raw)
  if (limit === undefined) throw invalidInput(invalidLimitMessage(raw))
  return limit
}

/** Validates a whole list; every bad entry is named, duplicates collapse, order of first sight kept. */
export function requireUserIds (raw: unknown[], max: number): number[] {
  if (raw.length === 0) throw invalidInput('user_ids must not be empty')
  const bad = raw.filter((r) => parseUserId(r) === undefined)
  if (bad.length > 0) throw invalidInput(invalidUserIdsMessage(bad))
  const ids = [...new Set(raw.map((r) => parseUserId(r) as number))]
  if (ids.length > max) throw invalidInput(`too many user ids: ${ids.length} (max ${max})`)
  return ids
}
