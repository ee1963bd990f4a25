import t, { type Test } from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, waitFor } from './helpers/app.ts'
import { loadFixture, MISSING_USER } from '../tools/fixture.ts'

// Its own MariaDB, so the test can pause, stop and restart it. Short freshness so cached answers
// go stale during the test; the grace period keeps them servable.
const services = await startServices({ ownMysql: true })
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const app = await buildTestApp(
  { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() },
  { L1_TTL_MS: 300, L2_TTL_S: 1, CACHE_GRACE_S: 600, BREAKER_COOLDOWN_MS: 300, STATS_REFRESH_INTERVAL_S: 3600, MYSQL_QUERY_TIMEOUT_MS: 600 }
)
t.teardown(() => app.close())

const mysqlPid = () => {
  const pid = services.mysql.pid
  if (pid === undefined) throw new Error('MySQL is not running')
  return pid
}

/** An uncached user while MySQL cannot answer: the popularity fallback, fast, marked degraded. */
async function expectFallback (t: Test, id: number) {
  const start = performance.now()
  const res = await app.inject(`/recommend/${id}?limit=4`)
  const ms = performance.now() - start
  t.equal(res.statusCode, 200, `user ${id}: 200`)
  t.equal(res.headers['x-cache'], 'FALLBACK')
  t.match(res.headers['cache-control'], /^max-age=\d+$/)
  const body = res.json()
  t.equal(body.user_id, id)
  t.equal(body.metadata.degraded, true)
  t.equal(body.recommendations.items.length, 4)
  t.ok(ms < 2000, `answered in ${ms.toFixed(0)} ms`)
}

t.test('with MySQL paused (queries hang), uncached users get FALLBACK 200 and cached users their answer', async (t) => {
  for (const id of [41, 42]) await app.inject(`/recommend/${id}`)
  t.equal((await app.inject(`/recommend/${MISSING_USER}`)).statusCode, 404)
  process.kill(mysqlPid(), 'SIGSTOP')
  t.teardown(() => { try { process.kill(mysqlPid(), 'SIGCONT') } catch {} })

  const cached = await app.inject('/recommend/41')
  t.equal(cached.statusCode, 200)
  t.match(cached.headers['x-cache'], /^(HIT-L1|HIT-L2|STALE)$/)
  t.equal(cached.json().metadata.degraded, false)
  await Promise.all([50, 51, 52, 53].map((id) => expectFallback(t, id)))
  const missing = await app.inject(`/recommend/${MISSING_USER}`)
  t.equal(missing.statusCode, 404, 'a user known not to exist stays a 404')

  process.kill(mysqlPid(), 'SIGCONT')
  await waitFor('a personalised answer again', async () => (await app.inject('/recommend/54')).headers['x-cache'] === 'MISS', 20_000)
  const again = await app.inject('/recommend/50')
  // The fill that was waiting on MySQL went on after the request got the fallback, and cached
  // the personalised answer once MySQL answered.
  t.match(again.headers['x-cache'], /^(MISS|HIT-L1|HIT-L2)$/, 'the fallback was never stored as the user\'s answer')
  t.equal(again.json().metadata.degraded, false)
})

t.test('with MySQL stopped, cached users get 200 (HIT or STALE) and uncached users FALLBACK 200', async (t) => {
  for (const id of [43, 44]) await app.inject(`/recommend/${id}`)
  await services.mysql.kill()

  const fresh = await app.inject('/recommend/43')
  t.equal(fresh.statusCode, 200)
  t.match(fresh.headers['x-cache'], /^(HIT-L1|HIT-L2)$/)

  await new Promise((resolve) => setTimeout(resolve, 1300)) // past fresh, within grace
  for (const id of [43, 44]) {
    const res = await app.inject(`/recommend/${id}`)
    t.equal(res.statusCode, 200, `user ${id}`)
    t.equal(res.headers['x-cache'], 'STALE')
    t.match(res.headers['cache-control'], /^max-age=0, stale-while-revalidate=\d+, stale-if-error=\d+$/)
  }
  for (let i = 0; i < 8; i++) await expectFallback(t, 60 + i)
  const batch = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [43, 70, 71] } })
  t.equal(batch.statusCode, 200)
  t.same(batch.json().results.map((r: { metadata: { degraded: boolean } }) => r.metadata.degraded), [false, true, true], 'a batch degrades per id')
  t.equal(app.breakers.mysql.current === 'closed', false, 'the breaker opened')
  t.equal((await app.inject('/health/ready')).statusCode, 200, 'still ready: this replica serves')
  const health = await app.inject('/health')
  t.equal(health.statusCode, 503)
  t.same(health.json().failing, ['database'])
})

t.test('when MySQL comes back the app recovers by itself', async (t) => {
  await services.mysql.start()
  await waitFor('an uncached user to be served', async () => (await app.inject('/recommend/80')).headers['x-cache'] === 'MISS', 20_000)
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal(app.breakers.mysql.current, 'closed')
  const res = await app.inject('/recommend/60')
  t.equal(res.statusCode, 200)
  t.equal(res.headers['x-cache'], 'MISS', 'personalised, not the fallback')
})

t.test('a load that gives up on a pooled connection never runs its query later', async (t) => {
  const one = await buildTestApp(
    { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() },
    { MYSQL_POOL_SIZE: 1, MYSQL_QUERY_TIMEOUT_MS: 200, REPLICA_ID: 'pool-of-one' }
  )
  t.teardown(() => one.close())
  const held = await one.mysql.getConnection()
  const executed = async () => {
    const [rows] = await held.query("SHOW SESSION STATUS WHERE Variable_name IN ('Com_stmt_execute', 'Com_select')")
    return (rows as Array<{ Value: string }>).reduce((n, r) => n + Number(r.Value), 0)
  }
  const before = await executed()
  const res = await one.inject('/recommend/90')
  t.equal(res.headers['x-cache'], 'FALLBACK', 'no connection within the deadline: the fallback')
  held.release()
  await new Promise((resolve) => setTimeout(resolve, 300))
  const again = await one.mysql.getConnection()
  t.equal(again.threadId, held.threadId, 'the pool\'s only connection')
  t.equal(await executed() - before, 0, 'the abandoned load ran no statement on it')
  again.release()
})
