// Reading the global statistics (global-stats-refresh.ts writes them) into the GlobalStats shape
// the scorer takes, under a deadline: a replica that cannot read them in time answers 503 rather
// than holding a connection on a stuck server.

import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'
import type { GlobalStats, PopularItem } from '../../workers/types.ts'
import { acquireConnection, timedQuery } from './mysql-deadline.ts'

export interface LoadOptions {
  /** popular items kept per category (default 200) */
  itemsPerCategory?: number
  /** bound on the connection wait and on each statement (default 10 s); a connection whose
   *  statement timed out is destroyed, not returned to the pool */
  timeoutMs?: number
}

// Code-unit order, as in workers/scoring.ts: locale-independent, so every replica agrees.
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

/** Reads the stats tables into the GlobalStats shape, all from one consistent snapshot.
 *  Every category appears in categoryPopularity (score 0 when it has no row yet), and has an entry
 *  (possibly empty) in itemsByCategory and cooccurrence. */
export async function loadGlobalStats (db: Pool | Connection, opts: LoadOptions = {}): Promise<GlobalStats> {
  const perCategory = Math.floor(opts.itemsPerCategory ?? 200)
  if (!Number.isFinite(perCategory) || perCategory < 0) throw new RangeError(`itemsPerCategory must be >= 0 (got ${opts.itemsPerCategory})`)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const pooled = typeof (db as Pool).getConnection === 'function'
  const conn = pooled ? await acquireConnection(db as Pool, timeoutMs) : db as Connection
  let healthy = true
  try {
    let cats: RowDataPacket[]
    let items: RowDataPacket[]
    let pairs: RowDataPacket[]
    const q = (sql: string, values: unknown[] = []) => timedQuery<RowDataPacket>(conn, sql, values, timeoutMs)
    await q('START TRANSACTION WITH CONSISTENT SNAPSHOT')
    try {
      cats = await q(`SELECT c.id, c.name, COALESCE(p.score, 0) AS score
        FROM categories c LEFT JOIN category_popularity p ON p.category_id = c.id`)
      items = perCategory === 0
        ? []
        : await q(`SELECT item_id, category_id, score FROM (
            SELECT item_id, category_id, score,
                   ROW_NUMBER() OVER (PARTITION BY category_id ORDER BY score DESC, item_id) AS rn
            FROM item_popularity
          ) r WHERE rn <= ?`, [perCategory])
      pairs = await q('SELECT category_a, category_b, users FROM category_cooccurrence')
      await q('COMMIT')
    } catch (err) {
      healthy = false
      if (!pooled) await conn.query('ROLLBACK').catch(() => {})
      throw err
    }

    const names = new Map<number, string>()
    for (const c of cats) names.set(Number(c.id), String(c.name))

    const categoryPopularity = cats
      .map((c) => ({ category: String(c.name), score: Number(c.score) }))
      .sort((a, b) => b.score - a.score || byName(a.category, b.category))

    const itemsByCategory: Record<string, PopularItem[]> = {}
    const cooccurrence: Record<string, Array<{ category: string, users: number }>> = {}
    for (const { category } of categoryPopularity) {
      itemsByCategory[category] = []
      cooccurrence[category] = []
    }
    for (const r of items) {
      const category = names.get(Number(r.category_id))
      if (category === undefined) continue
      itemsByCategory[category]!.push({ itemId: Number(r.item_id), category, score: Number(r.score) })
    }
    for (const list of Object.values(itemsByCategory)) list.sort((a, b) => b.score - a.score || a.itemId - b.itemId)
    for (const r of pairs) {
      const a = names.get(Number(r.category_a))
      const b = names.get(Number(r.category_b))
      if (a === undefined || b === undefined) continue
      cooccurrence[a]!.push({ category: b, users: Number(r.users) })
    }
    for (const list of Object.values(cooccurrence)) list.sort((x, y) => y.users - x.users || byName(x.category, y.category))

    return { categoryPopularity, cooccurrence, itemsByCategory }
  } finally {
    // After a failed or timed-out statement the session's state is unknown: not worth pooling.
    if (pooled) {
      const pc = conn as PoolConnection
      if (healthy) pc.release()
      else pc.destroy()
    }
  }
}
