import t, { type Test } from 'tap'
import mysql from 'mysql2/promise'
import type { FastifyInstance } from 'fastify'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildReplicas, buildTestApp, waitFor } from './helpers/app.ts'
import { loadFixture } from '../tools/fixture.ts'

// A refresh is made slow for real: another session holds LOCK TABLES purchases WRITE, so the
// refresh's first scan of purchases waits on the table lock (reading the stats tables does not).
const services = await startServices()
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const admin = await mysql.createConnection({ uri: services.mysql.url, timezone: 'Z', connectTimeout: 10_000 })
t.teardown(() => admin.end())

const urls = (prefix = uniquePrefix()) => ({ redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix })
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function refreshes (apps: FastifyInstance[], result: 'ok' | 'failed' | 'skipped_locked'): Promise<number> {
  let total = 0
  for (const app of apps) {
    const m = await app.recMetrics.registry.getSingleMetric('recsvc_stats_refreshes_total')?.get()
    total += m?.values.find((v) => v.labels.result === result)?.value ?? 0
  }
  return total
}

/** Refresh statements running on the server (blocked on the lock, or killed and not yet gone). */
async function refreshesInSql (): Promise<number> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
    WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE '%tmp_gs_%' AND INFO LIKE '%purchases%'`, [services.mysql.database])
  return Number(rows[0]!.n)
}

/** Holds purchases write-locked from a session of its own until the returned function is called. */
async function lockPurchases (t: Test): Promise<() => Promise<void>> {
  const conn = await mysql.createConnection({ uri: services.mysql.url, connectTimeout: 10_000 })
  await conn.query('LOCK TABLES purchases WRITE')
  let released: Promise<void> | undefined
  const release = () => {
    released ??= conn.query('UNLOCK TABLES').then(() => conn.end(), () => conn.destroy())
    return released
  }
  t.teardown(release)
  return release
}

async function refreshedAt (): Promise<number | undefined> {
  const [rows] = await admin.query<mysql.RowDataPacket[]>("SELECT refreshed_at FROM stats_meta WHERE name = 'global'")
  return (rows[0]?.refreshed_at as Date | undefined)?.getTime()
}

const hasStats = (app: FastifyInstance) => app.globalStats.current()!.stats.categoryPopularity.some((x) => x.score > 0)

t.test('3 replicas booting at once on a database without statistics run exactly one refresh, and all load it', async (t) => {
  // A freshly seeded database: the fixture's data, the stats tables empty and never refreshed.
  for (const table of ['item_popularity', 'category_popularity', 'category_cooccurrence', 'stats_meta']) await admin.query(`DELETE FROM ${table}`)
  const unlock = await lockPurchases(t)
  const prefix = uniquePrefix()
  const booting = Promise.all(['a', 'b', 'c'].map((r) => buildTestApp(urls(prefix), { REPLICA_ID: `boot-${r}` })))
  booting.then((apps) => t.teardown(() => Promise.all(apps.map((a) => a.close()))), () => {})
  await waitFor('a boot-time refresh blocked on the table lock', async () => await refreshesInSql() >= 1, 30_000)
  // Time for the other replicas to reach their own decision while the first refresh is held up.
  await sleep(1500)
  t.equal(await refreshesInSql(), 1, 'one refresh on the server while the others wait')
  await unlock()
  const apps = await booting
  t.equal(await refreshes(apps, 'ok'), 1, 'exactly one refresh ran')
  t.equal(await refreshes(apps, 'failed'), 0, 'none failed')
  t.equal(await refreshes(apps, 'skipped_locked'), 2, 'the other two found the lock taken')
  apps.forEach((app, i) => t.ok(hasStats(app), `replica ${i}: the computed statistics are loaded`))
  t.ok(await refreshedAt(), 'stats_meta records the refresh')
})

t.test('a refresh slower than the interval is not overlapped by another replica: the lock outlives the refresh timeout', async (t) => {
  const unlock = await lockPurchases(t)
  const prefix = uniquePrefix()
  const apps = await buildReplicas(2, urls(prefix), { STATS_REFRESH_INTERVAL_S: 1, STATS_REFRESH_TIMEOUT_S: 30 })
  t.teardown(() => Promise.all(apps.map((a) => a.close())))
  await waitFor('a refresh blocked on the table lock', async () => await refreshesInSql() >= 1, 10_000)
  let most = 0
  let shortestTtl = Infinity
  for (const end = Date.now() + 3500; Date.now() < end;) {
    most = Math.max(most, await refreshesInSql())
    shortestTtl = Math.min(shortestTtl, await apps[0]!.redis.pttl(`${prefix}lock:stats-refresh`))
    await sleep(100)
  }
  t.equal(most, 1, 'never two refreshes on the server at once, over 3.5 intervals')
  t.ok(shortestTtl > 26_000, `the lock lives past the 30 s refresh timeout (shortest PTTL seen ${shortestTtl} ms)`)
  t.ok(await refreshes(apps, 'skipped_locked') >= 2, 'the other replica\'s ticks found the lock taken')
  await unlock()
  await waitFor('the slow refresh to finish', async () => await refreshes(apps, 'ok') >= 1, 10_000)
  t.equal(await refreshes(apps, 'failed'), 0, 'none failed')
})

t.test('a tick never starts while this replica\'s previous run is still going', async (t) => {
  const unlock = await lockPurchases(t)
  const app = await buildTestApp(urls(), { STATS_REFRESH_INTERVAL_S: 1, STATS_REFRESH_TIMEOUT_S: 30 })
  t.teardown(() => app.close())
  await waitFor('a refresh blocked on the table lock', async () => await refreshesInSql() >= 1, 10_000)
  await sleep(3000)
  t.equal(await refreshes([app], 'skipped_locked'), 0, 'no tick ran during the 3 s run (each would have found its own lock)')
  t.equal(await refreshesInSql(), 1, 'one refresh on the server')
  await unlock()
  await waitFor('the slow refresh to finish', async () => await refreshes([app], 'ok') >= 1, 10_000)
  // The run outlasted its interval, so the lock is gone at once and the next tick refreshes again.
  await waitFor('the next tick to refresh', async () => await refreshes([app], 'ok') >= 2, 5000)
  t.equal(await refreshes([app], 'skipped_locked'), 0, 'still no tick found its own lock')
  t.equal(await refreshes([app], 'failed'), 0, 'none failed')
})

t.test('close() returns within about a second while a refresh is running, and the refresh\'s SQL is stopped', async (t) => {
  const unlock = await lockPurchases(t)
  const app = await buildTestApp(urls(), { STATS_REFRESH_INTERVAL_S: 1, STATS_REFRESH_TIMEOUT_S: 600 })
  let closed = false
  t.teardown(() => closed ? undefined : app.close())
  await waitFor('a refresh blocked on the table lock', async () => await refreshesInSql() >= 1, 10_000)
  const before = await refreshedAt()

  const started = performance.now()
  const closing = app.close().then(() => { closed = true })
  const inTime = await Promise.race([closing.then(() => true), sleep(5000).then(() => false)])
  const ms = performance.now() - started
  t.ok(inTime && ms < 2000, `close() returned in ${ms.toFixed(0)} ms`)
  // Still under the table lock: the statement is gone because it was killed, not because it ended.
  await waitFor('the refresh statement to leave the server', async () => await refreshesInSql() === 0, 3000)
  t.pass('the refresh\'s statement was stopped on the server')
  await unlock()
  await closing
  await sleep(300)
  t.equal(await refreshedAt(), before, 'the killed refresh committed nothing')
})

t.test('a refresh that times out is stopped on the server, so nothing of it runs on under the next one', async (t) => {
  const unlock = await lockPurchases(t)
  const app = await buildTestApp(urls(), { STATS_REFRESH_INTERVAL_S: 1, STATS_REFRESH_TIMEOUT_S: 1 })
  t.teardown(() => app.close())
  const before = await refreshedAt()
  await waitFor('a refresh to time out', async () => await refreshes([app], 'failed') >= 1, 10_000)
  await waitFor('the timed-out statement to leave the server', async () => await refreshesInSql() <= 1, 3000)
  let most = 0
  for (const end = Date.now() + 2500; Date.now() < end; await sleep(100)) most = Math.max(most, await refreshesInSql())
  t.equal(most, 1, 'each retry runs alone: the timed-out one was stopped, not left running')
  t.ok(await refreshes([app], 'failed') >= 2, 'the next ticks retried (the lock was released once the SQL had stopped)')
  t.equal(await refreshedAt(), before, 'nothing was committed while the table was locked')
  await unlock()
  await waitFor('a refresh to succeed once the lock is gone', async () => await refreshes([app], 'ok') >= 1, 10_000)
})
