import t from 'tap'
import { Redis } from 'ioredis'
import { adminHeaders, waitFor, scoringsOf, withApp } from './helpers/app.ts'

const { apps: [a, b, c], services } = await withApp(t, { replicas: 3 })
if (!a || !b || !c) throw new Error('replicas not built')
const admin = new Redis(services.redis.url)
t.teardown(() => admin.disconnect())

const warm = async (id: number) => {
  for (const app of [a, b, c]) {
    const first = await app.inject(`/recommend/${id}`)
    const second = await app.inject(`/recommend/${id}`)
    t.equal(second.headers['x-cache'], 'HIT-L1', `warm on every replica (first was ${first.statusCode} ${first.body})`)
  }
}

t.test('an invalidation on A is acknowledged by every replica, and B and C answer MISS right after', async (t) => {
  await warm(21)
  const old = (await c.inject('/recommend/21')).json().metadata.generated_at
  const res = await a.inject({ method: 'POST', url: '/invalidate-cache/21', headers: adminHeaders })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { invalidated: [21], replicas: { acked: 3, expected: 3 } })
  const fromB = await b.inject('/recommend/21')
  t.equal(fromB.headers['x-cache'], 'MISS', 'B recomputes')
  const fromC = await c.inject('/recommend/21')
  t.equal(fromC.headers['x-cache'], 'HIT-L2', 'C no longer has its LRU copy and finds the new value B wrote')
  t.not(fromC.json().metadata.generated_at, old)
  t.equal(fromC.json().metadata.generated_at, fromB.json().metadata.generated_at)
  t.not((await a.inject('/recommend/21')).headers['x-cache'], 'HIT-L1', 'A dropped it too')
})

t.test('a replica whose subscription drops does not serve entries invalidated while it was away', async (t) => {
  await warm(22)
  const clients = await admin.client('LIST') as string
  const line = clients.split('\n').find((l) => l.includes('name=recsvc-sub:replica-b'))
  t.ok(line, 'B has a named subscriber connection')
  const id = /id=(\d+)/.exec(line ?? '')?.[1]
  await admin.client('KILL', 'ID', id as string)
  await waitFor('B to notice', () => !b.invalidationBus.up)
  const res = await a.inject({ method: 'POST', url: '/invalidate-cache/22', headers: adminHeaders })
  t.equal(res.json().replicas.expected, 2, 'only the listening replicas are expected')
  t.equal(res.json().replicas.acked, 2)
  t.equal((await b.inject('/recommend/22')).headers['x-cache'], 'MISS', 'B does not serve its old LRU entry')
  await waitFor('B to resubscribe', () => b.invalidationBus.up)
  t.not((await b.inject('/recommend/22')).headers['x-cache'], 'HIT-L1', 'entries from the gap are not trusted after resubscribing either')
  await b.inject('/recommend/22')
  t.equal((await b.inject('/recommend/22')).headers['x-cache'], 'HIT-L1', 'and the LRU is used again afterwards')
  const health = (await b.inject('/health')).json()
  t.equal(health.invalidation_subscription, 'ok')
})

t.test('300 concurrent requests for one cold user over 3 replicas are scored once', async (t) => {
  const before = await scoringsOf([a, b, c])
  const apps = [a, b, c]
  const responses = await Promise.all(Array.from({ length: 300 }, (_v, i) => apps[i % 3]!.inject('/recommend/23')))
  t.ok(responses.every((r) => r.statusCode === 200))
  t.equal(new Set(responses.map((r) => r.json().metadata.generated_at)).size, 1, 'everyone got the same computed answer')
  const after = await scoringsOf(apps)
  t.equal(after - before, 1, 'scoring ran once')
})

t.test('events posted to A are visible through B and C right after the 2xx', async (t) => {
  await warm(24)
  const before = (await b.inject('/recommend/24')).json()
  const res = await a.inject({ method: 'POST', url: '/events', headers: adminHeaders, payload: [{ type: 'search', user_id: 24, category: 'music', query: 'vinyl' }] })
  t.equal(res.statusCode, 201)
  t.same(res.json().replicas, { acked: 3, expected: 3 })
  for (const app of [b, c]) {
    const after = (await app.inject('/recommend/24')).json()
    t.equal(after.metadata.search_count, before.metadata.search_count + 1)
    t.ok(after.recommendations.recommended_categories.includes('music'))
  }
})
