import fp from 'fastify-plugin'
import { Piscina } from 'piscina'
import type { Config } from '../config.ts'
import type { ScoreTask } from '../../workers/types.ts'
import type { AnswerBody } from '../../workers/answer-body.ts'
import { BatchingScorer } from '../lib/batching-scorer.ts'
import { Gauge, Histogram } from 'prom-client'
import { packHistory } from '../../workers/history-wire.ts'

function warmUpTask (): ScoreTask {
  const json = Buffer.from('{"categoryPopularity":[],"cooccurrence":{},"itemsByCategory":{}}')
  const statsBuffer = new SharedArrayBuffer(json.length)
  new Uint8Array(statsBuffer).set(json)
  return {
    userId: 0,
    history: packHistory([], []),
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
/** Users per pool task: enough to amortise a task's main-thread cost, few enough that the first
 *  user of a batch does not wait long for the last (about 65 µs of scoring each). */
const SCORER_MAX_BATCH = 16

export default fp(async function scorerPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const pool = new Piscina<ScoreTask[], AnswerBody[]>({
    filename: workerFile,
    minThreads: c.SCORER_THREADS,
    maxThreads: c.SCORER_THREADS,
    idleTimeout: 60_000
  })
  const registers = [app.recMetrics.registry]
  const taskSeconds = new Histogram({
    name: 'recsvc_scorer_task_duration_seconds',
    help: 'one pool task (a batch of up to 16 users) from hand-over to piscina to its result',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers
  })
  const batches = new BatchingScorer<ScoreTask, AnswerBody>({
    runBatch: async (tasks) => {
      const end = taskSeconds.startTimer()
      try {
        return await pool.run(tasks)
      } finally {
        end()
      }
    },
    maxInFlight: 2 * c.SCORER_THREADS,
    maxBatch: SCORER_MAX_BATCH,
    maxQueue: c.SCORER_MAX_QUEUE,
    queueTimeoutMs: c.SCORER_QUEUE_TIMEOUT_MS,
    runTimeoutMs: c.SCORER_TASK_TIMEOUT_MS
  })
  const scorer: Scorer = {
    run: (task) => batches.run(task),
    stats: () => ({ size: pool.threads.length, in_use: Math.min(batches.running, pool.threads.length), queued: batches.queued }),
    threadIds: () => pool.threads.map((t) => t.threadId)
  }
  // Start every thread and run one task through it before reporting ready, so the first real
  // requests do not pay for thread start-up (and a broken worker file fails the boot, not a request).
  await Promise.all(Array.from({ length: c.SCORER_THREADS }, () => pool.run([warmUpTask()])))
  app.decorate('scorer', scorer)
  new Gauge({
    name: 'recsvc_scorer_queue_size', help: 'users waiting for a scoring thread (our bounded queue)', registers,
    collect () { this.set(batches.queued) }
  })
  new Gauge({
    name: 'recsvc_scorer_utilization_ratio', help: 'share of the pool\'s thread time spent running tasks since start (piscina)', registers,
    collect () { this.set(pool.utilization) }
  })
  new Gauge({
    name: 'recsvc_scorer_threads', help: 'scoring pool threads by state', labelNames: ['state'], registers,
    collect () {
      const s = scorer.stats()
      this.set({ state: 'size' }, s.size)
      this.set({ state: 'in_use' }, s.in_use)
      this.set({ state: 'queued' }, s.queued)
    }
  })
  app.addHook('onClose', async () => { await pool.close() })
}, { name: 'scorer', dependencies: ['metrics'] })
