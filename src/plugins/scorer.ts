import fp from 'fastify-plugin'
import { Piscina } from 'piscina'
import type { Config } from '../config.ts'
import type { RecommendationBody, ScoreTask } from '../../workers/types.ts'
import { overloaded, unavailable } from '../lib/errors.ts'

function warmUpTask (): ScoreTask {
  return {
    userId: 0,
    searches: [],
    purchases: [],
    limit: 1,
    now: Date.now(),
    weights: { searchBase: 1, searchHalfLifeDays: 7, purchaseBase: 3, purchaseHalfLifeDays: 14 },
    modelVersion: 'warm-up',
    statsVersion: -1,
    statsJson: '{"categoryPopularity":[],"cooccurrence":{},"itemsByCategory":{}}'
  }
}

export interface Scorer {
  run (task: ScoreTask): Promise<RecommendationBody>
  stats (): { size: number, in_use: number, queued: number }
}

declare module 'fastify' {
  interface FastifyInstance { scorer: Scorer }
}

// From src/plugins (tsx) the worker is workers/score.ts; from dist/src/plugins it is dist/workers/score.js.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
const workerFile = new URL(`../../workers/score${ext}`, import.meta.url).href

/** The piscina pool that scores users off the event loop. Threads and queue are bounded; a full
 *  queue is a 503 with Retry-After straight away rather than unbounded memory. */
export default fp(async function scorerPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const pool = new Piscina<ScoreTask, RecommendationBody>({
    filename: workerFile,
    minThreads: c.SCORER_THREADS,
    maxThreads: c.SCORER_THREADS,
    maxQueue: c.SCORER_MAX_QUEUE,
    idleTimeout: 60_000
  })
  let inUse = 0
  const scorer: Scorer = {
    async run (task) {
      if (pool.queueSize >= c.SCORER_MAX_QUEUE) throw overloaded('scoring')
      inUse++
      try {
        return await pool.run(task, { signal: AbortSignal.timeout(c.SCORER_TASK_TIMEOUT_MS) })
      } catch (err) {
        const e = err as Error
        if (e.name === 'AbortError' || e.name === 'TimeoutError') throw unavailable('scoring')
        if (/queue is at limit/i.test(e.message)) throw overloaded('scoring')
        throw err
      } finally {
        inUse--
      }
    },
    stats: () => ({ size: pool.threads.length, in_use: Math.min(inUse, pool.threads.length), queued: pool.queueSize })
  }
  // Start every thread and run one task through it before reporting ready, so the first real
  // requests do not pay for thread start-up (and a broken worker file fails the boot, not a request).
  await Promise.all(Array.from({ length: c.SCORER_THREADS }, () => pool.run(warmUpTask())))
  app.decorate('scorer', scorer)
  app.addHook('onClose', async () => { await pool.close() })
}, { name: 'scorer' })
