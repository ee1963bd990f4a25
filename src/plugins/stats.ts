import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import { loadGlobalStats, refreshGlobalStats } from '../lib/global-stats.ts'
import { withTimeout } from '../lib/timeout.ts'
import type { GlobalStats } from '../../workers/types.ts'

/** One version of the statistics: parsed for the main thread (the fallback answer), and as UTF-8
 *  JSON in shared memory for the scoring threads. */
export interface StatsSnapshot { version: number, stats: GlobalStats, buffer: SharedArrayBuffer }
export interface StatsHolder { current (): StatsSnapshot | undefined }

declare module 'fastify' {
  interface FastifyInstance { globalStats: StatsHolder }
}

/** Global statistics (item popularity, category popularity, co-occurrence) kept in memory with a
 *  version; workers get them through shared memory and parse them once per version. Recomputed in SQL in the
 *  background by one replica at a time (a Redis lock), and reloaded by every replica. */
export default fp(async function statsPlugin (app, opts: { config: Config }) {
  const c = opts.config
  let version = 0
  let snapshot: StatsSnapshot | undefined
  const lockKey = `${c.REDIS_KEY_PREFIX}lock:stats-refresh`
  const halfLife = { purchaseHalfLifeDays: c.PURCHASE_HALF_LIFE_DAYS, searchHalfLifeDays: c.SEARCH_HALF_LIFE_DAYS }

  const load = async () => {
    const stats = await withTimeout(loadGlobalStats(app.mysql, { itemsPerCategory: c.STATS_ITEMS_PER_CATEGORY }), c.STATS_LOAD_TIMEOUT_MS, 'global statistics')
    const bytes = Buffer.from(JSON.stringify(stats), 'utf8')
    const buffer = new SharedArrayBuffer(bytes.length)
    new Uint8Array(buffer).set(bytes)
    snapshot = { version: ++version, stats, buffer }
    return stats
  }

  const refreshIfDue = async () => {
    // One replica recomputes per interval; the lock expires by itself if that replica dies.
    const got = await app.redis.set(lockKey, c.REPLICA_ID, 'PX', c.STATS_REFRESH_INTERVAL_S * 1000, 'NX').catch(() => null)
    // The timeout frees this replica from a stuck recomputation; the SQL may still finish on the
    // server, and the lock stops other replicas from piling more on top until it expires.
    if (got === 'OK') await withTimeout(refreshGlobalStats(app.mysql, halfLife), c.STATS_REFRESH_TIMEOUT_S * 1000, 'global statistics refresh')
  }

  const first = await load()
  if (first.categoryPopularity.every((x) => x.score === 0) && first.categoryPopularity.length > 0) {
    // A database seeded without stats: compute them once now so the first answers are not empty.
    await withTimeout(refreshGlobalStats(app.mysql, halfLife), c.STATS_REFRESH_TIMEOUT_S * 1000, 'global statistics refresh')
    await load()
  }

  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  const tick = () => {
    running = (async () => {
      try {
        await refreshIfDue()
        await load()
      } catch (err) {
        app.log.warn({ err }, 'global stats refresh failed; keeping the previous version')
      }
    })()
    timer = setTimeout(tick, c.STATS_REFRESH_INTERVAL_S * 1000)
    timer.unref()
  }
  timer = setTimeout(tick, c.STATS_REFRESH_INTERVAL_S * 1000)
  timer.unref()

  app.decorate('globalStats', { current: () => snapshot })
  app.addHook('onClose', async () => {
    clearTimeout(timer)
    await running
  })
}, { name: 'global-stats', dependencies: ['mysql', 'redis'] })
