import t from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, waitFor } from './helpers/app.ts'
import { loadFixture } from './helpers/fixture.ts'

// Its own MariaDB, so the test can stop and restart it. Short freshness so cached answers go
// stale during the test; the grace period keeps them servable.
const services = await startServices({ ownMysql: true })
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const app = await buildTestApp(
  { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() },
  { L1_TTL_MS: 300, L2_TTL_S: 1, CACHE_GRACE_S: 600, BREAKER_COOLDOWN_MS: 300, STATS_REFRESH_INTERVAL_S: 3600 }
)
t.teardown(() => app.close())

t.test('with MySQL stopped, cached users get 200 (HIT or STALE) and uncached users a fast 503', async (t) => {
  for (const id of [41, 42]) await app.inject(`/recommend/${id}`)
  await services.mysql.kill()

  const fresh = await app.inject('/recommend/41')
  t.equal(fresh.statusCode, 200)
  t.match(fresh.headers['x-cache'], /^(HIT-L1|HIT-L2)$/)

  await new Promise((resolve) => setTimeout(resolve, 1300)) // past fresh, within grace
  for (const id of [41, 42]) {
    const res = await app.inject(`/recommend/${id}`)
    t.equal(res.statusCode, 200, `user ${id}`)
    t.equal(res.headers['x-cache'], 'STALE')
    t.match(res.headers['cache-control'], /^max-age=0, stale-while-revalidate=\d+, stale-if-error=\d+$/)
  }

  for (let i = 0; i < 8; i++) {
    const start = performance.now()
    const res = await app.inject(`/recommend/${50 + i}`)
    const ms = performance.now() - start
    t.equal(res.statusCode, 503, 'uncached user')
    t.ok(Number(res.headers['retry-after']) >= 1, 'Retry-After')
    t.equal(res.json().code, 'REC_ERR_UNAVAILABLE')
    t.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`)
  }
  t.equal(app.breakers.mysql.current === 'closed', false, 'the breaker opened')
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.same(ready.json().failing, ['database'])
})

t.test('when MySQL comes back the app recovers by itself', async (t) => {
  await services.mysql.start()
  await waitFor('an uncached user to be served', async () => (await app.inject('/recommend/60')).statusCode === 200, 20_000)
  t.equal((await app.inject('/health/ready')).statusCode, 200)
  t.equal(app.breakers.mysql.current, 'closed')
  const res = await app.inject('/recommend/41')
  t.equal(res.statusCode, 200)
})
