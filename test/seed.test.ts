// scripts/seed.ts and src/lib/global-stats.ts against a real MySQL/MariaDB: reproducible data, realistic
// counts and skew, --reset that drops only this project's tables, the --if-empty policy (skip a
// database with users, start an interrupted seed over, seed an empty one), and the global stats
// (refresh in SQL, load into the GlobalStats shape and order).
//
// Uses the server of $MYSQL_URL (else mysql://root@127.0.0.1:3306/) and creates uniquely named
// databases there, dropped at the end.
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { main as seedMain, seed, type SeedOptions } from '../scripts/seed.ts'
import { loadGlobalStats } from '../src/lib/global-stats-load.ts'
import { refreshGlobalStats } from '../src/lib/global-stats-refresh.ts'
import { migrate, readMigrations } from '../src/lib/migrations.ts'
import type { GlobalStats } from '../workers/types.ts'

const DAY = 86_400_000
const NOW = new Date('2025-03-01T12:00:00.000Z')

function serverUrlOf (url: string): string {
  const u = new URL(url)
  u.pathname = '/'
  return u.toString()
}
const SERVER_URL = serverUrlOf(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/')
const prefix = `recsvc_seedtest_${process.pid}_${randomBytes(3).toString('hex')}`
const dbUrl = (db: string): string => {
  const u = new URL(SERVER_URL)
  u.pathname = `/${db}`
  return u.toString()
}

const admin = await mysql.createConnection({ uri: SERVER_URL, connectTimeout: 10_000 })
const created: string[] = []
async function createDb (suffix: string): Promise<{ url: string, conn: mysql.Connection }> {
  const name = `${prefix}_${suffix}`
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  created.push(name)
  const url = dbUrl(name)
  const conn = await mysql.createConnection({ uri: url, timezone: 'Z' })
  return { url, conn }
}
const conns: mysql.Connection[] = []
t.teardown(async () => {
  for (const c of conns) await c.end().catch(() => {})
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS \`${name}\``).catch(() => {})
  await admin.end()
})

const main = await createDb('main')
conns.push(main.conn)
const db = main.conn

const BASE: SeedOptions = {
  mysqlUrl: main.url,
  users: 300,
  items: 400,
  categories: 12,
  searchesPerUser: 10,
  purchasesPerUser: 4,
  seed: 1234,
  now: NOW,
  progress: false,
  log: () => {}
}

const DATA_TABLES = ['categories', 'items', 'users', 'searches', 'purchases'] as const
const STATS_TABLES = ['item_popularity', 'category_popularity', 'category_cooccurrence'] as const

/** Order-independent fingerprint of each table's rows (CHECKSUM TABLE), plus ordered aggregates. */
async function fingerprint (): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const [sums] = await db.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${[...DATA_TABLES, ...STATS_TABLES].join(', ')}`)
  for (const r of sums) out[String(r.Table).split('.').pop()!] = String(r.Checksum)
  const [agg] = await db.query<mysql.RowDataPacket[]>(`SELECT
    (SELECT GROUP_CONCAT(CONCAT_WS(':', id, user_id, category_id, searched_at) ORDER BY id SEPARATOR ',') FROM (SELECT * FROM searches ORDER BY id LIMIT 50) s) AS s50,
    (SELECT SUM(CRC32(CONCAT_WS('|', id, user_id, item_id, category_id, purchased_at))) FROM purchases) AS p_crc`)
  out.s50 = String(agg[0]!.s50)
  out.p_crc = String(agg[0]!.p_crc)
  return out
}

async function count (table: string): Promise<number> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`)
  return Number(rows[0]!.n)
}

t.test('the same seed and now give identical rows; another seed does not', async (t) => {
  const a = await seed({ ...BASE, reset: true })
  t.equal(a.users, 300)
  const first = await fingerprint()
  // a different batch size, load method and connection count must not change a thing
  const b = await seed({ ...BASE, reset: true, method: 'insert', concurrency: 3, batchUsers: 37 })
  t.equal(b.rows, a.rows)
  t.same(await fingerprint(), first, 'identical checksums after re-seeding with the same --seed and --now')
  await seed({ ...BASE, reset: true, seed: 99 })
  const other = await fingerprint()
  t.not(other.searches, first.searches, 'another seed gives other searches')
  t.not(other.purchases, first.purchases, 'another seed gives other purchases')
  await seed({ ...BASE, reset: true }) // back to the base data for the tests below
  t.same(await fingerprint(), first)
})

t.test('counts are in the expected ranges and timestamps in the 90 days before now', async (t) => {
  t.equal(await count('users'), 300)
  t.equal(await count('items'), 400)
  t.equal(await count('categories'), 12)
  const searches = await count('searches')
  const purchases = await count('purchases')
  t.ok(searches >= 300 * 10 * 0.75 && searches <= 300 * 10 * 1.25, `~10 searches per user (${searches})`)
  t.ok(purchases >= 300 * 4 * 0.7 && purchases <= 300 * 4 * 1.3, `~4 purchases per user (${purchases})`)

  const [[r]] = await db.query<mysql.RowDataPacket[]>(`SELECT
    (SELECT MIN(searched_at) FROM searches) AS s_min, (SELECT MAX(searched_at) FROM searches) AS s_max,
    (SELECT MIN(purchased_at) FROM purchases) AS p_min, (SELECT MAX(purchased_at) FROM purchases) AS p_max,
    (SELECT COUNT(*) FROM purchases p JOIN items i ON i.id = p.item_id AND i.category_id = p.category_id) AS p_consistent,
    (SELECT COUNT(*) FROM searches s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL) AS orphans,
    (SELECT COUNT(DISTINCT category_id) FROM items) AS item_cats`) as unknown as [[mysql.RowDataPacket]]
  for (const k of ['s_min', 'p_min'] as const) t.ok((r[k] as Date).getTime() > NOW.getTime() - 90 * DAY, `${k} within 90 days`)
  for (const k of ['s_max', 'p_max'] as const) t.ok((r[k] as Date).getTime() < NOW.getTime(), `${k} before now`)
  t.equal(Number(r.p_consistent), purchases, "every purchase's category is its item's category")
  t.equal(Number(r.orphans), 0, 'every search belongs to a user')
  t.equal(Number(r.item_cats), 12, 'every category has items')

  // per-user counts vary around the mean rather than being constant
  const [per] = await db.query<mysql.RowDataPacket[]>(`SELECT u.id, COUNT(s.id) AS n FROM users u
    LEFT JOIN searches s ON s.user_id = u.id GROUP BY u.id`)
  const ns = per.map((x) => Number(x.n))
  t.ok(Math.max(...ns) >= 20 && Math.min(...ns) <= 3, `per-user searches spread out (${Math.min(...ns)}..${Math.max(...ns)})`)
})

t.test('popularity is skewed: categories, items and per-user taste', async (t) => {
  const [cats] = await db.query<mysql.RowDataPacket[]>(`SELECT c.id, COALESCE(s.n, 0) + COALESCE(p.n, 0) AS n FROM categories c
    LEFT JOIN (SELECT category_id, COUNT(*) n FROM searches GROUP BY category_id) s ON s.category_id = c.id
    LEFT JOIN (SELECT category_id, COUNT(*) n FROM purchases GROUP BY category_id) p ON p.category_id = c.id
    ORDER BY n DESC`)
  const n = cats.map((c) => Number(c.n))
  const median = n[Math.floor(n.length / 2)]!
  t.ok(n[0]! > 2.5 * median, `top category (${n[0]} events) well above the median (${median})`)

  const [items] = await db.query<mysql.RowDataPacket[]>('SELECT item_id, COUNT(*) AS n FROM purchases GROUP BY item_id ORDER BY n DESC')
  const top = Number(items[0]!.n)
  const bought = items.length
  t.ok(bought < 400, `not every item is bought (${bought} of 400)`)
  t.ok(top >= 10 * Number(items[Math.floor(bought / 2)]!.n), `top item (${top}) far above the median bought item`)

  // taste: a user's top category holds most of their searches
  const [share] = await db.query<mysql.RowDataPacket[]>(`SELECT AVG(top_n / total) AS share FROM (
    SELECT user_id, MAX(n) AS top_n, SUM(n) AS total FROM (
      SELECT user_id, category_id, COUNT(*) AS n FROM searches GROUP BY user_id, category_id) x
    GROUP BY user_id HAVING SUM(n) >= 5) y`)
  t.ok(Number(share[0]!.share) > 0.45, `users concentrate on a few categories (top share ${Number(share[0]!.share).toFixed(2)})`)
})

t.test('reset drops only the project tables; seeding a non-empty database without it is refused', async (t) => {
  await db.query('CREATE TABLE unrelated_keep (id INT PRIMARY KEY, note VARCHAR(20))')
  await db.query("INSERT INTO unrelated_keep VALUES (1, 'still here')")
  await t.rejects(seed({ ...BASE }), /already has data/, 'refuses to seed over existing data')
  await seed({ ...BASE, reset: true })
  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT note FROM unrelated_keep')
  t.same(rows.map((r) => r.note), ['still here'], 'the unrelated table and its row survived')
  t.equal(await count('users'), 300, 'project tables were re-created and re-seeded')
  await db.query('DROP TABLE unrelated_keep')
})

async function countsIn (conn: mysql.Connection): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const table of DATA_TABLES) {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`)
    out[table] = Number(rows[0]!.n)
  }
  return out
}

async function checksumsIn (conn: mysql.Connection): Promise<Record<string, string>> {
  const [sums] = await conn.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${DATA_TABLES.join(', ')}`)
  return Object.fromEntries(sums.map((r) => [String(r.Table).split('.').pop()!, String(r.Checksum)]))
}

t.test('--if-empty: a database with users is left alone', async (t) => {
  const before = await fingerprint()
  const counts = await countsIn(db)
  t.equal(counts.users, 300, 'starts from the seeded base data')
  const lines: string[] = []
  const r = await seed({ ...BASE, users: 50, seed: 7, ifEmpty: true, log: (l) => lines.push(l) })
  t.equal(r.skipped, true, 'skipped')
  if (r.skipped) t.equal(r.existingUsers, 300, 'reports the users it found')
  t.equal(r.rows, 0, 'wrote nothing')
  t.match(lines.join('\n'), /database already has 300 users; nothing to do/)
  t.same(await countsIn(db), counts, 'row counts unchanged')
  t.same(await fingerprint(), before, 'rows unchanged')

  const again = await seed({ ...BASE, ifEmpty: true, reset: true })
  t.equal(again.skipped, true, 'with reset as well, a database with users is still skipped')
  // the flag docker-compose passes
  await seedMain(['--if-empty', '--mysql-url', main.url, '--users', '5', '--items', '5'])
  t.same(await fingerprint(), before, 'the CLI with --if-empty changed nothing either')
})

t.test('--if-empty: categories and items without users (an interrupted seed) start over', async (t) => {
  const opts: SeedOptions = { ...BASE, users: 120, items: 150, categories: 8 }
  const ref = await createDb('ifempty_ref')
  conns.push(ref.conn)
  await seed({ ...opts, mysqlUrl: ref.url })

  const part = await createDb('ifempty_partial')
  conns.push(part.conn)
  await migrate(part.url)
  // ids and a name that collide with what the seed writes: loading over them would skip or fail
  await part.conn.query("INSERT INTO categories (id, name) VALUES (1, 'leftover'), (5, 'books'), (99, 'stray')")
  await part.conn.query("INSERT INTO items (id, category_id, name) VALUES (1, 1, 'old'), (2, 5, 'older'), (500, 99, 'stray')")
  await part.conn.query('CREATE TABLE unrelated_keep (id INT PRIMARY KEY)')
  await part.conn.query('INSERT INTO unrelated_keep VALUES (1)')

  const lines: string[] = []
  const r = await seed({ ...opts, mysqlUrl: part.url, ifEmpty: true, log: (l) => lines.push(l) })
  t.equal(r.skipped, false, 'not skipped')
  if (!r.skipped) t.equal(r.reset, true, 'reset first')
  t.match(lines.join('\n'), /no users but rows in categories, items: an interrupted seed/, 'says why')
  t.match(lines.join('\n'), /dropped this project's tables/, 'says it dropped the tables')
  t.same(await countsIn(part.conn), await countsIn(ref.conn), 'the same counts as a seed of an empty database')
  t.equal((await countsIn(part.conn)).users, 120, 'the requested users')
  const [dups] = await part.conn.query<mysql.RowDataPacket[]>(`SELECT
    (SELECT COUNT(*) - COUNT(DISTINCT id) FROM categories) + (SELECT COUNT(*) - COUNT(DISTINCT name) FROM categories)
    + (SELECT COUNT(*) - COUNT(DISTINCT id) FROM items) + (SELECT COUNT(*) - COUNT(DISTINCT id) FROM users) AS dups,
    (SELECT COUNT(*) FROM categories WHERE name IN ('leftover', 'stray') OR id = 99) AS leftover_categories,
    (SELECT COUNT(*) FROM items WHERE name IN ('old', 'older', 'stray') OR id = 500) AS leftover_items`)
  t.equal(Number(dups[0]!.dups), 0, 'no duplicate keys')
  t.equal(Number(dups[0]!.leftover_categories), 0, 'no leftover categories')
  t.equal(Number(dups[0]!.leftover_items), 0, 'no leftover items')
  t.same(await checksumsIn(part.conn), await checksumsIn(ref.conn), 'rows identical to a seed of an empty database')
  const [keep] = await part.conn.query<mysql.RowDataPacket[]>('SELECT id FROM unrelated_keep')
  t.same(keep.map((x) => x.id), [1], 'only this project\'s tables were dropped')
})

t.test('--if-empty: an empty database, one without tables, and a missing one are seeded', async (t) => {
  const opts: SeedOptions = { ...BASE, users: 40, items: 60, categories: 6, ifEmpty: true }
  const check = async (t: Test, url: string, conn: mysql.Connection) => {
    const lines: string[] = []
    const r = await seed({ ...opts, mysqlUrl: url, log: (l) => lines.push(l) })
    t.equal(r.skipped, false, 'seeded')
    if (!r.skipped) t.equal(r.reset, false, 'nothing to reset')
    t.match(lines.join('\n'), /--if-empty: database is empty/)
    t.equal(r.users, 40)
    const c = await countsIn(conn)
    t.same([c.users, c.items, c.categories], [40, 60, 6], 'the requested rows')
    t.ok(c.searches! > 0 && c.purchases! > 0, 'with events')
  }

  const migrated = await createDb('ifempty_migrated')
  conns.push(migrated.conn)
  await migrate(migrated.url)
  await t.test('migrated, all tables empty', (t) => check(t, migrated.url, migrated.conn))

  const bare = await createDb('ifempty_bare')
  conns.push(bare.conn)
  await t.test('no tables yet', (t) => check(t, bare.url, bare.conn))

  const name = `${prefix}_ifempty_new`
  created.push(name)
  const url = dbUrl(name)
  await t.test('no database yet', async (t) => {
    const lines: string[] = []
    const r = await seed({ ...opts, mysqlUrl: url, log: (l) => lines.push(l) })
    t.equal(r.skipped, false, 'seeded')
    t.match(lines.join('\n'), /--if-empty: database is empty/)
    const conn = await mysql.createConnection({ uri: url, timezone: 'Z' })
    conns.push(conn)
    t.equal((await countsIn(conn)).users, 40)
  })
})

t.test('refreshGlobalStats fills the stats tables from the seeded events', async (t) => {
  // seed() already ran it with now = NOW; run it again explicitly
  const r = await refreshGlobalStats(db, { now: NOW })
  t.ok(r.items > 50, `item_popularity rows (${r.items})`)
  t.equal(r.categories, 12)
  t.ok(r.pairs > 0 && r.pairs <= 12 * 11, `co-occurrence pairs (${r.pairs})`)
  t.equal(await count('item_popularity'), r.items)
  t.equal(await count('category_popularity'), 12)
  t.equal(await count('category_cooccurrence'), r.pairs)
  const [meta] = await db.query<mysql.RowDataPacket[]>("SELECT refreshed_at FROM stats_meta WHERE name = 'global'")
  t.equal((meta[0]!.refreshed_at as Date).toISOString(), NOW.toISOString(), 'stats_meta records now')
  const [bad] = await db.query<mysql.RowDataPacket[]>(`SELECT
    (SELECT COUNT(*) FROM category_cooccurrence WHERE category_a = category_b) AS self,
    (SELECT COUNT(*) FROM category_cooccurrence a LEFT JOIN category_cooccurrence b
       ON b.category_a = a.category_b AND b.category_b = a.category_a AND b.users = a.users WHERE b.category_a IS NULL) AS asym,
    (SELECT COUNT(*) FROM item_popularity p JOIN items i ON i.id = p.item_id WHERE i.category_id <> p.category_id) AS wrong_cat,
    (SELECT SUM(purchase_count) FROM item_popularity) AS purchases`)
  t.equal(Number(bad[0]!.self), 0, 'no self pairs')
  t.equal(Number(bad[0]!.asym), 0, 'both directions stored with equal counts')
  t.equal(Number(bad[0]!.wrong_cat), 0)
  t.equal(Number(bad[0]!.purchases), await count('purchases'), 'every purchase of the window counted once')
})

t.test('the in-memory work tables fall back to InnoDB with the same results', async (t) => {
  const reference = await loadGlobalStats(db)
  for (const memoryTableBytes of [16_384, 0]) {
    const steps: string[] = []
    await refreshGlobalStats(db, { now: NOW, memoryTableBytes, onStep: (s) => steps.push(s) })
    t.ok(steps.includes('user_cat (InnoDB)') || (memoryTableBytes === 0 && steps.includes('user_cat')), `${memoryTableBytes}: ${steps.join(', ')}`)
    sameStats(t, await loadGlobalStats(db), reference, `${memoryTableBytes}: same stats`)
  }
  // the borrowed session is left as found
  const vars = async (scope: 'SESSION' | 'GLOBAL') => {
    const [h] = await db.query<mysql.RowDataPacket[]>(`SELECT @@${scope}.max_heap_table_size AS h, @@${scope}.tmp_table_size AS t`)
    let iso: unknown
    for (const name of ['transaction_isolation', 'tx_isolation']) {
      try {
        const [r] = await db.query<mysql.RowDataPacket[]>(`SELECT @@${scope}.${name} AS i`)
        iso = r[0]!.i
        break
      } catch {}
    }
    return { heap: String(h[0]!.h), tmp: String(h[0]!.t), iso }
  }
  t.same(await vars('SESSION'), await vars('GLOBAL'), 'session variables restored')
})

/** Equal up to float summation order (category scores are sums of decayed weights). */
function sameStats (t: Test, a: GlobalStats, b: GlobalStats, msg: string): void {
  const close = (x: number, y: number) => Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(y))
  const ok = a.categoryPopularity.length === b.categoryPopularity.length &&
    a.categoryPopularity.every((c, i) => c.category === b.categoryPopularity[i]!.category && close(c.score, b.categoryPopularity[i]!.score))
  t.ok(ok, `${msg}: category popularity`)
  t.same(a.cooccurrence, b.cooccurrence, `${msg}: co-occurrence`)
  t.same(a.itemsByCategory, b.itemsByCategory, `${msg}: items`)
}

function checkShape (t: Test, s: GlobalStats, categories: string[], perCategory: number): void {
  const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
  t.same(Object.keys(s).sort(), ['categoryPopularity', 'cooccurrence', 'itemsByCategory'])
  t.same(s.categoryPopularity.map((c) => c.category).sort(byName), [...categories].sort(byName), 'every category listed once')
  for (let i = 1; i < s.categoryPopularity.length; i++) {
    const a = s.categoryPopularity[i - 1]!
    const b = s.categoryPopularity[i]!
    if (!(a.score > b.score || (a.score === b.score && byName(a.category, b.category) < 0))) {
      t.fail(`categoryPopularity out of order at ${i}: ${JSON.stringify([a, b])}`)
    }
  }
  t.same(Object.keys(s.itemsByCategory).sort(byName), [...categories].sort(byName), 'itemsByCategory has every category')
  t.same(Object.keys(s.cooccurrence).sort(byName), [...categories].sort(byName), 'cooccurrence has every category')
  for (const [cat, list] of Object.entries(s.itemsByCategory)) {
    t.ok(list.length <= perCategory, `${cat}: at most ${perCategory} items`)
    list.forEach((it, i) => {
      if (it.category !== cat || typeof it.itemId !== 'number' || typeof it.score !== 'number') t.fail(`${cat}: bad item ${JSON.stringify(it)}`)
      const prev = list[i - 1]
      if (prev && !(prev.score > it.score || (prev.score === it.score && prev.itemId < it.itemId))) t.fail(`${cat}: items out of order at ${i}`)
    })
  }
  for (const [cat, list] of Object.entries(s.cooccurrence)) {
    list.forEach((c, i) => {
      if (c.category === cat || !Number.isInteger(c.users) || c.users <= 0) t.fail(`${cat}: bad co-occurrence ${JSON.stringify(c)}`)
      const prev = list[i - 1]
      if (prev && !(prev.users > c.users || (prev.users === c.users && byName(prev.category, c.category) < 0))) t.fail(`${cat}: co-occurrence out of order at ${i}`)
    })
  }
}

t.test('loadGlobalStats returns the documented shape and order', async (t) => {
  const [cats] = await db.query<mysql.RowDataPacket[]>('SELECT name FROM categories')
  const names = cats.map((c) => String(c.name))
  const s = await loadGlobalStats(db, { itemsPerCategory: 7 })
  checkShape(t, s, names, 7)
  t.ok(s.categoryPopularity.every((c) => c.score > 0), 'seeded categories all have a score')
  t.ok(Object.values(s.itemsByCategory).some((l) => l.length === 7), 'lists are cut at itemsPerCategory')
  const [top] = await db.query<mysql.RowDataPacket[]>(`SELECT c.name FROM category_popularity p JOIN categories c ON c.id = p.category_id
    ORDER BY p.score DESC LIMIT 1`)
  t.equal(s.categoryPopularity[0]!.category, top[0]!.name)
  // symmetric co-occurrence survives the mapping to names
  for (const [a, list] of Object.entries(s.cooccurrence)) {
    for (const { category: b, users } of list) {
      if (s.cooccurrence[b]!.find((x) => x.category === a)?.users !== users) t.fail(`co-occurrence ${a}/${b} not symmetric`)
    }
  }
  const dflt = await loadGlobalStats(db)
  t.ok(Object.values(dflt.itemsByCategory).every((l) => l.length <= 200))
  t.ok(JSON.parse(JSON.stringify(dflt)), 'plain data (JSON round trip)')

  // through a pool as well (the service passes its pool); readers never see the tables empty
  const pool = mysql.createPool({ uri: main.url, connectionLimit: 3, timezone: 'Z' })
  try {
    t.same(await loadGlobalStats(pool, { itemsPerCategory: 7 }), s, 'same result through a pool')
    let done = false
    let reads = 0
    let empty = 0
    const reader = (async () => {
      while (!done) {
        const [r] = await pool.query<mysql.RowDataPacket[]>(`SELECT
          (SELECT COUNT(*) FROM item_popularity) AS i, (SELECT COUNT(*) FROM category_popularity) AS c,
          (SELECT COUNT(*) FROM category_cooccurrence) AS p`)
        reads++
        if (Number(r[0]!.i) === 0 || Number(r[0]!.c) === 0 || Number(r[0]!.p) === 0) empty++
      }
    })()
    for (let i = 0; i < 3; i++) await refreshGlobalStats(pool, { now: NOW })
    done = true
    await reader
    t.ok(reads > 0, `${reads} concurrent reads`)
    t.equal(empty, 0, 'no concurrent read saw an empty stats table')
    sameStats(t, await loadGlobalStats(pool, { itemsPerCategory: 7 }), s, 'a refresh with the same clock gives the same stats')
  } finally {
    await pool.end()
  }
})

t.test('exact figures on a hand-made data set; a brand-new database lists every category', async (t) => {
  const fresh = await createDb('fresh')
  conns.push(fresh.conn)
  const c = fresh.conn
  await migrate(fresh.url)
  await c.query("INSERT INTO categories (id, name) VALUES (1, 'books'), (2, 'art'), (3, 'zoo'), (4, 'Music')")

  const empty = await loadGlobalStats(c)
  checkShape(t, empty, ['books', 'art', 'zoo', 'Music'], 200)
  t.same(empty.categoryPopularity, [
    { category: 'Music', score: 0 }, { category: 'art', score: 0 }, { category: 'books', score: 0 }, { category: 'zoo', score: 0 }
  ], 'all categories with score 0, ties by code-unit name order')

  const at = (days: number) => new Date(NOW.getTime() - days * DAY)
  await c.query('INSERT INTO items (id, category_id, name) VALUES (10, 1, ?), (11, 1, ?), (20, 2, ?), (30, 3, ?)', ['a', 'b', 'c', 'd'])
  await c.query('INSERT INTO users (id, name) VALUES (1, ?), (2, ?), (3, ?)', ['u1', 'u2', 'u3'])
  await c.query('INSERT INTO purchases (user_id, item_id, category_id, purchased_at) VALUES ?', [[
    [1, 10, 1, at(0)], [2, 10, 1, at(14)], // item 10: 1 + 0.5
    [1, 11, 1, at(28)], // item 11: 0.25
    [3, 30, 3, at(100)], // outside the 90-day window
    [2, 20, 2, at(7)] // item 20: 2^-0.5
  ]])
  await c.query('INSERT INTO searches (user_id, query, category_id, searched_at) VALUES ?', [[
    [1, 'q', 2, at(7)], // books+art for user 1
    [3, 'q', 3, at(0)], [3, 'q', 3, at(14)] // zoo: 1 + 0.25
  ]])
  await refreshGlobalStats(c, { now: NOW })
  const s = await loadGlobalStats(c)
  checkShape(t, s, ['books', 'art', 'zoo', 'Music'], 200)
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-9
  const pop = Object.fromEntries(s.categoryPopularity.map((x) => [x.category, x.score]))
  // books: purchases 3 × (1 + 0.5 + 0.25); art: search 0.5 (7-day half-life) + purchase 3 × 2^-0.5; zoo: searches 1.25
  t.ok(close(pop.books!, 5.25), `books ${pop.books}`)
  t.ok(close(pop.art!, 0.5 + 3 * 2 ** -0.5), `art ${pop.art}`)
  t.ok(close(pop.zoo!, 1.25), `zoo ${pop.zoo}`)
  t.equal(pop.Music, 0)
  t.same(s.categoryPopularity.map((x) => x.category), ['books', 'art', 'zoo', 'Music'])
  t.same(s.itemsByCategory.books!.map((i) => i.itemId), [10, 11])
  t.ok(close(s.itemsByCategory.books![0]!.score, 1.5) && close(s.itemsByCategory.books![1]!.score, 0.25))
  t.same(s.itemsByCategory.zoo, [], 'a purchase outside the window does not count')
  const [ip] = await c.query<mysql.RowDataPacket[]>('SELECT purchase_count, last_purchased_at FROM item_popularity WHERE item_id = 10')
  t.equal(Number(ip[0]!.purchase_count), 2)
  t.equal((ip[0]!.last_purchased_at as Date).toISOString(), NOW.toISOString())
  // users 1 (books, art) and 2 (books, art) engage with both; user 3 only with zoo
  t.same(s.cooccurrence.books, [{ category: 'art', users: 2 }])
  t.same(s.cooccurrence.art, [{ category: 'books', users: 2 }])
  t.same(s.cooccurrence.zoo, [])

  // a refresh replaces everything: with the events gone, the tables empty out (in one transaction)
  await c.query('DELETE FROM searches')
  await c.query('DELETE FROM purchases')
  await refreshGlobalStats(c, { now: NOW })
  const after = await loadGlobalStats(c)
  t.ok(after.categoryPopularity.every((x) => x.score === 0))
  t.ok(Object.values(after.itemsByCategory).every((l) => l.length === 0))
})

t.test('migrate: concurrent runs on one database take turns, and every migration is applied and recorded once', async (t) => {
  const db = await createDb('concurrent_migrate')
  conns.push(db.conn)
  const runs = await Promise.allSettled([1, 2, 3, 4].map(() => migrate(db.url)))
  t.same(runs.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'], 'no run failed')
  const applied = runs.flatMap((r) => r.status === 'fulfilled' ? r.value : [])
  const files = (await readMigrations()).map((m) => m.name)
  t.same([...applied].sort(), [...files].sort(), 'each migration applied by exactly one run')
  const [rows] = await db.conn.query('SELECT COUNT(*) AS n FROM schema_migrations') as unknown as [Array<{ n: number }>]
  t.equal(Number(rows[0]?.n), files.length, 'recorded once each')
})
