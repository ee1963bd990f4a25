import t from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, waitFor } from './helpers/app.ts'
import { loadFixture } from '../tools/fixture.ts'

// Its own Redis, so the test can stop and restart it.
const services = await startServices({ ownRedis: true })
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const app = await buildTestApp({ redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() }, { BREAKER_COOLDOWN_MS: 200 })
t.teardown(() => app.close())

const timed = async (url: string) => {
  const start = performance.now()
  const res = await app.inject(url)
  return { res, ms: performance.now() - start }
}

t.test('with Redis stopped, cached and uncached users still get 200 and nothing hangs', async (t) => {
  for (const id of [31, 32, 33]) await app.inject(`/recommend/${id}`)
  await services.redis.kill()
  await waitFor('the subscription to drop', () => !app.invalidationBus.up)

  for (let round = 0; round < 3; round++) {
    for (const id of [31, 32, 33, 34, 35]) {
      const { res, ms } = await timed(`/recommend/${id}`)
      t.equal(res.statusCode, 200, `user ${id} round ${round}: ${res.headers['x-cache']}`)
      t.ok(['HIT-L1', 'STALE', 'MISS'].includes(res.headers['x-cache'] as string))
      t.ok(ms < 1500, `answered in ${ms.toFixed(0)} ms`)
    }
  }
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'still ready: this replica serves')
  const health = await app.inject('/health')
  t.equal(health.statusCode, 503)
  t.same(health.json().failing, ['redis'])
  const batch = await app.inject('/batch-recommend?user_ids=31,36')
  t.equal(batch.json().successful, 2, 'batches too')
})

t.test('when Redis comes back the app uses it again without a restart', async (t) => {
  await services.redis.start()
  await waitFor('the subscription to come back', () => app.invalidationBus.up, 15_000)
  await waitFor('health', async () => (await app.inject('/health')).statusCode === 200, 15_000)
  // Redis restarted empty: the first read fills it, and after the LRU is cleared it answers.
  const first = await app.inject('/recommend/37')
  t.equal(first.headers['x-cache'], 'MISS')
  app.recommender.clearL1()
  await waitFor('HIT-L2', async () => {
    const res = await app.inject('/recommend/37')
    if (res.headers['x-cache'] === 'HIT-L2') return true
    app.recommender.clearL1()
    return false
  }, 10_000)
  t.pass('HIT-L2 again')
})
