import t from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, waitFor } from './helpers/app.ts'
import { loadFixture } from '../tools/fixture.ts'
import type { FastifyInstance } from 'fastify'
import { serialize } from 'node:v8'
import { setImmediate } from 'node:timers/promises'
import type { ScoreTask } from '../workers/types.ts'
import { packHistory } from '../workers/history-wire.ts'

const services = await startServices()
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const urls = { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() }

// A deliberately heavy task (many events) keeps the single worker busy for a while.
function heavyTask (app: FastifyInstance): ScoreTask {
  const stats = app.globalStats.current()
  if (!stats) throw new Error('no statistics loaded')
  const now = Date.now()
  return {
    userId: 1,
    history: packHistory(Array.from({ length: 200_000 }, (_v, i) => ({ category: `c${i % 500}`, at: now - i * 1000 })), []),
    limit: 10,
    now,
    weights: { searchBase: 1, searchHalfLifeDays: 7, purchaseBase: 3, purchaseHalfLifeDays: 14 },
    modelVersion: 'test',
    statsVersion: stats.version,
    statsBuffer: stats.buffer
  }
}

async function submitApart (app: FastifyInstance, n: number): Promise<Array<Promise<unknown>>> {
  const out = []
  const tasks = Array.from({ length: n }, () => heavyTask(app))
  for (const task of tasks) {
    out.push(app.scorer.run(task).catch((e: Error) => e))
    await setImmediate()
  }
  return out
}

t.test('when the scoring queue is full a miss gets the FALLBACK answer at once, and it is not cached', async (t) => {
  const app = await buildTestApp({ ...urls, prefix: uniquePrefix() }, { SCORER_THREADS: 1, SCORER_MAX_QUEUE: 2, SCORER_QUEUE_TIMEOUT_MS: 30_000, SCORER_TASK_TIMEOUT_MS: 30_000 })
  t.teardown(() => app.close())
  // Tasks of one turn of the event loop share a pool task, so these come one turn apart: two
  // handed to the thread (one running, one ready) and two waiting, which is the queue's bound.
  const busy = await submitApart(app, 4)
  t.equal(app.scorer.stats().queued, 2, 'health shows the two waiting')

  const res = await app.inject('/recommend/5?limit=3')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-cache'], 'FALLBACK')
  t.equal(res.headers['cache-control'], 'max-age=5', 'a short max-age, no stale directives')
  const body = res.json()
  t.equal(body.user_id, 5)
  t.equal(body.metadata.degraded, true)
  t.equal(body.metadata.cold_start, true, 'the popularity-based cold-start answer')
  t.equal(body.recommendations.items.length, 3, 'cut to the limit asked for')
  t.ok(body.recommendations.recommended_categories.length > 0, 'popular categories')

  const health = (await app.inject('/health')).json()
  t.equal(health.pool.size, 1)

  await Promise.all(busy)
  const after = await app.inject('/recommend/5')
  t.equal(after.statusCode, 200, 'served once the queue drains')
  t.equal(after.headers['x-cache'], 'MISS', 'the fallback was not cached as the user\'s answer')
  t.equal(after.json().metadata.degraded, false)
  t.equal(after.json().metadata.cold_start, false)
})

t.test('a batch whose scoring overflows the queue gets FALLBACK entries for what did not fit', async (t) => {
  const app = await buildTestApp({ ...urls, prefix: uniquePrefix() }, { SCORER_THREADS: 1, SCORER_MAX_QUEUE: 1, SCORER_QUEUE_TIMEOUT_MS: 30_000, SCORER_TASK_TIMEOUT_MS: 30_000 })
  t.teardown(() => app.close())
  const busy = await submitApart(app, 3)
  const res = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [20, 21, 22, 23] } })
  await Promise.all(busy)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.successful, 4, 'every id answered')
  t.equal(body.failed, 0)
  t.ok(body.results.every((r: { metadata: { degraded: boolean } }) => r.metadata.degraded), 'degraded answers')
  t.same(body.results.map((r: { user_id: number }) => r.user_id), [20, 21, 22, 23])
})

t.test('a scoring task that runs past its timeout is given up on, but its thread is kept', async (t) => {
  const app = await buildTestApp({ ...urls, prefix: uniquePrefix() }, { SCORER_THREADS: 1, SCORER_TASK_TIMEOUT_MS: 20 })
  t.teardown(() => app.close())
  const threads = app.scorer.threadIds()
  t.equal(threads.length, 1)
  const heavy = app.scorer.run(heavyTask(app)).then(() => 'finished', (e: Error) => e.message)
  t.match(await heavy, /scoring is unavailable/, 'the caller stops waiting')
  // The user's request still gets an answer: the fallback while the thread is busy, then its own.
  const res = await app.inject('/recommend/7')
  t.equal(res.statusCode, 200)
  t.match(res.headers['x-cache'], /^(FALLBACK|MISS)$/)
  await waitFor('the heavy task to end', () => app.scorer.stats().in_use === 0)
  t.same(app.scorer.threadIds(), threads, 'the same thread: not terminated, statistics still parsed')
  const later = await app.inject('/recommend/8')
  t.equal(later.statusCode, 200)
  t.same(app.scorer.threadIds(), threads)
})

t.test('a scoring task carries the statistics by reference: the message per task stays under 4 KiB', async (t) => {
  const app = await buildTestApp({ ...urls, prefix: uniquePrefix() }, { SCORER_THREADS: 1 })
  t.teardown(() => app.close())
  const tasks: ScoreTask[] = []
  const run = app.scorer.run.bind(app.scorer)
  app.scorer.run = (task) => { tasks.push(task); return run(task) }
  for (const id of [31, 32, 33]) t.equal((await app.inject(`/recommend/${id}`)).headers['x-cache'], 'MISS')
  t.equal(tasks.length, 3)
  const stats = app.globalStats.current()
  for (const task of tasks) {
    t.equal(task.statsBuffer, stats?.buffer, 'the one shared buffer of the current version, not a copy')
    t.ok(task.statsBuffer instanceof SharedArrayBuffer)
    // What a postMessage copies: everything but the shared memory (typed arrays are one copy each).
    const copied = serialize({ ...task, statsBuffer: undefined }).length
    t.ok(copied < 4096, `${copied} bytes copied per task`)
  }
  t.ok((stats?.buffer.byteLength ?? 0) > 0)
})
