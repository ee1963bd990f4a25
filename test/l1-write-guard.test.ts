import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { L1Cache } from '../src/lib/l1-cache.ts'
import type { CachedAnswer } from '../src/lib/cached-answer.ts'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildReplicas, adminHeaders, waitFor, holdLoads } from './helpers/app.ts'
import { loadFixture } from '../tools/fixture.ts'

// What a fill may write into a replica's LRU: nothing if the user was dropped since it began, or
// if it is older than the invalidation memory; and never as fresh if it began before a
// subscription gap (the replica may have missed invalidations meanwhile).

t.test('a fill that began before a subscription gap is not served fresh from the LRU after it', async (t) => {
  const services = await startServices()
  t.teardown(() => services.stop())
  await loadFixture(services.mysql.url)
  const prefix = uniquePrefix()
  const apps = await buildReplicas(2, { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix })
  t.teardown(async () => { await Promise.all(apps.map((app) => app.close())) })
  const [a, b] = apps as [FastifyInstance, FastifyInstance]
  const admin = new Redis(services.redis.url)
  t.teardown(() => admin.disconnect())

  // B's loads run the real query, then wait for the test.
  const loads = holdLoads(b)

  const u = 77
  const before = (await a.inject(`/recommend/${u}`)).json().metadata.search_count as number
  loads.hold()
  // A's fill wrote Redis; B must miss there too, so drop the answer (not the generation).
  a.recommender.clearL1()
  await sleep(100) // A's Redis write is not awaited by its request
  const keys = (await admin.keys(`${prefix}*:${u}`)).filter((k) => !/:gen:\d+$/.test(k))
  if (keys.length) await admin.del(...keys)
  const slow = b.inject(`/recommend/${u}`)
  await waitFor('B\'s fill to read MySQL', () => loads.read)

  // B's subscription drops; an event for the user lands while B is not listening.
  const line = (await admin.client('LIST') as string).split('\n').find((l) => l.includes('name=recsvc-sub:replica-b'))
  await admin.client('KILL', 'ID', /id=(\d+)/.exec(line ?? '')?.[1] as string)
  await waitFor('B to notice', () => !b.invalidationBus.up)
  const res = await a.inject({ method: 'POST', url: '/events', headers: adminHeaders, payload: [{ type: 'search', user_id: u, category: 'toys' }] })
  t.equal(res.statusCode, 201)
  t.same(res.json().replicas, { acked: 1, expected: 1 }, 'B is not listening, so not expected')
  await waitFor('B to resubscribe', () => b.invalidationBus.up)

  loads.release()
  await slow
  await sleep(300) // the fill goes on past the request's miss deadline; let it finish
  for (let i = 0; i < 3; i++) {
    const seen = await b.inject(`/recommend/${u}`)
    t.ok(seen.json().metadata.search_count >= before + 1, `read ${i + 1} on B: ${seen.headers['x-cache']} with search_count ${seen.json().metadata.search_count}, acknowledged ${before + 1}`)
  }
})

const answer = (now: number): CachedAnswer => ({ status: 200, body: { head: '{}', items: '', ends: [], tail: '' }, freshUntil: now + 60_000, staleUntil: now + 120_000 })

t.test('a fill older than the invalidation memory writes nothing; a storm refuses every earlier fill', async (t) => {
  let clock = 0
  const l1 = new L1Cache({ maxEntries: 100, maxBytes: 1e6, ttlMs: 60_000, invalidationMemoryMs: 1000, maxRememberedInvalidations: 3, jitter: (ms) => ms, clock: () => clock })
  const old = l1.beginFill()
  clock = 1000
  t.notOk(l1.write(1, answer(Date.now()), old), 'as old as the memory: an invalidation it raced may be forgotten')
  t.notOk(l1.get(1))
  const young = l1.beginFill()
  clock = 1999
  t.ok(l1.write(1, answer(Date.now()), young))
  t.ok(l1.get(1), 'within the memory it is written and served')

  const beforeStorm = l1.beginFill()
  clock = 2000
  l1.drop([10, 11, 12, 13]) // more than remembered: per-user times are forgotten
  t.notOk(l1.write(20, answer(Date.now()), beforeStorm), 'a fill that began before the storm writes nothing, dropped or not')
  clock = 2001
  t.ok(l1.write(20, answer(Date.now()), l1.beginFill()), 'later fills write again')
})

t.test('an entry is served fresh until its freshness ends, then only as stale-if-error until its grace ends, then never', async (t) => {
  let now = 1_000_000
  const l1 = new L1Cache({ maxEntries: 100, maxBytes: 1e6, ttlMs: 600_000, invalidationMemoryMs: 1000, maxRememberedInvalidations: 3, jitter: (ms) => ms, now: () => now })
  t.ok(l1.write(1, answer(now), l1.beginFill()))
  t.equal(l1.get(1)?.tier, 'HIT-L1', 'fresh: served as a hit')
  now += 60_000
  t.notOk(l1.get(1), 'past freshUntil: not a hit')
  t.ok(l1.getStale(1), 'within grace: still there for stale-if-error')
  now += 60_000
  t.notOk(l1.getStale(1), 'past staleUntil: gone')
  t.equal(l1.stats.entries, 0, 'and no longer held')
  t.notOk(l1.write(2, answer(now - 120_000), l1.beginFill()), 'an answer already past its grace is not written')
})
