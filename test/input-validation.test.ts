import t from 'tap'
import type { LightMyRequestResponse as Response } from 'fastify'
import { adminHeaders, withApp } from './helpers/app.ts'

const { app } = await withApp(t)

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

// Ids and limits are read one way everywhere (src/lib/user-id.ts): the same bad value is the same
// 400, with the same code and message, on every route that takes it. Ajv coercion once turned
// ["0x10","1e3",true] into users 16, 1000 and 1, and ?limit=0x0a into 10.
const q = encodeURIComponent
const idMessage = (v: unknown) => `invalid user id ${JSON.stringify(v)}: expected an integer from 1 to 2147483647 in plain decimal digits`
const limitMessage = (v: unknown) => `invalid limit ${JSON.stringify(v)}: expected an integer from 1 to 100 in plain decimal digits`
const post = async (url: string, payload: unknown, admin = false): Promise<Response> =>
  await app.inject({ method: 'POST', url, payload: payload as object, headers: admin ? adminHeaders : {} })

/** Every route that reads a user id from text; each gets the bad id among good ones where it can. */
const textIdRoutes: Array<[string, (id: string) => Promise<Response>]> = [
  ['GET /recommend/:id', (id) => app.inject(`/recommend/${q(id)}`)],
  ['POST /invalidate-cache/:id', (id) => post(`/invalidate-cache/${q(id)}`, undefined, true)],
  ['GET /batch-recommend?user_ids=', (id) => app.inject(`/batch-recommend?user_ids=1,${q(id)},2`)],
  ['POST /batch-recommend', (id) => post('/batch-recommend', { user_ids: [1, id, '2'] })],
  ['POST /invalidate-cache', (id) => post('/invalidate-cache', { user_ids: [1, id, '2'] }, true)]
]
const jsonIdRoutes: Array<[string, (id: unknown) => Promise<Response>]> = [
  ['POST /batch-recommend', (id) => post('/batch-recommend', { user_ids: [1, id] })],
  ['POST /invalidate-cache', (id) => post('/invalidate-cache', { user_ids: [1, id] }, true)]
]
const badTextIds = ['0x10', '1e3', '1.5', '-1', '0', '+5', '01', '00', ' 12', '12 ', '1 2', '1_000', 'abc', 'true',
  '2147483648', '99999999999', '１２', '', 'Infinity', '0b11', '1,']
const badJsonIds: unknown[] = [true, false, null, 1.5, -1, 0, 2147483648, 1e20, [1], { id: 1 }]

t.test('a bad user id is the same 400, code and message on every route', async (t) => {
  for (const id of badTextIds) {
    for (const [route, call] of textIdRoutes) {
      // '1,' is one bad id in a path or array, but two good ids and an empty one in a comma list
      const expected = route.startsWith('GET /batch') && id.includes(',') ? idMessage('') : idMessage(id)
      const res = await call(id)
      t.equal(res.statusCode, 400, `${route} ${JSON.stringify(id)}`)
      t.same(res.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: expected }, `${route} ${JSON.stringify(id)}`)
    }
  }
  for (const id of badJsonIds) {
    for (const [route, call] of jsonIdRoutes) {
      const res = await call(id)
      t.equal(res.statusCode, 400, `${route} ${JSON.stringify(id)}`)
      t.same(res.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: idMessage(id) }, `${route} ${JSON.stringify(id)}`)
    }
  }
})

t.test('the coercion cases of issue 8 are 400s, not users 16, 1000 and 1', async (t) => {
  for (const url of ['/batch-recommend', '/invalidate-cache']) {
    const res = await post(url, { user_ids: ['0x10', '1e3', true] }, url === '/invalidate-cache')
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, 'REC_ERR_VALIDATION', url)
    t.equal(res.json().message, 'invalid user ids "0x10", "1e3", true: expected an integer from 1 to 2147483647 in plain decimal digits', url)
  }
  const get = await app.inject('/batch-recommend?user_ids=0x10,1e3,true')
  t.equal(get.json().message, 'invalid user ids "0x10", "1e3", "true": expected an integer from 1 to 2147483647 in plain decimal digits')
  for (const url of ['/recommend/1?limit=0x0a', '/batch-recommend?user_ids=1&limit=0x0a']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 400, url)
    t.same(res.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: limitMessage('0x0a') }, url)
  }
  const body = await post('/batch-recommend', { user_ids: [1], limit: '0x0a' })
  t.same(body.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: limitMessage('0x0a') })
})

t.test('a bad limit is the same 400, code and message in every query and body', async (t) => {
  const textLimits = ['0', '101', '0x0a', '1e1', '1.5', '-1', '+5', '05', ' 5', '5 ', 'abc', '', '10.0', 'Infinity']
  const jsonLimits: unknown[] = [0, 101, 1.5, -1, true, null, [5], '0x0a', '1e1', '05', ' 5', '']
  const routes: Array<[string, (limit: unknown) => Promise<Response>]> = [
    ['GET /recommend/1', (l) => app.inject(`/recommend/1?limit=${q(String(l))}`)],
    ['GET /batch-recommend', (l) => app.inject(`/batch-recommend?user_ids=1,2&limit=${q(String(l))}`)],
    ['POST /batch-recommend', (l) => post('/batch-recommend', { user_ids: [1, 2], limit: l })]
  ]
  for (const limit of textLimits) {
    for (const [route, call] of routes) {
      const res = await call(limit)
      t.same(res.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: limitMessage(limit) }, `${route} limit=${JSON.stringify(limit)}`)
    }
  }
  for (const limit of jsonLimits) {
    const res = await post('/batch-recommend', { user_ids: [1, 2], limit })
    t.same(res.json(), { statusCode: 400, code: 'REC_ERR_VALIDATION', error: 'Bad Request', message: limitMessage(limit) }, `POST limit ${JSON.stringify(limit)}`)
  }
  const repeated = await app.inject('/recommend/1?limit=5&limit=6')
  t.equal(repeated.statusCode, 400, 'a repeated limit')
  t.equal(repeated.json().code, 'REC_ERR_VALIDATION')
})

t.test('/events takes JSON-integer user ids and names a bad one the same way', async (t) => {
  for (const id of [...badJsonIds, '0x10', '1e3', '7']) {
    const res = await post('/events', [{ type: 'search', user_id: 1, category: 'books' }, { type: 'search', user_id: id, category: 'books' }], true)
    t.equal(res.statusCode, 400, JSON.stringify(id))
    t.equal(res.json().code, 'REC_ERR_INVALID_EVENTS', JSON.stringify(id))
    t.same(res.json().entries.map((e: { index: number }) => e.index), [1])
    t.match(res.json().entries[0].error, `user_id must be`)
    t.match(res.json().entries[0].error, `invalid user id ${JSON.stringify(id)} (events take a JSON integer from 1 to 2147483647)`, JSON.stringify(id))
  }
})

t.test('the good forms still work, and mean the same user everywhere', async (t) => {
  const single = await app.inject('/recommend/3?limit=4')
  t.equal(single.statusCode, 200)
  t.equal(single.json().user_id, 3)
  t.equal(single.json().recommendations.items.length, 4)
  const items = single.json().recommendations.items
  const all = (await app.inject('/recommend/3?limit=100')).json().recommendations.items
  t.ok(all.length >= 4, 'limit 100')
  t.equal((await app.inject('/recommend/3?limit=1')).json().recommendations.items.length, 1, 'limit 1')
  t.equal((await app.inject('/recommend/3')).json().recommendations.items.length, Math.min(10, all.length), 'the default limit')

  const get = await app.inject('/batch-recommend?user_ids=3,4,3&limit=4')
  const postNum = await post('/batch-recommend', { user_ids: [3, 4, 3], limit: 4 })
  const postStr = await post('/batch-recommend', { user_ids: ['3', 4, '3'], limit: '4' })
  for (const [name, res] of [['GET', get], ['POST numbers', postNum], ['POST strings', postStr]] as const) {
    t.equal(res.statusCode, 200, name)
    t.same(res.json().results.map((r: { user_id: number }) => r.user_id), [3, 4], name)
    t.same(res.json().results[0].recommendations.items, items, `${name}: the same items as the single read`)
  }
  t.equal((await app.inject('/batch-recommend?user_ids=2147483647')).json().errors[0].user_id, 2147483647, 'the largest id, unknown')
  t.equal((await post('/batch-recommend', { user_ids: [2147483647] })).json().errors[0].user_id, 2147483647)

  const inv = await post('/invalidate-cache', { user_ids: [3, '4', '2147483647'] }, true)
  t.equal(inv.statusCode, 200)
  t.same(inv.json().invalidated, [3, 4, 2147483647])
  t.same((await post('/invalidate-cache/4', undefined, true)).json().invalidated, [4])
})
