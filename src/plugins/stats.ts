import { randomUUID } from 'node:crypto'
import fp from 'fastify-plugin'
import client from 'prom-client'
import type { PoolConnection, RowDataPacket } from 'mysql2/promise'
import { statsRefreshSettings, type Config } from '../config.ts'
import { loadGlobalStats } from '../lib/global-stats-load.ts'
import { refreshGlobalStats, STATS_META_NAME } from '../lib/global-stats-refresh.ts'
import { withTimeout } from '../lib/timeout.ts'
import type { GlobalStats } from '../../workers/types.ts'

/** One version of the statistics: parsed for the main thread (the fallback answer), and as UTF-8
 *  JSON in shared memory for the scoring threads. */
export interface StatsSnapshot { version: number, stats: GlobalStats, buffer: SharedArrayBuffer }
export interface StatsHolder { current (): StatsSnapshot | undefined }

declare module 'fastify' {
  interface FastifyInstance { globalStats: StatsHolder }
}

// The lock outlives the longest a refresh may run here (its timeout), plus time to KILL it and for
// clocks to drift, so no replica starts a recomputation while another one's SQL can still be running.
const LOCK_MARGIN_MS = 30_000
// Shutdown gives a running refresh this long to finish on its own before its SQL is killed.
const SHUTDOWN_GRACE_MS = 500
// Bounds the KILL of a refresh's session, and then the unwinding of the killed run.
const KILL_TIMEOUT_MS = 1000
// How often a booting replica that found the lock taken looks for the other replica's result.
const BOOT_POLL_MS = 250

// Touches the lock only while it still holds this run's token (it may have expired and been taken
// by another replica): gives it ARGV[2] ms more to live, or deletes it when that is 0.
const SETTLE_LOCK = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('DEL', KEYS[1])`

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** true when `p` settles within `ms`; the timer never outlives the wait. */
async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p.then(() => true, () => true), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

const isEmpty = (s: GlobalStats) => s.categoryPopularity.length > 0 && s.categoryPopularity.every((x) => x.score === 0)

/** A recomputation in flight, on a connection of its own so that its SQL can be stopped. */
interface Run {
  conn: PoolConnection
  threadId: number
  work: Promise<unknown>
  settled: boolean
  /** ends the wait for `work`, which a destroyed connection may never settle */
  abandon: (why: Error) => void
  stopping?: Promise<boolean>
}

/** Global statistics (item popularity, category popularity, co-occurrence) kept in memory with a
 *  version; workers get them through shared memory and parse them once per version. Recomputed in SQL in the
 *  background by one replica at a time (a Redis lock), and reloaded by every replica. */
export default fp(async function statsPlugin (app, opts: { config: Config }) {
  const c = opts.config
  let version = 0
  let snapshot: StatsSnapshot | undefined
  const lockKey = `${c.REDIS_KEY_PREFIX}lock:stats-refresh`
  const intervalMs = c.STATS_REFRESH_INTERVAL_S * 1000
  const refreshTimeoutMs = c.STATS_REFRESH_TIMEOUT_S * 1000
  const lockTtlMs = Math.max(intervalMs, refreshTimeoutMs) + LOCK_MARGIN_MS
  // The deployment's own window and weights, not the defaults: the statistics must match the scorer.
  const halfLife = statsRefreshSettings(c)
  const refreshes = new client.Counter({
    name: 'recsvc_stats_refreshes_total',
    help: 'global statistics recomputations by result: ok, failed, or skipped_locked (another replica held the lock)',
    labelNames: ['result'],
    registers: [app.recMetrics.registry]
  })
  for (const result of ['ok', 'failed', 'skipped_locked']) refreshes.inc({ result }, 0)
  const loadFailures = new client.Counter({
    name: 'recsvc_stats_load_failures_total',
    help: 'background reloads of the global statistics that failed (the previous version stays in use)',
    registers: [app.recMetrics.registry]
  })
  // When the statistics in use were computed (by whichever replica), for their age.
  let computedAt: number | undefined
  new client.Gauge({
    name: 'recsvc_stats_version', help: 'version of the global statistics in use (counts reloads on this replica)', registers: [app.recMetrics.registry],
    collect () { this.set(snapshot?.version ?? 0) }
  })
  new client.Gauge({
    name: 'recsvc_stats_age_seconds', help: 'age of the global statistics in use, since they were computed (NaN: never computed)', registers: [app.recMetrics.registry],
    collect () { this.set(computedAt === undefined ? Number.NaN : (Date.now() - computedAt) / 1000) }
  })

  const load = async () => {
    // The outer bound is the whole load's; the inner one (per statement) keeps a timed-out
    // connection out of the pool.
    const stats = await withTimeout(loadGlobalStats(app.mysql, { itemsPerCategory: c.STATS_ITEMS_PER_CATEGORY, timeoutMs: c.STATS_LOAD_TIMEOUT_MS }), c.STATS_LOAD_TIMEOUT_MS, 'global statistics')
    const bytes = Buffer.from(JSON.stringify(stats), 'utf8')
    const buffer = new SharedArrayBuffer(bytes.length)
    new Uint8Array(buffer).set(bytes)
    snapshot = { version: ++version, stats, buffer }
    computedAt = await refreshedAt().catch(() => computedAt)
    return stats
  }

  /** When the last recomputation (by any replica) committed, in ms; undefined if never. */
  const refreshedAt = async (): Promise<number | undefined> => {
    const [rows] = await withTimeout(app.mysql.query<RowDataPacket[]>('SELECT refreshed_at FROM stats_meta WHERE name = ?', [STATS_META_NAME]),
      c.STATS_LOAD_TIMEOUT_MS, 'global statistics refresh time')
    const at = rows[0]?.refreshed_at as Date | undefined
    return at === undefined ? undefined : at.getTime()
  }

  let active: Run | undefined

  /** Stops a run's SQL on the server: KILL ends its session (the statement aborts, an open swap
   *  transaction rolls back, the temporary tables go), and the connection is destroyed rather than
   *  returned, so pool.end() (which queues its QUIT behind a running statement) does not wait for it.
   *  Resolves to whether the SQL is known to have stopped. */
  const stopSql = (run: Run): Promise<boolean> => {
    run.stopping ??= (async () => {
      let stopped = run.settled
      if (!stopped) {
        try {
          await withTimeout(app.mysql.query(`KILL ${run.threadId}`), KILL_TIMEOUT_MS, 'KILL of the statistics refresh')
          stopped = true
          // The server closing the session is what fails the statement in flight: destroying the
          // connection first would leave that promise pending forever (mysql2 then ignores the close).
          await settlesWithin(run.work, KILL_TIMEOUT_MS)
        } catch (err) {
          app.log.warn({ err, threadId: run.threadId }, 'could not kill the statistics refresh; its SQL may still be running')
        }
      }
      run.conn.destroy()
      run.abandon(new Error('the statistics refresh was stopped'))
      return stopped
    })()
    return run.stopping
  }

  /** One recomputation under the refresh timeout. */
  const recompute = async (): Promise<{ ok: true } | { ok: false, err: unknown, sqlStopped: boolean }> => {
    const pending = app.mysql.getConnection()
    let conn: PoolConnection
    try {
      conn = await withTimeout(pending, c.STATS_LOAD_TIMEOUT_MS, 'a MySQL connection for the statistics refresh')
    } catch (err) {
      pending.then((late) => late.release(), () => {})
      return { ok: false, err, sqlStopped: true }
    }
    const work = refreshGlobalStats(conn, halfLife)
    let abandon: (why: Error) => void = () => {}
    const abandoned = new Promise<never>((_resolve, reject) => { abandon = reject })
    abandoned.catch(() => {})
    const run: Run = { conn, threadId: conn.threadId, work, settled: false, abandon }
    // Registered before the race below, so it is set by the time a failed refresh reaches the catch.
    work.then(() => { run.settled = true }, () => { run.settled = true })
    active = run
    try {
      await withTimeout(Promise.race([work, abandoned]), refreshTimeoutMs, 'global statistics refresh')
      conn.release()
      return { ok: true }
    } catch (err) {
      // A timeout (or shutdown) leaves the SQL running on the server unless it is killed. A refresh
      // that failed by itself has stopped, but its session is not worth returning to the pool.
      return { ok: false, err, sqlStopped: await stopSql(run) }
    } finally {
      active = undefined
    }
  }

  /** The lock's token when this replica got it, null when another replica holds it. */
  const tryLock = async (): Promise<string | null> => {
    const token = `${c.REPLICA_ID}:${randomUUID()}`
    return await app.redis.set(lockKey, token, 'PX', lockTtlMs, 'NX') === 'OK' ? token : null
  }

  /** Recomputes under a lock this replica holds; throws when the recomputation failed. */
  const refreshLocked = async (token: string): Promise<void> => {
    const started = Date.now()
    const r = await recompute()
    refreshes.inc({ result: r.ok ? 'ok' : 'failed' })
    // Once the SQL has stopped, the lock only has to keep other replicas out until one interval after
    // this run started; SQL that could not be stopped keeps it for its full TTL.
    if (r.ok || r.sqlStopped) {
      const rest = Math.max(0, Math.round(started + intervalMs - Date.now()))
      await app.redis.eval(SETTLE_LOCK, 1, lockKey, token, rest).catch((err: unknown) => {
        app.log.warn({ err }, 'could not shorten the statistics refresh lock; it expires by itself')
      })
    }
    if (!r.ok) throw r.err
  }

  /** At boot on a database whose statistics were never computed: one replica computes them (under
   *  the lock), the others wait for its result, for as long as its refresh may take, then load it. */
  const computeAtBoot = async (since: number | undefined) => {
    const deadline = Date.now() + refreshTimeoutMs + LOCK_MARGIN_MS
    let counted = false
    for (;;) {
      const token = await tryLock().catch((err: unknown) => {
        app.log.warn({ err }, 'cannot take the statistics refresh lock at boot; waiting')
        return undefined
      })
      if (typeof token === 'string') {
        // As before: a boot that cannot compute the statistics it lacks fails (and is retried).
        await refreshLocked(token)
        return
      }
      if (token === null && !counted) {
        refreshes.inc({ result: 'skipped_locked' })
        counted = true
        app.log.info('another replica is computing the global statistics; waiting for its result')
      }
      await sleep(BOOT_POLL_MS)
      if (await refreshedAt().catch(() => since) !== since) return
      if (Date.now() > deadline) {
        app.log.warn('no replica computed the global statistics in time; booting with empty ones')
        return
      }
    }
  }

  const since = await refreshedAt()
  if (isEmpty(await load())) {
    // A database seeded without stats: compute them once now so the first answers are not empty.
    await computeAtBoot(since)
    await load()
  }

  let closing = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  const tick = async () => {
    try {
      const token = await tryLock().catch((err: unknown) => {
        refreshes.inc({ result: 'failed' })
        throw err
      })
      if (token === null) refreshes.inc({ result: 'skipped_locked' })
      else await refreshLocked(token)
      if (!closing) await load().catch((err: unknown) => {
        loadFailures.inc()
        throw err
      })
    } catch (err) {
      if (closing) app.log.info({ err }, 'global stats refresh stopped by shutdown')
      else app.log.warn({ err }, 'global stats refresh failed; keeping the previous version')
    }
  }
  // The next tick is armed when this one ends, so a slow run is never overlapped by the next.
  const schedule = () => {
    if (closing) return
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined
        schedule()
      })
    }, intervalMs)
    timer.unref()
  }
  schedule()

  app.decorate('globalStats', { current: () => snapshot })
  app.addHook('onClose', async () => {
    closing = true
    clearTimeout(timer)
    const run = running
    if (run === undefined || await settlesWithin(run, SHUTDOWN_GRACE_MS)) return
    // A recomputation can take minutes: kill it (the previous statistics stay in the database).
    if (active !== undefined) await stopSql(active)
    await settlesWithin(run, KILL_TIMEOUT_MS)
  })
}, { name: 'stats', dependencies: ['mysql', 'redis', 'metrics'] })
