import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'
import { RecError, unavailable } from './errors.ts'
import { withTimeout } from './timeout.ts'

/** A pooled connection within `timeoutMs`, or a 503. mysql2 would hand a connection to a caller
 *  that has given up and run its query anyway; one that arrives after the deadline goes straight
 *  back to the pool, unused. */
export async function acquireConnection (pool: Pool, timeoutMs: number): Promise<PoolConnection> {
  const pending = pool.getConnection()
  try {
    return await withTimeout(pending, timeoutMs, 'database')
  } catch (err) {
    pending.then((c) => c.release(), () => {})
    throw asUnavailable(err)
  }
}

/** One statement under `timeoutMs`: mysql2's own timeout ends the wait, and a race a little later
 *  is the backstop. After a timeout the connection's state is unknown: callers destroy it. */
export async function timedQuery<T> (conn: Connection, sql: string, values: unknown, timeoutMs: number, prepared = false): Promise<T[]> {
  const run = prepared
    ? conn.execute<RowDataPacket[]>({ sql, timeout: timeoutMs }, values as never)
    : conn.query<RowDataPacket[]>({ sql, timeout: timeoutMs }, values as never)
  const [rows] = await withTimeout(run, timeoutMs + 50, 'database')
  return rows as unknown as T[]
}

/** Whatever went wrong below (refused, reset, timed out, breaker open), the client sees a 503. */
export function asUnavailable (err: unknown): RecError {
  return err instanceof RecError ? err : Object.assign(unavailable('database'), { cause: err })
}
