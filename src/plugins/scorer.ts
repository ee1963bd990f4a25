import fp from 'fastify-plugin'
import { Piscina } from 'piscina'
import type { Config } from '../config.ts'
import type { ScoreTask } from '../../workers/types.ts'
import type { AnswerBody } from '../../workers/answer-body.ts'
import { BoundedGate } from '../lib/bounded-gate.ts'
import { withTimeout } from '../lib/timeout.ts'

function warmUpTask (): ScoreTask {
  const json = Buffer.from('{"categoryPopularity":[],"cooccurrence":{},"itemsByCategory":{}}')
  const statsBuffer = new SharedArrayBuffer(json.length)
  new Uint8Array(statsBuffer).set(json)
  return {
    userId: 0,
    searches: [],
    purchases: [],
    limit: 1,
    now: Date.now(),
    weights: { searchBase: 1, searchHalfLifeDays: 7, purchaseBase: 3, purchaseHalfLifeDays: 14 },
    modelVersion: 'warm-up',
    statsVersion: -1,
    statsBuffer
  }
}

export interface Scorer {
  run (task: ScoreTask): Promise<AnswerBody>
  stats (): { size: number, in_use: number, queued: number }
  /** ids of the live worker threads: a timed-out task must not replace them */
  threadIds (): number[]
}

declare module 'fastify' {
  interface FastifyInstance { scorer: Scorer }
}

// From src/plugins (tsx) the worker is workers/score.ts; from dist/src/plugins it is dist/workers/score.js.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
const workerFile = new URL(`../../workers/score${ext}`, import.meta.url).href

/** The piscina pool that scores users off the event loop. Tasks wait in our own bounded queue
 *  (bounded in length and in time), not in piscina's: only two per thread are handed to piscina,
 *  one running and one ready, so a thread never idles waiting for the main thread. A task that runs
 *  too long is given up by its caller but never aborted: aborting a running piscina task
 *  terminates its thread, and with it the statistics the thread has parsed. */
function noop (): void {}

export default fp(async function scorerPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const pool = new Piscina<ScoreTask, AnswerBody>({
    filename: workerFile,
    minThreads: c.SCORER_THREADS,
    maxThreads: c.SCORER_THREADS,
    idleTimeout: 60_000
  })
  const gate = new BoundedGate({ name: 'scoring', limit: 2 * c.SCORER_THREADS, maxQueue: c.SCORER_MAX_QUEUE, queueTimeoutMs: c.SCORER_QUEUE_TIMEOUT_MS })
  const scorer: Scorer = {
    run: (task) => new Promise<AnswerBody>((resolve, reject) => {
      gate.run(() => {
        const running = pool.run(task)
        withTimeout(running, c.SCORER_TASK_TIMEOUT_MS, 'scoring').then(resolve, reject)
        // The slot is held until the task really ends, so a slow task still counts against the
        // bound after its caller has given up on it.
        return running.then(noop, noop)
      }).catch(reject)
    }),
    stats: () => ({ size: pool.threads.length, in_use: Math.min(gate.active, pool.threads.length), queued: gate.queued + Math.max(0, gate.active - pool.threads.length) }),
    threadIds: () => pool.threads.map((t) => t.threadId)
  }
  // Start every thread and run one task through it before reporting ready, so the first real
  // requests do not pay for thread start-up (and a broken worker file fails the boot, not a request).
  await Promise.all(Array.from({ length: c.SCORER_THREADS }, () => pool.run(warmUpTask())))
  app.decorate('scorer', scorer)
  app.addHook('onClose', async () => { await pool.close() })
}, { name: 'scorer' })
