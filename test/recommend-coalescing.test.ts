import t from 'tap'
import { scoringsOf, withApp } from './helpers/app.ts'

const { app } = await withApp(t)

// Counters wrap the real calls; MySQL and the worker pool still do the work.
let sqlLoads = 0
const load = app.userStore.loadUsers.bind(app.userStore)
app.userStore.loadUsers = async (...args) => { sqlLoads++; return await load(...args) }
const scorings = () => scoringsOf([app])

t.test('200 concurrent requests for one cold user cause one SQL load and one scoring', async (t) => {
  const before = await scorings()
  const responses = await Promise.all(Array.from({ length: 200 }, () => app.inject('/recommend/42')))
  t.ok(responses.every((r) => r.statusCode === 200), 'all succeed')
  t.equal(new Set(responses.map((r) => r.body)).size, 1, 'all see the same answer')
  t.equal(sqlLoads, 1, 'one SQL load')
  t.equal(await scorings() - before, 1, 'one scoring')
  t.equal(responses.filter((r) => r.headers['x-cache'] === 'MISS').length, 200, 'they all waited for the same fill')
})

t.test('a batch of 50 cold users takes one pooled connection and one SQL statement', async (t) => {
  let connections = 0
  const g = app.mysql.getConnection.bind(app.mysql)
  app.mysql.getConnection = (() => { connections++; return g() }) as typeof g
  t.teardown(() => { app.mysql.getConnection = g })
  const loadsBefore = sqlLoads

  const ids = Array.from({ length: 50 }, (_v, i) => 60 + i)
  const before = await scorings()
  const res = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: ids } })
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.successful, 50)
  t.equal(body.failed, 0)
  t.same(body.results.map((r: { user_id: number }) => r.user_id), ids, 'results in request order')
  t.equal(sqlLoads - loadsBefore, 1, 'one load for the 50 users')
  t.equal(connections, 1, 'on one pooled connection')
  t.equal(await scorings() - before, 50)

  const again = await app.inject(`/batch-recommend?user_ids=${ids.join(',')}`)
  t.equal(again.json().successful, 50)
  t.equal(sqlLoads - loadsBefore, 1, 'warm batch does not touch MySQL')
})

t.test('concurrent single misses for different users share one SQL statement', async (t) => {
  const loadsBefore = sqlLoads
  const ids = Array.from({ length: 10 }, (_v, i) => 110 + i) // not read by the tests above
  const responses = await Promise.all(ids.map((id) => app.inject(`/recommend/${id}`)))
  t.ok(responses.every((r) => r.statusCode === 200 && r.headers['x-cache'] === 'MISS'))
  t.same(responses.map((r) => r.json().user_id), ids)
  t.ok(sqlLoads - loadsBefore < ids.length, `${sqlLoads - loadsBefore} loads for ${ids.length} users`)
})
