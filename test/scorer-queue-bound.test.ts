import t from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp } from './helpers/app.ts'
import { loadFixture } from './helpers/fixture.ts'
import type { ScoreTask } from '../workers/types.ts'

const services = await startServices()
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const app = await buildTestApp(
  { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() },
  { SCORER_THREADS: 1, SCORER_MAX_QUEUE: 2 }
)
t.teardown(() => app.close())

// A deliberately heavy task (many events) keeps the single worker busy for a while.
function heavyTask (): ScoreTask {
  const stats = app.globalStats.current()
  const now = Date.now()
  return {
    userId: 1,
    searches: Array.from({ length: 200_000 }, (_v, i) => ({ category: `c${i % 500}`, at: now - i * 1000 })),
    purchases: [],
    limit: 10,
    now,
    weights: { searchBase: 1, searchHalfLifeDays: 7, purchaseBase: 3, purchaseHalfLifeDays: 14 },
    modelVersion: 'test',
    statsVersion: stats.version,
    statsJson: stats.json
  }
}

t.test('when the scoring queue is full a request gets 503 with Retry-After, and recovers after', async (t) => {
  const busy = [heavyTask(), heavyTask(), heavyTask()].map((task) => app.scorer.run(task).catch((e: Error) => e))
  // one running + two queued: the queue is at its bound
  t.equal(app.scorer.stats().queued, 2)
  const res = await app.inject('/recommend/5')
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json(), { statusCode: 503, code: 'REC_ERR_OVERLOADED', request_id: String })

  const health = (await app.inject('/health')).json()
  t.ok(health.pool.queued <= 2, 'health shows the queue')

  await Promise.all(busy)
  const after = await app.inject('/recommend/5')
  t.equal(after.statusCode, 200, 'served once the queue drains')
  t.equal(after.headers['x-cache'], 'MISS', 'the 503 was not cached')
})

t.test('a batch whose scoring overflows the queue names the failed ids with 503', async (t) => {
  const busy = [heavyTask(), heavyTask(), heavyTask()].map((task) => app.scorer.run(task).catch((e: Error) => e))
  const res = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [20, 21, 22, 23] } })
  await Promise.all(busy)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.successful + body.failed, 4)
  t.ok(body.failed > 0)
  t.ok(body.errors.every((e: { status: number }) => e.status === 503))
})
