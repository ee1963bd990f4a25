import { badRequest } from './errors.ts'

export const MAX_USER_ID = 2_147_483_647

/** Strict decimal parse: no signs, exponents, hex, whitespace, fractions or leading zeros, so
 *  `1e3`, ` 12`, `0x10` and `1.5` are 400s rather than silently different users. */
export function parseUserId (raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 1 && raw <= MAX_USER_ID ? raw : undefined
  if (typeof raw !== 'string' || !/^[1-9][0-9]{0,9}$/.test(raw)) return undefined
  const n = Number(raw)
  return n <= MAX_USER_ID ? n : undefined
}

export function requireUserId (raw: unknown): number {
  const id = parseUserId(raw)
  if (id === undefined) throw badRequest(`invalid user id ${JSON.stringify(raw)}: expected an integer from 1 to ${MAX_USER_ID}`)
  return id
}

/** Validates a whole list; every bad entry is named, duplicates collapse, order of first sight kept. */
export function requireUserIds (raw: unknown[], max: number): number[] {
  if (raw.length === 0) throw badRequest('user_ids must not be empty')
  const bad = raw.filter((r) => parseUserId(r) === undefined)
  if (bad.length > 0) throw badRequest(`invalid user ids: ${bad.slice(0, 20).map((b) => JSON.stringify(b)).join(', ')}${bad.length > 20 ? ` (+${bad.length - 20} more)` : ''}`)
  const ids = [...new Set(raw.map((r) => parseUserId(r) as number))]
  if (ids.length > max) throw badRequest(`too many user ids: ${ids.length} (max ${max})`)
  return ids
}
