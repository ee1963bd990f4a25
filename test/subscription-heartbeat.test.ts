import t from 'tap'
import { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildTestApp, adminHeaders, waitFor } from './helpers/app.ts'
import { loadFixture } from '../tools/fixture.ts'
import { startTcpProxy } from './helpers/tcp-proxy.ts'
import { InvalidationBus } from '../src/lib/invalidation-bus.ts'
import type { L2Cache } from '../src/lib/l2-cache.ts'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const services = await startServices()
await loadFixture(services.mysql.url)
const direct = new URL(services.redis.url)
const proxy = await startTcpProxy({ port: Number(direct.port), host: direct.hostname })
const proxiedUrl = new URL(services.redis.url)
proxiedUrl.hostname = '127.0.0.1'
proxiedUrl.port = String(proxy.port)
const prefix = uniquePrefix()
const mysqlUrl = services.mysql.url
// P reaches Redis (command and subscriber connections alike) through the proxy; D directly.
const P = await buildTestApp({ redisUrl: proxiedUrl.toString(), mysqlUrl, prefix }, { REPLICA_ID: 'replica-proxied' })
const D = await buildTestApp({ redisUrl: services.redis.url, mysqlUrl, prefix }, { REPLICA_ID: 'replica-direct' })
t.teardown(async () => {
  proxy.resume()
  await Promise.all([P.close(), D.close()])
  await proxy.close()
  await services.stop()
})

/** Records every `dropLocal` (the bus's `onInvalidate`, and the sender's own drop) on the app. */
function countDrops (t: { teardown: (fn: () => void) => void }, app: FastifyInstance): number[][] {
  const calls: number[][] = []
  const rec = app.recommender
  const original = rec.dropLocal
  rec.dropLocal = function (ids) { calls.push([...ids]); original.call(this, ids) }
  t.teardown(() => { rec.dropLocal = original })
  return calls
}

const admin = new Redis(services.redis.url)
t.teardown(() => admin.disconnect())
/** Redis's ids of the replica's subscriber connections (named recsvc-sub:<replica id>). */
const subscriberIds = async (replicaId: string) => ((await admin.client('LIST')) as string).split('\n')
  .filter((l) => l.includes(`name=recsvc-sub:${replicaId} `)).map((l) => /id=(\d+)/.exec(l)?.[1])

const xCache = async (app: FastifyInstance, id: number) => (await app.inject(`/recommend/${id}`)).headers['x-cache']

t.test('the sender drops its users once; heartbeats are neither invalidations nor acks', async (t) => {
  t.ok(P.invalidationBus.up && D.invalidationBus.up, 'both subscriptions confirmed')
  const drops = { P: countDrops(t, P), D: countDrops(t, D) }
  await sleep(2500)
  t.same(drops, { P: [], D: [] }, 'two heartbeat rounds later, nothing was dropped anywhere')
  for (const [name, sender, other] of [['D', D, P], ['P', P, D]] as const) {
    for (const app of [P, D]) { await app.inject('/recommend/41'); t.equal(await xCache(app, 41), 'HIT-L1') }
    drops.P.length = 0
    drops.D.length = 0
    const res = await sender.inject({ method: 'POST', url: '/invalidate-cache', headers: adminHeaders, payload: { user_ids: [41, 42] } })
    t.equal(res.statusCode, 200)
    t.same(res.json().replicas, { acked: 2, expected: 2 }, `${name} counts its own ack: PUBLISH counted its own subscription`)
    await sleep(200)
    t.same(drops[name], [[41, 42]], `the sender (${name}) dropped once`)
    t.same(drops[name === 'D' ? 'P' : 'D'], [[41, 42]], 'the other replica dropped once')
    t.not(await xCache(sender, 41), 'HIT-L1')
    t.not(await xCache(other, 41), 'HIT-L1')
  }
})

// The sender no longer drops a second time when its own message comes back; that second drop,
// after Redis had moved on, is what discarded a fill that read the old value between the sender's
// first drop and the new generation. Until Recommender.invalidate drops after l2.invalidate
// (src/lib/recommender.ts), the last two checks fail, reported as TODO.

t.test('the sender keeps nothing from a read that raced its invalidation', async (t) => {
  await D.inject('/recommend/43')
  const warm = await D.inject('/recommend/43')
  t.equal(warm.headers['x-cache'], 'HIT-L1')
  const old = warm.json().metadata.generated_at
  const l2 = (D.recommender as unknown as { deps: { l2: L2Cache } }).deps.l2
  const invalidate = l2.invalidate
  let during: unknown
  // A read on the sender while its invalidation is on its way to Redis: it fills from the old value.
  l2.invalidate = async function (ids) {
    during = (await D.inject('/recommend/43')).headers['x-cache']
    return await invalidate.call(this, ids)
  }
  t.teardown(() => { l2.invalidate = invalidate })
  const res = await D.inject({ method: 'POST', url: '/invalidate-cache/43', headers: adminHeaders })
  t.same(res.json().replicas, { acked: 2, expected: 2 })
  t.ok(during, `a read ran during the invalidation (${String(during)})`)
  const after = await D.inject('/recommend/43')
  t.not(after.headers['x-cache'], 'HIT-L1', 'the sender does not serve what it read before Redis moved on')
  t.not(after.json().metadata.generated_at, old, 'nor the old answer')
})

t.test('a subscription that goes silent is noticed within 3 s; trusted again once heartbeats come through', async (t) => {
  const id = 51
  t.ok(P.invalidationBus.up, 'P is subscribed')
  await P.inject(`/recommend/${id}`)
  const warm = await P.inject(`/recommend/${id}`)
  t.equal(warm.headers['x-cache'], 'HIT-L1', 'warm on P')
  const old = warm.json().metadata.generated_at

  const before = await subscriberIds('replica-proxied')
  t.equal(before.length, 1, 'one subscriber connection')
  const pausedAt = performance.now()
  proxy.pause()
  t.equal(await xCache(P, id), 'HIT-L1', 'the stall itself is silent: no error, P still trusts its LRU')
  // D invalidates meanwhile: Redis still counts P's subscription, which cannot hear (or ack) it.
  const inv = await D.inject({ method: 'POST', url: `/invalidate-cache/${id}`, headers: adminHeaders })
  t.same(inv.json().replicas, { acked: 1, expected: 2 }, 'P missed the invalidation')

  let downAt: number | undefined
  const watch = setInterval(() => { if (downAt === undefined && !P.invalidationBus.up) downAt = performance.now() - pausedAt }, 2)
  t.teardown(() => clearInterval(watch))
  let servedL1Until = 0
  let tier: unknown
  while (performance.now() - pausedAt < 6000) {
    const asked = performance.now() - pausedAt
    tier = await xCache(P, id)
    if (tier !== 'HIT-L1') break
    servedL1Until = asked
    await sleep(10)
  }
  clearInterval(watch)
  t.comment(`stalled at 0 ms: P served HIT-L1 to a read asked at ${servedL1Until.toFixed(0)} ms, noticed at ${downAt?.toFixed(0)} ms, then ${String(tier)}`)
  t.ok(downAt !== undefined && downAt < 4000, `invalidationBus.up is false within 4 s (${downAt?.toFixed(0)} ms)`)
  t.ok(tier !== 'HIT-L1' && servedL1Until < 4000, `P stops serving its LRU as fresh within 4 s (last HIT-L1 asked at ${servedL1Until.toFixed(0)} ms)`)
  t.equal((await P.inject('/health')).json().invalidation_subscription, 'down')
  t.not(await xCache(P, id), 'HIT-L1', 'still not trusted while stalled')

  proxy.resume()
  const resumedAt = performance.now()
  await waitFor('P to resubscribe and hear a heartbeat', () => P.invalidationBus.up, 15_000)
  t.comment(`P trusted again ${(performance.now() - resumedAt).toFixed(0)} ms after the proxy resumed`)
  t.equal((await P.inject('/health')).json().invalidation_subscription, 'ok')
  await waitFor('the stalled connections to be gone', async () => (await subscriberIds('replica-proxied')).length === 1)
  t.not((await subscriberIds('replica-proxied'))[0], before[0], 'the silent subscriber connection was replaced, not reused')
  let last: { headers: Record<string, unknown>, json: () => { metadata: { generated_at: string } } } | undefined
  await waitFor('P to serve HIT-L1 after a fresh fill', async () => {
    last = await P.inject(`/recommend/${id}`)
    return last.headers['x-cache'] === 'HIT-L1'
  }, 15_000)
  t.not(last?.json().metadata.generated_at, old, 'and what it serves is the answer after the invalidation')
  const again = await D.inject({ method: 'POST', url: `/invalidate-cache/${id}`, headers: adminHeaders })
  t.same(again.json().replicas, { acked: 2, expected: 2 }, 'P acks invalidations again')
  t.not(await xCache(P, id), 'HIT-L1')
})

t.test('a subscription Redis no longer has (the socket is fine) is noticed at the next heartbeat', async (t) => {
  const redis = new Redis(services.redis.url, { commandTimeout: 500, enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  const subscriber = redis.duplicate({ enableOfflineQueue: true, autoResubscribe: false })
  const changes: boolean[] = []
  const invalidated: number[][] = []
  const bus = new InvalidationBus({
    redis, subscriber, keyPrefix: uniquePrefix(), replicaId: 'solo', ackTimeoutMs: 500,
    onInvalidate: (ids) => invalidated.push(ids),
    onSubscriptionChange: (up) => changes.push(up),
    heartbeatIntervalMs: 200,
    silentAfterMs: 600
  })
  t.teardown(async () => { await bus.close(); subscriber.disconnect(); redis.disconnect() })
  await bus.start()
  t.same(changes, [true], 'up once a heartbeat came through')
  // As after a failover: the connection stays, but the server no longer has the subscription.
  await subscriber.unsubscribe()
  const at = performance.now()
  await waitFor('the bus to notice', () => !bus.up, 2000)
  const took = performance.now() - at
  t.ok(took < 600, `noticed by the next heartbeat's PUBLISH, before the silence deadline (${took.toFixed(0)} ms)`)
  await waitFor('the bus to resubscribe', () => bus.up, 5000)
  t.same(changes, [true, false, true])
  t.same(await bus.broadcast([7]), { acked: 1, expected: 1 }, 'its own broadcast is acked by itself')
  t.same(invalidated, [], 'neither heartbeats nor its own broadcast reached onInvalidate')
})
