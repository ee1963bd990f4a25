import t from 'tap'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, adminHeaders } from './helpers/app.ts'
import { loadFixture } from './helpers/fixture.ts'

const services = await startServices()
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)
const app = await buildTestApp({ redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() })
t.teardown(() => app.close())

const badIds = ['abc', '0', '-1', '1.5', '2147483648', '99999999999', '1e3', '0x10', '%20', '%2012', '01', '+5']

t.test('every malformed user id is a 400 with a JSON error, never a 500', async (t) => {
  for (const id of badIds) {
    const res = await app.inject(`/recommend/${id}`)
    t.equal(res.statusCode, 400, `GET /recommend/${id}`)
    t.match(res.json(), { statusCode: 400, code: String, message: String }, id)
    const inv = await app.inject({ method: 'POST', url: `/invalidate-cache/${id}`, headers: adminHeaders })
    t.equal(inv.statusCode, 400, `POST /invalidate-cache/${id}`)
  }
  const empty = await app.inject('/recommend/')
  t.equal(empty.statusCode, 400, 'empty id')
  t.equal(empty.json().statusCode, 400)
  t.equal((await app.inject('/recommend/2147483647')).statusCode, 404, 'the largest valid id is accepted (and unknown)')
})

t.test('bad limit values are 400s', async (t) => {
  for (const q of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'limit=-1', 'foo=1']) {
    const res = await app.inject(`/recommend/1?${q}`)
    t.equal(res.statusCode, 400, q)
    t.equal(res.json().code, 'REC_ERR_VALIDATION')
  }
})

t.test('bad JSON bodies are 400s', async (t) => {
  const broken = await app.inject({ method: 'POST', url: '/batch-recommend', headers: { 'content-type': 'application/json' }, payload: '{"user_ids": [1,' })
  t.equal(broken.statusCode, 400)
  const wrongType = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: 'nope' } })
  t.equal(wrongType.statusCode, 400)
  const badInv = await app.inject({ method: 'POST', url: '/invalidate-cache', headers: adminHeaders, payload: { user_ids: [1, 'x'] } })
  t.equal(badInv.statusCode, 400)
})

t.test('admin endpoints require the bearer token', async (t) => {
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: adminHeaders.authorization + 'x' }, { authorization: 'Basic abc' }]) {
    const one = await app.inject({ method: 'POST', url: '/invalidate-cache/1', headers })
    t.equal(one.statusCode, 401)
    t.equal(one.json().code, 'REC_ERR_UNAUTHORIZED')
    const many = await app.inject({ method: 'POST', url: '/invalidate-cache', headers, payload: { user_ids: [1] } })
    t.equal(many.statusCode, 401)
  }
  t.equal((await app.inject({ method: 'POST', url: '/invalidate-cache/1', headers: adminHeaders })).statusCode, 200)
})

t.test('unknown routes are JSON 404s', async (t) => {
  const res = await app.inject('/nope')
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'REC_ERR_NOT_FOUND')
})
