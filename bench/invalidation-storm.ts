// Issue 8: what an invalidation of 10,000 users costs each replica's event loop when its LRU holds
// 100,000 answers. Three replicas' worth of the real parts (InvalidationBus on its own Redis
// connections, Recommender.dropLocal, L1Cache), in this process, on a real Redis (REDIS_URL, else
// one started for the run on a free port of 127.0.0.1). The sender runs Recommender.invalidate:
// its own drop, the Redis generation bump (L2Cache), the broadcast and the wait for the acks.
// Measured per replica: the longest synchronous stretch of its invalidation handler, and the
// process's event-loop delay max while the storm runs (it holds all three replicas, so it is an
// upper bound for any one of them).
//
//   npx tsx bench/invalidation-storm.ts [--runs 5] [--users 10000] [--entries 100000]
import { parseArgs } from 'node:util'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { CircuitBreaker } from '../src/lib/circuit-breaker.ts'
import { InvalidationBus } from '../src/lib/invalidation-bus.ts'
import { L1Cache } from '../src/lib/l1-cache.ts'
import { L2Cache } from '../src/lib/l2-cache.ts'
import { AnswerLifetimes } from '../src/lib/cached-answer.ts'
import { Recommender, type RecommenderDeps } from '../src/lib/recommender.ts'
import { startRedis } from '../tools/servers/throwaway.ts'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    users: { type: 'string', default: '10000' },
    entries: { type: 'string', default: '100000' }
  }
})
const runs = Number(args.runs)
const users = Number(args.users)
const entries = Number(args.entries)
const REPLICAS = 3
const prefix = `bench-inv-${process.pid}:`

const redisServer = await startRedis({ externalUrl: process.env.REDIS_URL })
const connections: Redis[] = []
const connect = () => { const r = new Redis(redisServer.url, { commandTimeout: 5000 }); connections.push(r); return r }

// A body of the usual size: 100 items of ~90 bytes of JSON each (see workers/answer-body.ts).
const item = '{"item_id":123456,"category":"electronics","score":0.123456,"reason":"popular in electronics"}'
const ends: number[] = []
for (let i = 0, at = -1; i < 100; i++) ends.push(at += item.length + 1)
const body = { head: '{"user_id":1,"recommendations":{"recommended_categories":["a","b","c"],"items":[', items: Array(100).fill(item).join(','), ends, tail: ']},"metadata":{}}' }

interface Replica { recommender: Recommender, l1: L1Cache, bus: InvalidationBus, handlerMs: number[] }
const lifetimes = new AnswerLifetimes({ l2TtlS: 3600, graceS: 600, notFoundTtlMs: 60_000, ttlJitter: 0.1 })
const replicas: Replica[] = []
for (let r = 0; r < REPLICAS; r++) {
  const l1 = new L1Cache({ maxEntries: entries, maxBytes: 8 * 1024 ** 3, ttlMs: 3_600_000, invalidationMemoryMs: 30_000, maxRememberedInvalidations: 1_000_000, jitter: (ms) => lifetimes.jitter(ms) })
  const redis = connect()
  const l2 = new L2Cache({ redis, breaker: new CircuitBreaker({ name: 'redis', failureThreshold: 5, cooldownMs: 1000 }), keyPrefix: prefix, modelVersion: 'bench', leaseMs: 1000, generationTtlMs: 600_000 })
  const replica = { l1, handlerMs: [] as number[] } as Replica
  // Only the parts an invalidation touches are real; a read here would fail loudly.
  const unused = () => { throw new Error('not used by this benchmark') }
  replica.recommender = new Recommender({
    l1, l2, lifetimes, broadcast: (ids) => replica.bus.broadcast(ids),
    store: undefined as never, score: unused, stats: () => undefined, fallback: () => undefined, missGate: undefined as never,
    missTimeoutMs: 250, weights: undefined as never, modelVersion: 'bench', leaseWaitMs: 100
  } satisfies RecommenderDeps)
  replica.bus = new InvalidationBus({
    redis, subscriber: connect(), keyPrefix: prefix, replicaId: `replica-${r}`, ackTimeoutMs: 5000,
    onInvalidate: (ids) => {
      const t = performance.now()
      replica.recommender.dropLocal(ids)
      replica.handlerMs.push(performance.now() - t)
    },
    onSubscriptionChange: (up) => { if (up) l1.trust(); else l1.distrust() }
  })
  await replica.bus.start()
  replicas.push(replica)
}

const fill = () => {
  const now = Date.now()
  for (const { l1 } of replicas) {
    const ticket = l1.beginFill()
    for (let id = 1; id <= entries; id++) l1.write(id, { status: 200, body, freshUntil: now + 3_600_000, staleUntil: now + 4_200_000 }, ticket)
  }
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] as number }
const results: Array<{ senderMs: number, senderSyncMs: number, receiverMaxMs: number, eldMaxMs: number, acked: string, entriesBefore: number, entriesAfter: number }> = []
for (let run = 0; run < runs; run++) {
  fill()
  const entriesBefore = replicas[1]!.l1.stats.entries
  for (const r of replicas) r.handlerMs.length = 0
  // A different slice of the cached users each run, spread over the whole LRU.
  const ids = Array.from({ length: users }, (_v, i) => 1 + ((i * Math.floor(entries / users) + run) % entries))
  const eld = monitorEventLoopDelay({ resolution: 1 })
  eld.enable()
  const start = performance.now()
  const pending = replicas[0]!.recommender.invalidate(ids)
  const senderSyncMs = performance.now() - start
  const result = await pending
  const senderMs = performance.now() - start
  await new Promise((resolve) => setTimeout(resolve, 50))
  eld.disable()
  results.push({
    senderMs,
    senderSyncMs,
    receiverMaxMs: Math.max(...replicas.slice(1).flatMap((r) => r.handlerMs)),
    eldMaxMs: eld.max / 1e6,
    acked: `${result.replicas.acked}/${result.replicas.expected}`,
    entriesBefore,
    entriesAfter: replicas[1]!.l1.stats.entries
  })
  process.stderr.write(`run ${run + 1}/${runs}: ${JSON.stringify(results.at(-1))}\n`)
}

console.log(`\nInvalidating ${users.toLocaleString('en')} users, ${entries.toLocaleString('en')} answers in each of ${REPLICAS} replicas' LRU, median of ${runs}:\n`)
console.log('| figure | median | worst |\n| --- | --- | --- |')
const row = (name: string, xs: number[]) => console.log(`| ${name} | ${median(xs).toFixed(1)} ms | ${Math.max(...xs).toFixed(1)} ms |`)
row('receiving replica: its invalidation handler (one synchronous run)', results.map((r) => r.receiverMaxMs))
row('sender: synchronous part of invalidate() (its own drop, the Redis commands queued)', results.map((r) => r.senderSyncMs))
row('event-loop delay max during the storm (all 3 replicas in this process)', results.map((r) => r.eldMaxMs))
row('sender: until every replica acknowledged', results.map((r) => r.senderMs))
console.log(`| acks | ${results.map((r) => r.acked).join(', ')} | |`)
console.log(`| entries in a receiver's LRU before → after | ${results[0]!.entriesBefore} → ${results[0]!.entriesAfter} | |`)

for (const r of replicas) await r.bus.close()
for (const c of connections) c.disconnect()
await redisServer.stop()
