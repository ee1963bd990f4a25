import t from 'tap'
import { withApp } from './helpers/app.ts'
import { COLD_USER, MISSING_USER } from '../tools/fixture.ts'

const { app } = await withApp(t, { config: { BATCH_MAX_IDS: 100 } })

t.test('GET batch collapses duplicates and names every failed id', async (t) => {
  const res = await app.inject(`/batch-recommend?user_ids=1,2,2,${MISSING_USER},${COLD_USER},1`)
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.successful, 3)
  t.equal(body.failed, 1)
  t.same(body.results.map((r: { user_id: number }) => r.user_id), [1, 2, COLD_USER])
  t.same(body.errors, [{ user_id: MISSING_USER, status: 404, error: `user ${MISSING_USER} not found` }])
})

t.test('batch answers equal single answers for the same users', async (t) => {
  const batch = (await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [3, 4], limit: 5 } })).json()
  for (const r of batch.results) {
    const single = await app.inject(`/recommend/${r.user_id}?limit=5`)
    t.equal(single.headers['x-cache'], 'HIT-L1', 'the batch filled the cache')
    t.same(single.json(), r)
  }
})

t.test('more than BATCH_MAX_IDS distinct ids is a 400; bad ids are named', async (t) => {
  const tooMany = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: Array.from({ length: 101 }, (_v, i) => i + 1) } })
  t.equal(tooMany.statusCode, 400)
  t.match(tooMany.json().message, /must NOT have more than 100 items/, 'refused by the schema')
  const bad = await app.inject('/batch-recommend?user_ids=1,abc,0,-3')
  t.equal(bad.statusCode, 400)
  t.match(bad.json().message, /"abc", "0", "-3"/)
  const empty = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [] } })
  t.equal(empty.statusCode, 400)
  const missing = await app.inject('/batch-recommend')
  t.equal(missing.statusCode, 400)
})

t.test('a batch body over the bound is refused with 413 before it is parsed', async (t) => {
  // The shape that once cost 151 ms of event loop: 977 KiB of nested arrays.
  const nested = JSON.stringify({ user_ids: Array.from({ length: 70_000 }, () => [[[[1, 2, 3]]]]) })
  t.ok(nested.length > 900_000, `${nested.length} bytes`)
  const res = await app.inject({ method: 'POST', url: '/batch-recommend', headers: { 'content-type': 'application/json' }, payload: nested })
  t.equal(res.statusCode, 413)
  t.equal(res.json().code, 'FST_ERR_CTP_BODY_TOO_LARGE')
  // Not even looked at: a body that is not JSON at all gets the same 413, not a parse error.
  const garbage = await app.inject({ method: 'POST', url: '/batch-recommend', headers: { 'content-type': 'application/json' }, payload: '{'.repeat(10_000) })
  t.equal(garbage.statusCode, 413)
  // A full batch of the largest ids, pretty-printed, still fits.
  const full = JSON.stringify({ user_ids: Array.from({ length: 100 }, (_v, i) => String(2_147_483_547 + i)), limit: 100 }, null, 2)
  t.equal((await app.inject({ method: 'POST', url: '/batch-recommend', headers: { 'content-type': 'application/json' }, payload: full })).statusCode, 200)
})
