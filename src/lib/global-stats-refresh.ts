// Recomputing the global statistics the scorer needs (item popularity, category popularity and
// category co-occurrence) in SQL, never per request; global-stats-load.ts reads them into memory.
//
// refreshGlobalStats builds the new figures in session temporary tables first (the long part: full
// scans of searches and purchases, at READ COMMITTED so the scans take no row locks and never hold up
// writers), then replaces the contents of the three stats tables in one short transaction. Readers use
// consistent reads, so they see either the old set or the new one, never an empty or half-written table.
//
// Framework-free: takes a mysql2/promise Pool (a connection is borrowed for the duration) or a
// Connection.

import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise'
import { configDefault, statsRefreshSettings } from '../config.ts'

export type StatsDb = Pool | Connection | PoolConnection

export interface RefreshOptions {
  /** the clock (default: now); ages and the window are measured from it */
  now?: Date
  /** half-life of a purchase in days (default: PURCHASE_HALF_LIFE_DAYS's), for item and category popularity */
  purchaseHalfLifeDays?: number
  /** half-life of a search in days (default: SEARCH_HALF_LIFE_DAYS's), for category popularity */
  searchHalfLifeDays?: number
  /** only events newer than now - windowDays count (default: HISTORY_DAYS's) */
  windowDays?: number
  /** co-occurrence uses each user's top N categories by engagement (default 5), which bounds the
   *  pairs per user to N*(N-1) */
  cooccurrenceTopCategories?: number
  /** weight of a purchase relative to a search in category popularity and user engagement
   *  (default: PURCHASE_BASE / SEARCH_BASE of the defaults) */
  purchaseWeight?: number
  /** cap of each in-memory work table (max_heap_table_size, default 512 MiB; about 60 bytes per
   *  (user, category) pair); a table that outgrows it is rebuilt in InnoDB. 0 = InnoDB only. */
  memoryTableBytes?: number
  /** called after each step with its duration, for logs and benchmarks */
  onStep?: (step: string, ms: number) => void
}

export interface RefreshResult {
  items: number
  categories: number
  pairs: number
  ms: number
}

export const STATS_META_NAME = 'global'

const DAY_US = 86_400_000_000
const ER_RECORD_FILE_FULL = 1114
const ER_CANT_REOPEN_TABLE = 1137

/** 'YYYY-MM-DD HH:MM:SS.mmm' in UTC: DATETIME columns hold UTC wall-clock time (see plugins/mysql.ts);
 *  passing strings keeps this independent of the connection's timezone option. */
export function toSqlUtc (d: Date): string {
  const s = d.toISOString()
  return `${s.slice(0, 10)} ${s.slice(11, 23)}`
}

function positive (name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt
  if (!Number.isFinite(x) || x <= 0) throw new RangeError(`${name} must be a positive number (got ${v})`)
  return x
}

async function borrow<T> (db: StatsDb, fn: (conn: Connection) => Promise<T>): Promise<T> {
  if (typeof (db as Pool).getConnection === 'function') {
    const conn = await (db as Pool).getConnection()
    try {
      return await fn(conn)
    } finally {
      conn.release()
    }
  }
  return fn(db)
}

async function one<T> (conn: Connection, sql: string, params: unknown[] = []): Promise<T | undefined> {
  const [rows] = await conn.query<RowDataPacket[]>(sql, params)
  return rows[0] as T | undefined
}

async function sessionIsolation (conn: Connection): Promise<string> {
  // MySQL 8 and MariaDB >= 11.1 call it transaction_isolation; MariaDB 10.x only tx_isolation.
  for (const v of ['transaction_isolation', 'tx_isolation']) {
    try {
      const r = await one<{ v: string }>(conn, `SELECT @@SESSION.${v} AS v`)
      if (r?.v) return r.v
    } catch {}
  }
  return 'REPEATABLE-READ'
}

const TEMP_TABLES = ['tmp_gs_item', 'tmp_gs_user_cat', 'tmp_gs_cat', 'tmp_gs_top_a', 'tmp_gs_top_b', 'tmp_gs_pair'] as const

/** Recomputes item_popularity, category_popularity and category_cooccurrence from searches and
 *  purchases, and records stats_meta('global', now).
 *
 *  - item_popularity: per item with a purchase in the window, score = Σ 2^(-age_days / purchaseHalfLife),
 *    purchase_count and last_purchased_at over the window.
 *  - category_popularity: Σ over searches of 2^(-age/searchHalfLife) + purchaseWeight × Σ over purchases
 *    of 2^(-age/purchaseHalfLife).
 *  - category_cooccurrence: for each ordered pair (a, b), a ≠ b, the number of users who engaged with
 *    both (searched or bought in the window), counting each user's top `cooccurrenceTopCategories`
 *    categories (by searches + purchaseWeight × purchases). Both directions are stored.
 *
 *  Events stamped after `now` (clock skew) count with age 0, as in the scorer. */
export async function refreshGlobalStats (db: StatsDb, opts: RefreshOptions = {}): Promise<RefreshResult> {
  const started = performance.now()
  const now = opts.now ?? new Date()
  if (Number.isNaN(now.getTime())) throw new RangeError('now is not a valid date')
  const dflt = statsRefreshSettings({
    PURCHASE_HALF_LIFE_DAYS: configDefault('PURCHASE_HALF_LIFE_DAYS'),
    SEARCH_HALF_LIFE_DAYS: configDefault('SEARCH_HALF_LIFE_DAYS'),
    HISTORY_DAYS: configDefault('HISTORY_DAYS'),
    PURCHASE_BASE: configDefault('PURCHASE_BASE'),
    SEARCH_BASE: configDefault('SEARCH_BASE')
  })
  const purchaseHl = positive('purchaseHalfLifeDays', opts.purchaseHalfLifeDays, dflt.purchaseHalfLifeDays)
  const searchHl = positive('searchHalfLifeDays', opts.searchHalfLifeDays, dflt.searchHalfLifeDays)
  const windowDays = positive('windowDays', opts.windowDays, dflt.windowDays)
  const purchaseWeight = positive('purchaseWeight', opts.purchaseWeight, dflt.purchaseWeight)
  const topN = Math.floor(positive('cooccurrenceTopCategories', opts.cooccurrenceTopCategories, 5))
  const memoryBytes = Math.floor(opts.memoryTableBytes ?? 512 * 1024 * 1024)
  if (!Number.isFinite(memoryBytes) || memoryBytes < 0) throw new RangeError(`memoryTableBytes must be >= 0 (got ${opts.memoryTableBytes})`)
  const nowSql = toSqlUtc(now)
  const fromSql = toSqlUtc(new Date(now.getTime() - windowDays * 86_400_000))
  // age in days, clamped at 0; decay = 2^(-age/halfLife)
  const decay = (col: string, hl: number) =>
    `POW(2, -GREATEST(TIMESTAMPDIFF(MICROSECOND, ${col}, @gs_now), 0) / ${DAY_US * hl})`

  return borrow(db, async (conn) => {
    const isolation = await sessionIsolation(conn)
    const tmp = await one<{ t: number, h: number }>(conn, 'SELECT @@SESSION.tmp_table_size AS t, @@SESSION.max_heap_table_size AS h')
    const dropTemps = async (names: readonly string[] = TEMP_TABLES) => {
      for (const name of names) await conn.query(`DROP TEMPORARY TABLE IF EXISTS ${name}`)
    }
    const step = async (name: string, fn: () => Promise<void>) => {
      const t0 = performance.now()
      await fn()
      opts.onStep?.(name, Math.round(performance.now() - t0))
    }
    /** Builds in MEMORY; when that runs out of room (max_heap_table_size), starts over in InnoDB. */
    const withEngine = async (name: string, tables: readonly string[], fn: (engine: string) => Promise<void>) => {
      try {
        await step(name, () => fn(memoryBytes > 0 ? 'MEMORY' : 'InnoDB'))
      } catch (err) {
        if (memoryBytes === 0 || (err as { errno?: number }).errno !== ER_RECORD_FILE_FULL) throw err
        await dropTemps(tables)
        await step(`${name} (InnoDB)`, () => fn('InnoDB'))
      }
    }
    try {
      // Consistent reads without locks for the long scans; the cap of the in-memory work tables.
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED')
      if (memoryBytes > 0) await conn.query('SET SESSION tmp_table_size = ?, max_heap_table_size = ?', [memoryBytes, memoryBytes])
      await conn.query('SET @gs_now = CAST(? AS DATETIME(3)), @gs_from = CAST(? AS DATETIME(3))', [nowSql, fromSql])
      await dropTemps()

      // 1. item popularity
      await step('items', async () => {
        await conn.query(`CREATE TEMPORARY TABLE tmp_gs_item (
          item_id INT UNSIGNED NOT NULL PRIMARY KEY,
          category_id SMALLINT UNSIGNED NOT NULL,
          score DOUBLE NOT NULL,
          purchase_count INT UNSIGNED NOT NULL,
          last_purchased_at DATETIME(3) NULL
        ) ENGINE=InnoDB`)
        await conn.query(`INSERT INTO tmp_gs_item (item_id, category_id, score, purchase_count, last_purchased_at)
          SELECT a.item_id, i.category_id, a.score, a.n, a.last_at
          FROM (
            SELECT item_id, SUM(${decay('purchased_at', purchaseHl)}) AS score, COUNT(*) AS n, MAX(purchased_at) AS last_at
            FROM purchases IGNORE INDEX (ix_purchases_item)
            WHERE purchased_at > @gs_from
            GROUP BY item_id
          ) a
          JOIN items i ON i.id = a.item_id`)
      })

      // 2. per (user, category) engagement (searches + purchaseWeight × purchases) and decayed score.
      //    In a MEMORY (B-tree) temporary table while it fits in memoryTableBytes: events are upserted
      //    straight into it (faster than GROUP BY + merge), and the steps below run several times faster
      //    on it than on an InnoDB temporary table, which competes for the buffer pool. When it outgrows
      //    the cap, it is rebuilt in InnoDB from pre-aggregated scans.
      await withEngine('user_cat', ['tmp_gs_user_cat'], async (engine) => {
        await conn.query(`CREATE TEMPORARY TABLE tmp_gs_user_cat (
          user_id INT UNSIGNED NOT NULL,
          category_id SMALLINT UNSIGNED NOT NULL,
          engagement DOUBLE NOT NULL,
          score DOUBLE NOT NULL,
          PRIMARY KEY (user_id, category_id) USING BTREE
        ) ENGINE=${engine}`)
        if (engine === 'MEMORY') {
          await conn.query(`INSERT INTO tmp_gs_user_cat (user_id, category_id, engagement, score)
            SELECT user_id, category_id, 1, ${decay('searched_at', searchHl)}
            FROM searches IGNORE INDEX (ix_searches_user_time)
            WHERE searched_at > @gs_from
            ON DUPLICATE KEY UPDATE engagement = engagement + 1, score = tmp_gs_user_cat.score + VALUES(score)`)
          await conn.query(`INSERT INTO tmp_gs_user_cat (user_id, category_id, engagement, score)
            SELECT user_id, category_id, ${purchaseWeight}, ${purchaseWeight} * ${decay('purchased_at', purchaseHl)}
            FROM purchases IGNORE INDEX (ix_purchases_user_time, ix_purchases_item)
            WHERE purchased_at > @gs_from
            ON DUPLICATE KEY UPDATE engagement = engagement + ${purchaseWeight}, score = tmp_gs_user_cat.score + VALUES(score)`)
          return
        }
        await conn.query(`INSERT INTO tmp_gs_user_cat (user_id, category_id, engagement, score)
          SELECT user_id, category_id, SUM(e), SUM(s) FROM (
            SELECT user_id, category_id, COUNT(*) AS e, SUM(${decay('searched_at', searchHl)}) AS s
            FROM searches IGNORE INDEX (ix_searches_user_time)
            WHERE searched_at > @gs_from
            GROUP BY user_id, category_id
            UNION ALL
            SELECT user_id, category_id, ${purchaseWeight} * COUNT(*), ${purchaseWeight} * SUM(${decay('purchased_at', purchaseHl)})
            FROM purchases IGNORE INDEX (ix_purchases_user_time, ix_purchases_item)
            WHERE purchased_at > @gs_from
            GROUP BY user_id, category_id
          ) e
          GROUP BY user_id, category_id`)
      })

      // 3. category popularity
      await step('category', async () => {
        await conn.query(`CREATE TEMPORARY TABLE tmp_gs_cat (
          category_id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
          score DOUBLE NOT NULL
        ) ENGINE=InnoDB`)
        await conn.query(`INSERT INTO tmp_gs_cat (category_id, score)
          SELECT category_id, SUM(score) FROM tmp_gs_user_cat GROUP BY category_id`)
      })

      // 4. co-occurrence over each user's top N categories
      let topEngine = 'InnoDB'
      await withEngine('top', ['tmp_gs_top_a'], async (engine) => {
        topEngine = engine
        await conn.query(`CREATE TEMPORARY TABLE tmp_gs_top_a (
          user_id INT UNSIGNED NOT NULL,
          category_id SMALLINT UNSIGNED NOT NULL,
          PRIMARY KEY (user_id, category_id) USING BTREE
        ) ENGINE=${engine}`)
        await conn.query(`INSERT INTO tmp_gs_top_a (user_id, category_id)
          SELECT user_id, category_id FROM (
            SELECT user_id, category_id,
                   ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY engagement DESC, score DESC, category_id) AS rn
            FROM tmp_gs_user_cat
          ) r
          WHERE rn <= ${topN}`)
      })
      await step('pairs', async () => {
        await conn.query(`CREATE TEMPORARY TABLE tmp_gs_pair (
          category_a SMALLINT UNSIGNED NOT NULL,
          category_b SMALLINT UNSIGNED NOT NULL,
          users INT UNSIGNED NOT NULL,
          PRIMARY KEY (category_a, category_b)
        ) ENGINE=InnoDB`)
        const pairs = (other: string) => `INSERT INTO tmp_gs_pair (category_a, category_b, users)
          SELECT a.category_id, b.category_id, COUNT(*)
          FROM tmp_gs_top_a a
          JOIN ${other} b ON b.user_id = a.user_id AND b.category_id <> a.category_id
          GROUP BY a.category_id, b.category_id`
        try {
          await conn.query(pairs('tmp_gs_top_a'))
        } catch (err) {
          // MySQL cannot open a temporary table twice in one statement (MariaDB can): join a copy.
          if ((err as { errno?: number }).errno !== ER_CANT_REOPEN_TABLE) throw err
          await conn.query(`CREATE TEMPORARY TABLE tmp_gs_top_b (
            user_id INT UNSIGNED NOT NULL,
            category_id SMALLINT UNSIGNED NOT NULL,
            PRIMARY KEY (user_id, category_id) USING BTREE
          ) ENGINE=${topEngine}`)
          await conn.query('INSERT INTO tmp_gs_top_b (user_id, category_id) SELECT user_id, category_id FROM tmp_gs_top_a')
          await conn.query(pairs('tmp_gs_top_b'))
        }
      })

      // 5. swap the contents in one short transaction
      await step('swap', async () => {
        await conn.query('START TRANSACTION')
        try {
          await conn.query('DELETE FROM item_popularity')
          await conn.query(`INSERT INTO item_popularity (item_id, category_id, score, purchase_count, last_purchased_at)
            SELECT item_id, category_id, score, purchase_count, last_purchased_at FROM tmp_gs_item`)
          await conn.query('DELETE FROM category_popularity')
          await conn.query('INSERT INTO category_popularity (category_id, score) SELECT category_id, score FROM tmp_gs_cat')
          await conn.query('DELETE FROM category_cooccurrence')
          await conn.query(`INSERT INTO category_cooccurrence (category_a, category_b, users)
            SELECT category_a, category_b, users FROM tmp_gs_pair`)
          await conn.query(`INSERT INTO stats_meta (name, refreshed_at) VALUES (?, @gs_now)
            ON DUPLICATE KEY UPDATE refreshed_at = @gs_now`, [STATS_META_NAME])
          await conn.query('COMMIT')
        } catch (err) {
          await conn.query('ROLLBACK').catch(() => {})
          throw err
        }
      })

      const counts = await one<{ items: number, categories: number, pairs: number }>(conn, `SELECT
        (SELECT COUNT(*) FROM tmp_gs_item) AS items,
        (SELECT COUNT(*) FROM tmp_gs_cat) AS categories,
        (SELECT COUNT(*) FROM tmp_gs_pair) AS pairs`)
      return {
        items: Number(counts?.items ?? 0),
        categories: Number(counts?.categories ?? 0),
        pairs: Number(counts?.pairs ?? 0),
        ms: Math.round(performance.now() - started)
      }
    } finally {
      // Leave a pooled connection as we found it.
      await dropTemps().catch(() => {})
      await conn.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation.replace(/-/g, ' ')}`).catch(() => {})
      if (tmp) await conn.query('SET SESSION tmp_table_size = ?, max_heap_table_size = ?', [tmp.t, tmp.h]).catch(() => {})
    }
  })
}
