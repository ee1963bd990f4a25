import t from 'tap'
import { adminHeaders, scoringsOf, withApp } from './helpers/app.ts'
import { COLD_USER, MISSING_USER } from '../tools/fixture.ts'

const { app } = await withApp(t)

t.test('first read is a MISS, the second is served from the in-process LRU with the same body', async (t) => {
  const first = await app.inject('/recommend/7')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['x-cache'], 'MISS')
  t.equal(first.headers['x-served-by'], 'test-replica')
  t.match(first.headers['server-timing'], /l2;dur=[\d.]+, db;dur=[\d.]+, score;dur=[\d.]+, total;dur=/)
  t.match(first.headers['content-type'], /application\/json/)
  const body = first.json()
  t.equal(body.user_id, 7)
  t.equal(body.metadata.cold_start, false)
  t.equal(body.metadata.search_count, 3)
  t.equal(body.metadata.purchase_count, 1)
  // user 7 leans to category (7 % 8) + 1 = 8 (fashion) and also searched category 1 (electronics)
  t.same(body.recommendations.recommended_categories.slice(0, 2), ['fashion', 'electronics'])
  t.ok(body.recommendations.items.length > 0 && body.recommendations.items.length <= 10)
  t.notOk(body.recommendations.items.some((i: { item_id: number }) => i.item_id === 8 * 100 + 1 + (7 % 3)), 'never recommends what the user bought')

  const second = await app.inject('/recommend/7')
  t.equal(second.headers['x-cache'], 'HIT-L1')
  t.equal(second.body, first.body)
})

t.test('after the LRU is cleared the answer comes from Redis (HIT-L2), then from the LRU again', async (t) => {
  await app.inject('/recommend/8')
  app.recommender.clearL1()
  const fromRedis = await app.inject('/recommend/8')
  t.equal(fromRedis.headers['x-cache'], 'HIT-L2')
  t.match(fromRedis.headers['server-timing'], /l2;dur=/)
  t.equal((await app.inject('/recommend/8')).headers['x-cache'], 'HIT-L1')
})

t.test('invalidation removes the user from both tiers: the next read is a MISS', async (t) => {
  await app.inject('/recommend/9')
  await app.inject('/recommend/9?limit=3')
  const inv = await app.inject({ method: 'POST', url: '/invalidate-cache/9', headers: adminHeaders })
  t.equal(inv.statusCode, 200)
  t.same(inv.json().invalidated, [9])
  t.equal((await app.inject('/recommend/9?limit=3')).headers['x-cache'], 'MISS', 'every limit is invalidated')
  t.equal((await app.inject('/recommend/9')).headers['x-cache'], 'HIT-L1', 'and one new scoring serves them all again')

  await app.inject('/recommend/10')
  await app.inject('/recommend/11')
  const many = await app.inject({ method: 'POST', url: '/invalidate-cache', headers: adminHeaders, payload: { user_ids: [10, 11, 11] } })
  t.equal(many.statusCode, 200)
  t.same(many.json().invalidated, [10, 11])
  app.recommender.clearL1()
  t.equal((await app.inject('/recommend/10')).headers['x-cache'], 'MISS', 'gone from Redis too')
  t.equal((await app.inject('/recommend/11')).headers['x-cache'], 'MISS')
})

t.test('one scoring per user serves every limit, from each tier', async (t) => {
  const scorings = () => scoringsOf([app])
  const before = await scorings()
  const three = await app.inject('/recommend/12?limit=3')
  t.equal(three.statusCode, 200)
  t.equal(three.json().recommendations.items.length, 3)
  t.equal(three.headers['x-cache'], 'MISS')
  const ten = await app.inject('/recommend/12')
  t.equal(ten.headers['x-cache'], 'HIT-L1', 'another limit is a hit')
  t.ok(ten.json().recommendations.items.length > 3)
  t.same(ten.json().recommendations.items.slice(0, 3), three.json().recommendations.items, 'the shorter list is a prefix of the longer')
  t.same({ ...ten.json(), recommendations: { ...ten.json().recommendations, items: [] } },
    { ...three.json(), recommendations: { ...three.json().recommendations, items: [] } }, 'the rest of the answer is the same')
  const all = await app.inject('/recommend/12?limit=100')
  t.ok(all.json().recommendations.items.length >= ten.json().recommendations.items.length)
  app.recommender.clearL1()
  const fromRedis = await app.inject('/recommend/12?limit=7')
  t.equal(fromRedis.headers['x-cache'], 'HIT-L2')
  t.same(fromRedis.json().recommendations.items, all.json().recommendations.items.slice(0, 7))
  t.equal(await scorings() - before, 1, 'scored once')
})

t.test('a user with no events gets popularity-based recommendations marked cold_start', async (t) => {
  const res = await app.inject(`/recommend/${COLD_USER}`)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.metadata.cold_start, true)
  t.equal(body.metadata.search_count, 0)
  t.equal(body.recommendations.weightage, 0)
  t.equal(body.recommendations.recommended_categories.length, 8)
  t.ok(body.recommendations.items.length > 0)
})

t.test('an unknown user is a 404 with a JSON error, and the answer is cached', async (t) => {
  let loads = 0
  const orig = app.userStore.loadUsers.bind(app.userStore)
  app.userStore.loadUsers = async (...args) => { loads++; return await orig(...args) }
  t.teardown(() => { app.userStore.loadUsers = orig })

  const first = await app.inject(`/recommend/${MISSING_USER}`)
  t.equal(first.statusCode, 404)
  t.equal(first.json().code, 'REC_ERR_USER_NOT_FOUND')
  t.equal(first.headers['x-cache'], 'MISS')
  for (let i = 0; i < 20; i++) {
    const again = await app.inject(`/recommend/${MISSING_USER}`)
    t.equal(again.statusCode, 404)
  }
  t.equal(loads, 1, 'a flood of the same unknown id reaches MySQL once')
  app.recommender.clearL1()
  const fromRedis = await app.inject(`/recommend/${MISSING_USER}`)
  t.equal(fromRedis.statusCode, 404)
  t.equal(fromRedis.headers['x-cache'], 'HIT-L2')
  t.equal(loads, 1)
})

t.test('health endpoints report both dependencies and the pool', async (t) => {
  t.same((await app.inject('/health/live')).json(), { status: 'ok' })
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  const health = await app.inject('/health')
  t.equal(health.statusCode, 200)
  t.match(health.json(), { status: 'ok', database: 'ok', redis: 'ok', pool: { size: 1, in_use: Number, queued: Number } })
})

t.test('metrics count answers per cache tier', async (t) => {
  const res = await app.inject('/metrics')
  t.equal(res.statusCode, 200)
  t.match(res.body, /recsvc_answers_total\{tier="HIT-L1",status="200"\} [1-9]\d*/)
  t.match(res.body, /recsvc_answers_total\{tier="MISS",status="200"\} [1-9]\d*/)
  t.match(res.body, /recsvc_scorings_total \d+/)
})
