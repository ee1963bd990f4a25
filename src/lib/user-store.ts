import type { ExecuteValues, Pool } from 'mysql2/promise'
import type { PurchaseEvent, SearchEvent } from '../../workers/types.ts'
import type { CircuitBreaker } from './circuit-breaker.ts'
import { unavailable } from './errors.ts'
import { acquireConnection, asUnavailable, timedQuery } from './mysql-deadline.ts'

export interface UserHistory { searches: SearchEvent[], purchases: PurchaseEvent[] }

export interface UserStoreOptions {
  /** deadline of one load: waiting for a pooled connection plus the query */
  queryTimeoutMs: number
  historyDays: number
  historyMaxEvents: number
  breaker: CircuitBreaker
  /** most ids in one coalesced query */
  maxBatch: number
}

interface Row { kind: number, user_id: number, item_id: number | null, category: string | null, at: Date | null }

/** Reads users and their recent events: one pooled connection and one SQL round trip per load,
 *  whatever the number of ids. Single-user loads that arrive in the same turn of the event loop
 *  (concurrent misses, a batch) are coalesced into one load. Per-user history is bounded by days
 *  and by count so one heavy user cannot make a request slow. */
export class UserStore {
  private readonly single: string
  private readonly batch: string
  private pending: Map<number, Array<{ resolve: (h: UserHistory | undefined) => void, reject: (e: unknown) => void }>> | undefined

  constructor (private readonly pool: Pool, private readonly opts: UserStoreOptions) {
    this.single = singleUserQuery(opts.historyMaxEvents)
    this.batch = batchQuery(opts.historyMaxEvents)
  }

  /** One user's history (undefined: no such user), loaded together with the other ids asked for in
   *  the same turn of the event loop. */
  loadUser (id: number): Promise<UserHistory | undefined> {
    return new Promise((resolve, reject) => {
      if (!this.pending) {
        this.pending = new Map()
        setImmediate(() => this.flush())
      }
      const waiters = this.pending.get(id)
      if (waiters) waiters.push({ resolve, reject })
      else this.pending.set(id, [{ resolve, reject }])
    })
  }

  async loadUsers (ids: number[], now = Date.now()): Promise<Map<number, UserHistory>> {
    const out = new Map<number, UserHistory>()
    if (ids.length === 0) return out
    const since = new Date(now - this.opts.historyDays * 86_400_000)
    // A single id goes through a prepared statement (execute); a batch is one IN (...) query,
    // since a prepared statement per list length would flood the statement cache.
    const one = ids[0] as number
    const rows = ids.length === 1
      ? await this.run<Row>(this.single, [one, one, since, one, since], true)
      : await this.run<Row>(this.batch, [ids, ids, since, ids, since], false)
    for (const r of rows) if (r.kind === 0) out.set(Number(r.user_id), { searches: [], purchases: [] })
    for (const r of rows) {
      const h = out.get(Number(r.user_id))
      if (!h || r.kind === 0) continue
      if (r.kind === 1) h.searches.push({ category: r.category as string, at: (r.at as Date).getTime() })
      else h.purchases.push({ itemId: Number(r.item_id), category: r.category as string, at: (r.at as Date).getTime() })
    }
    return out
  }

  async ping (): Promise<void> {
    await this.run('SELECT 1', [], false)
  }

  private flush (): void {
    const pending = this.pending
    this.pending = undefined
    if (!pending) return
    const ids = [...pending.keys()]
    for (let i = 0; i < ids.length; i += this.opts.maxBatch) {
      const chunk = ids.slice(i, i + this.opts.maxBatch)
      this.loadUsers(chunk).then((found) => {
        for (const id of chunk) for (const w of pending.get(id) ?? []) w.resolve(found.get(id))
      }, (err: unknown) => {
        for (const id of chunk) for (const w of pending.get(id) ?? []) w.reject(err)
      })
    }
  }

  /** One pooled connection and one statement under one deadline for both. */
  private async run<T> (sql: string, params: ExecuteValues[], prepared: boolean): Promise<T[]> {
    try {
      return await this.opts.breaker.run(async () => {
        const deadline = performance.now() + this.opts.queryTimeoutMs
        const conn = await acquireConnection(this.pool, this.opts.queryTimeoutMs)
        const left = Math.floor(deadline - performance.now())
        if (left <= 0) {
          conn.release()
          throw unavailable('database')
        }
        try {
          const rows = await timedQuery<T>(conn, sql, params, left, prepared)
          conn.release()
          return rows
        } catch (err) {
          // A timed-out or failed query leaves the connection in an unknown state.
          conn.destroy()
          throw err
        }
      })
    } catch (err) {
      throw asUnavailable(err)
    }
  }
}

// Users, searches and purchases in one statement: `kind` says which. Each event part is the
// newest N within the window. Exported for bench/store-ceiling-server.ts, which runs the same one.
export function singleUserQuery (n: number): string {
  return `(SELECT 0 AS kind, id AS user_id, NULL AS item_id, NULL AS category, NULL AS at FROM users WHERE id = ?)
    UNION ALL
    (SELECT 1, s.user_id, NULL, c.name, s.searched_at
       FROM searches s JOIN categories c ON c.id = s.category_id
      WHERE s.user_id = ? AND s.searched_at >= ?
      ORDER BY s.searched_at DESC LIMIT ${n})
    UNION ALL
    (SELECT 2, p.user_id, p.item_id, c.name, p.purchased_at
       FROM purchases p JOIN categories c ON c.id = p.category_id
      WHERE p.user_id = ? AND p.purchased_at >= ?
      ORDER BY p.purchased_at DESC LIMIT ${n})`
}

function batchQuery (n: number): string {
  return `SELECT 0 AS kind, id AS user_id, NULL AS item_id, NULL AS category, NULL AS at FROM users WHERE id IN (?)
    UNION ALL
    SELECT 1, t.user_id, NULL, c.name, t.at FROM (
      SELECT user_id, category_id, searched_at AS at,
             ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY searched_at DESC) AS rn
        FROM searches WHERE user_id IN (?) AND searched_at >= ?) t
      JOIN categories c ON c.id = t.category_id
     WHERE t.rn <= ${n}
    UNION ALL
    SELECT 2, t.user_id, t.item_id, c.name, t.at FROM (
      SELECT user_id, item_id, category_id, purchased_at AS at,
             ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY purchased_at DESC) AS rn
        FROM purchases WHERE user_id IN (?) AND purchased_at >= ?) t
      JOIN categories c ON c.id = t.category_id
     WHERE t.rn <= ${n}`
}
