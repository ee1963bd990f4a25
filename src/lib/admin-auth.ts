import { timingSafeEqual } from 'node:crypto'
import { unauthorized } from './errors.ts'

/** true when `header` is exactly `Bearer <token>`, compared in constant time. An empty token
 *  (ADMIN_TOKEN unset) never matches, so admin endpoints are closed unless a token is configured. */
export function bearerMatches (header: string | undefined, token: string): boolean {
  if (token === '') return false
  const expected = Buffer.from(`Bearer ${token}`)
  const given = Buffer.from(header ?? '')
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/** An onRequest hook for admin routes: throws the 401 RecError before the body is even parsed. */
export function adminAuthHook (token: string): (req: { headers: { authorization?: string } }) => Promise<void> {
  return async (req) => {
    if (!bearerMatches(req.headers.authorization, token)) throw unauthorized()
  }
}
