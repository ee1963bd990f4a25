import type { Pool, RowDataPacket } from 'mysql2/promise'
import type { PurchaseEvent, SearchEvent } from '../../workers/types.ts'
import type { CircuitBreaker } from './circuit-breaker.ts'
import { withTimeout } from './timeout.ts'
import { RecError, unavailable } from './errors.ts'

export interface UserHistory { searches: SearchEvent[], purchases: PurchaseEvent[] }

export interface UserStoreOptions {
  queryTimeoutMs: number
  historyDays: number
  historyMaxEvents: number
  breaker: CircuitBreaker
}

/** Reads users and their recent events. Batch reads take one round trip per table whatever the
 *  number of ids; per-user history is bounded by days and by count so one heavy user cannot make
 *  a request slow. */
export class UserStore {
  private readonly single: Queries
  private readonly batch: Queries

  constructor (private readonly pool: Pool, private readonly opts: UserStoreOptions) {
    this.single = singleUserQueries(opts.historyMaxEvents)
    this.batch = batchQueries(opts.historyMaxEvents)
  }

  async loadUser (id: number, now = Date.now()): Promise<UserHistory | undefined> {
    return (await this.loadUsers([id], now)).get(id)
  }

  async loadUsers (ids: number[], now = Date.now()): Promise<Map<number, UserHistory>> {
    const out = new Map<number, UserHistory>()
    if (ids.length === 0) return out
    const since = new Date(now - this.opts.historyDays * 86_400_000)
    // A single id goes through prepared statements (execute); a batch uses one IN (...) query per
    // table, since a prepared statement per list length would flood the statement cache.
    const single = ids.length === 1
    const sql = single ? this.single : this.batch
    const idParam = single ? ids[0] as number : ids
    const [users, searches, purchases] = await Promise.all([
      this.run<{ id: number }>(sql.users, [idParam], single),
      this.run<{ user_id: number, category: string, at: Date }>(sql.searches, [idParam, since], single),
      this.run<{ user_id: number, item_id: number, category: string, at: Date }>(sql.purchases, [idParam, since], single)
    ])
    for (const u of users) out.set(Number(u.id), { searches: [], purchases: [] })
    for (const s of searches) out.get(Number(s.user_id))?.searches.push({ category: s.category, at: s.at.getTime() })
    for (const p of purchases) out.get(Number(p.user_id))?.purchases.push({ itemId: Number(p.item_id), category: p.category, at: p.at.getTime() })
    return out
  }

  async ping (): Promise<void> {
    await this.run('SELECT 1', [], false)
  }

  private async run<T> (sql: string, params: Array<number | Date | number[]>, prepared: boolean): Promise<T[]> {
    const timeout = this.opts.queryTimeoutMs
    // mysql2's own timeout ends the query; the outer race also bounds the wait for a free pooled
    // connection, which mysql2 does not time out by itself.
    const call = () => prepared
      ? this.pool.execute<RowDataPacket[]>({ sql, timeout }, params as Array<number | Date>)
      : this.pool.query<RowDataPacket[]>({ sql, timeout }, params)
    try {
      const [rows] = await this.opts.breaker.run(() => withTimeout(call(), timeout + 50, 'database'))
      return rows as unknown as T[]
    } catch (err) {
      // Whatever went wrong below (refused, reset, timed out, breaker open), the client sees a 503.
      throw err instanceof RecError ? err : Object.assign(unavailable('database'), { cause: err })
    }
  }
}

interface Queries { users: string, searches: string, purchases: string }

function singleUserQueries (n: number): Queries {
  return {
    users: 'SELECT id FROM users WHERE id = ?',
    searches: `SELECT s.user_id, c.name AS category, s.searched_at AS at
                 FROM searches s JOIN categories c ON c.id = s.category_id
                WHERE s.user_id = ? AND s.searched_at >= ?
                ORDER BY s.searched_at DESC LIMIT ${n}`,
    purchases: `SELECT p.user_id, p.item_id, c.name AS category, p.purchased_at AS at
                  FROM purchases p JOIN categories c ON c.id = p.category_id
                 WHERE p.user_id = ? AND p.purchased_at >= ?
                 ORDER BY p.purchased_at DESC LIMIT ${n}`
  }
}

function batchQueries (n: number): Queries {
  return {
    users: 'SELECT id FROM users WHERE id IN (?)',
    searches: `SELECT t.user_id, c.name AS category, t.at FROM (
                 SELECT user_id, category_id, searched_at AS at,
                        ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY searched_at DESC) AS rn
                   FROM searches WHERE user_id IN (?) AND searched_at >= ?) t
                 JOIN categories c ON c.id = t.category_id
                WHERE t.rn <= ${n}`,
    purchases: `SELECT t.user_id, t.item_id, c.name AS category, t.at FROM (
                  SELECT user_id, item_id, category_id, purchased_at AS at,
                         ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY purchased_at DESC) AS rn
                    FROM purchases WHERE user_id IN (?) AND purchased_at >= ?) t
                  JOIN categories c ON c.id = t.category_id
                 WHERE t.rn <= ${n}`
  }
}

