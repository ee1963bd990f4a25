// seed(): validates the options, applies the policy (refuse / --reset / --if-empty, see ./policy.ts),
// migrates, then drives generation and loading. Generation is CPU work and loading mostly waits on
// the server, so the loop overlaps them: up to K loads in flight while the next batch is generated.

import mysql from 'mysql2/promise'
import { migrate } from '../../src/lib/migrations.ts'
import { refreshGlobalStats } from '../../src/lib/global-stats-refresh.ts'
import { buildModel, type GenState, generateCatalog, generateUsers } from './generate.ts'
import { createDatabase, dbName, dropProjectTables, load } from './load.ts'
import { decideIfEmpty, occupancy } from './policy.ts'
import { fmt, Progress } from './progress.ts'
import type { Batch, Method } from './sink.ts'

export interface SeedOptions {
  /** database URL (the database is created when missing); default $MYSQL_URL or mysql://root@127.0.0.1:3306/recsvc */
  mysqlUrl?: string
  users?: number
  items?: number
  categories?: number
  /** mean searches per user (default 10) */
  searchesPerUser?: number
  /** mean purchases per user (default 4) */
  purchasesPerUser?: number
  /** PRNG seed (default 42) */
  seed?: number
  /** the anchor of all timestamps (default: now) */
  now?: Date
  /** drop this project's tables (and only those) first, then migrate again */
  reset?: boolean
  /** the policy for automated runs (docker-compose, the local stack), see ./policy.ts: do nothing when
   *  users exist, start over (as reset) when only other tables have rows, else seed. With reset as
   *  well, a database with users is still left alone. */
  ifEmpty?: boolean
  /** 'infile' = LOAD DATA LOCAL INFILE, 'insert' = multi-row INSERT, 'auto' = infile when the server allows it */
  method?: 'auto' | 'infile' | 'insert'
  /** loading connections (default 2) */
  concurrency?: number
  /** users per generated batch (default 5000) */
  batchUsers?: number
  /** run refreshGlobalStats at the end (default true) */
  stats?: boolean
  /** progress on stderr: true, false, or 'auto' (default: a bar on a TTY, else a line every 5 s) */
  progress?: boolean | 'auto'
  /** where messages go (default: stderr) */
  log?: (line: string) => void
}

/** Row counts are what this run wrote (all 0 when it skipped). */
interface SeedCounts {
  users: number
  items: number
  categories: number
  searches: number
  purchases: number
  /** all rows written by the load (stats tables excluded) */
  rows: number
  now: Date
}

export interface SeedLoaded extends SeedCounts {
  skipped: false
  /** this project's tables were dropped first: asked for (reset), or a partial seed under ifEmpty */
  reset: boolean
  method: Method
  loadMs: number
  rowsPerSec: number
  statsMs: number
}

/** ifEmpty found users: nothing was written, not even migrations (the data is someone's). */
export interface SeedSkipped extends SeedCounts {
  skipped: true
  /** the users the database already had */
  existingUsers: number
}

export type SeedResult = SeedLoaded | SeedSkipped

export const SEED_DEFAULTS = {
  users: 10_000,
  items: 5_000,
  categories: 24,
  searchesPerUser: 10,
  purchasesPerUser: 4,
  seed: 42,
  concurrency: 2,
  batchUsers: 5_000
} as const

/** Seeds the database; see the top of scripts/seed.ts. Refuses a database that already has data
 *  unless reset; with ifEmpty, applies ./policy.ts instead. */
export async function seed (opts: SeedOptions = {}): Promise<SeedResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'))
  const url = opts.mysqlUrl ?? process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/recsvc'
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const x = v ?? dflt
    if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`${name} must be an integer in ${min}..${max} (got ${v})`)
    return x
  }
  const num = (name: string, v: number | undefined, dflt: number): number => {
    const x = v ?? dflt
    if (!Number.isFinite(x) || x < 0 || x > 10_000) throw new RangeError(`${name} must be a number in 0..10000 (got ${v})`)
    return x
  }
  const users = int('users', opts.users, SEED_DEFAULTS.users, 0, 4_000_000_000)
  const items = int('items', opts.items, SEED_DEFAULTS.items, 0, 4_000_000_000)
  const categories = int('categories', opts.categories, SEED_DEFAULTS.categories, 1, 65_535)
  const searchesPerUser = num('searchesPerUser', opts.searchesPerUser, SEED_DEFAULTS.searchesPerUser)
  const purchasesPerUser = num('purchasesPerUser', opts.purchasesPerUser, SEED_DEFAULTS.purchasesPerUser)
  const seedValue = int('seed', opts.seed, SEED_DEFAULTS.seed, -(2 ** 31), 2 ** 32 - 1)
  const concurrency = int('concurrency', opts.concurrency, SEED_DEFAULTS.concurrency, 1, 64)
  const batchUsers = int('batchUsers', opts.batchUsers, SEED_DEFAULTS.batchUsers, 1, 1_000_000)
  const nowDate = opts.now ?? new Date()
  const now = nowDate.getTime()
  if (!Number.isFinite(now)) throw new RangeError('now is not a valid date')

  // database, policy, reset, schema
  const { db, serverUrl } = dbName(url)
  let reset = opts.reset === true
  {
    const conn = await mysql.createConnection({ uri: serverUrl, connectTimeout: 10_000 })
    try {
      if (opts.ifEmpty) {
        // before CREATE DATABASE and migrate: a skip must leave the server exactly as it was
        const found = await occupancy(conn, db)
        const decision = decideIfEmpty(found)
        log(`seed: --if-empty: ${decision.why}`)
        if (decision.action === 'skip') {
          return { skipped: true, existingUsers: found.users, users: 0, items: 0, categories: 0, searches: 0, purchases: 0, rows: 0, now: nowDate }
        }
        if (decision.action === 'reset') reset = true
      }
      await createDatabase(conn, db)
      if (reset) {
        await dropProjectTables(conn, db)
        log(`seed: dropped this project's tables in ${db}`)
      }
    } finally {
      await conn.end()
    }
  }
  await migrate(url, { log: (m) => log(`seed: migrate: ${m}`) })

  const conns: mysql.Connection[] = []
  try {
    for (let i = 0; i < concurrency; i++) {
      const c = await mysql.createConnection({ uri: url, timezone: 'Z', connectTimeout: 10_000 })
      conns.push(c)
      await c.query('SET SESSION foreign_key_checks = 0, unique_checks = 0')
    }
    const main = conns[0]!
    // after migrate, so the tables exist; reset or --if-empty have emptied them by now
    const { nonEmpty } = await occupancy(main, db)
    if (nonEmpty.length > 0) {
      throw new Error(`database ${db} already has data (${nonEmpty.join(', ')}); pass --reset to start over`)
    }

    let method: Method = opts.method === 'insert' ? 'insert' : 'infile'
    if (method === 'infile') {
      const [rows] = await main.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.local_infile AS v')
      const v = String(rows[0]?.v ?? '0').toUpperCase()
      const allowed = v === '1' || v === 'ON'
      if (!allowed) {
        if (opts.method === 'infile') throw new Error('the server has local_infile disabled; use --method insert')
        method = 'insert'
      }
    }

    const model = buildModel({ items, categories, seed: seedValue })
    const tty = process.stderr.isTTY === true
    const mode = opts.progress === false ? 'off' : opts.progress === true ? (tty ? 'bar' : 'lines') : (tty ? 'bar' : 'lines')
    const progress = new Progress(users, mode, log)
    log(`seed: ${fmt(users)} users, ${fmt(items)} items, ${categories} categories, ~${searchesPerUser} searches and ~${purchasesPerUser} purchases per user, seed ${seedValue}, now ${nowDate.toISOString()}, ${method}, ${concurrency} connection(s)`)
    const started = performance.now()
    const totals: Record<string, number> = { categories: 0, items: 0, users: 0, searches: 0, purchases: 0 }

    // Up to K loads in flight, one per connection; the next batch is generated meanwhile.
    const idle = [...conns]
    const inflight = new Set<Promise<void>>()
    let failed: unknown
    const submit = async (bs: Batch[]) => {
      for (const b of bs) {
        if (b.rows === 0) continue
        while (idle.length === 0 && !failed) await Promise.race(inflight)
        if (failed) throw failed
        const conn = idle.pop()!
        const p: Promise<void> = load(conn, b, method).then(() => {
          totals[b.table] = (totals[b.table] ?? 0) + b.rows
          progress.rows += b.rows
          progress.users += b.users
          progress.update()
          idle.push(conn)
        }, (err: unknown) => { failed ??= err }).finally(() => { inflight.delete(p) })
        inflight.add(p)
      }
    }

    try {
      await submit(generateCatalog(model, { seed: seedValue, now }, method))
      const st: GenState = { searchId: 0, purchaseId: 0 }
      const gen = { seed: seedValue, now, searches: searchesPerUser, purchases: purchasesPerUser }
      for (let from = 1; from <= users; from += batchUsers) {
        const to = Math.min(users, from + batchUsers - 1)
        await submit(generateUsers(model, gen, from, to, st, method))
        // let the sockets drain between batches
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    } finally {
      await Promise.all(inflight)
    }
    if (failed) throw failed
    progress.update(true)
    progress.done()
    const loadMs = performance.now() - started
    const rows = Object.values(totals).reduce((a, b) => a + b, 0)
    const rowsPerSec = rows / Math.max(loadMs / 1000, 1e-3)
    log(`seed: loaded ${fmt(rows)} rows (${Object.entries(totals).map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}) in ${(loadMs / 1000).toFixed(1)} s: ${fmt(rowsPerSec)} rows/s`)

    await main.query('ANALYZE TABLE categories, items, users, searches, purchases')

    let statsMs = 0
    if (opts.stats !== false) {
      const ts = performance.now()
      const r = await refreshGlobalStats(main, { now: nowDate })
      statsMs = performance.now() - ts
      log(`seed: global stats (${fmt(r.items)} items, ${r.categories} categories, ${r.pairs} pairs) in ${(statsMs / 1000).toFixed(1)} s`)
    }
    return {
      skipped: false,
      reset,
      users: totals.users!,
      items: totals.items!,
      categories: totals.categories!,
      searches: totals.searches!,
      purchases: totals.purchases!,
      rows,
      method,
      loadMs: Math.round(loadMs),
      rowsPerSec: Math.round(rowsPerSec),
      statsMs: Math.round(statsMs),
      now: nowDate
    }
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())))
  }
}
