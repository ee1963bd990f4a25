import fp from 'fastify-plugin'
import { modelVersion, type Config } from '../config.ts'
import { BoundedGate } from '../lib/bounded-gate.ts'
import { CircuitBreaker, type BreakerState } from '../lib/circuit-breaker.ts'
import { FallbackAnswers } from '../lib/fallback-answer.ts'
import { InvalidationBus } from '../lib/invalidation-bus.ts'
import { AnswerLifetimes } from '../lib/cached-answer.ts'
import { L1Cache } from '../lib/l1-cache.ts'
import { L2Cache } from '../lib/l2-cache.ts'
import { Counter, Gauge, Histogram } from 'prom-client'
import { SeriesCounter, SeriesHistogram } from '../lib/prom-series.ts'
import { Recommender } from '../lib/recommender.ts'
import { UserStore } from '../lib/user-store.ts'
import { RecError } from '../lib/errors.ts'

/** How long each replica remembers an invalidation: a fill older than this writes nothing to its
 *  LRU (l1-cache.ts), so fills (every step of which has a timeout far below this) cannot outlive it. */
const INVALIDATION_MEMORY_MS = 30_000
const MAX_REMEMBERED_INVALIDATIONS = 1_000_000

declare module 'fastify' {
  interface FastifyInstance {
    recommender: Recommender
    userStore: UserStore
    invalidationBus: InvalidationBus
    breakers: { redis: CircuitBreaker, mysql: CircuitBreaker }
  }
}

/** Wires the tiers together: the LRU and Redis cache, the MySQL user store, the scorer, the
 *  circuit breakers in front of Redis and MySQL, and the cross-replica invalidation bus. */
export default fp(async function recommenderPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const version = modelVersion(c)
  const registers = [app.recMetrics.registry]
  const breakerState = new Gauge({
    name: 'recsvc_circuit_breaker_state',
    help: 'circuit breaker in front of each dependency: 1 for its current state',
    labelNames: ['dependency', 'state'],
    registers
  })
  const BREAKER_STATES: BreakerState[] = ['closed', 'open', 'half-open']
  const showState = (name: string, current: BreakerState) => {
    for (const state of BREAKER_STATES) breakerState.set({ dependency: name, state }, state === current ? 1 : 0)
  }
  const onStateChange = (state: BreakerState, name: string) => {
    showState(name, state)
    app.log.warn({ dependency: name, state }, 'circuit breaker changed state')
  }
  showState('redis', 'closed')
  showState('database', 'closed')
  const breakers = {
    redis: new CircuitBreaker({ name: 'redis', failureThreshold: c.BREAKER_FAILURES, cooldownMs: c.BREAKER_COOLDOWN_MS, onStateChange }),
    mysql: new CircuitBreaker({ name: 'database', failureThreshold: c.BREAKER_FAILURES, cooldownMs: c.BREAKER_COOLDOWN_MS, onStateChange })
  }
  const redisErrors = new Counter({ name: 'recsvc_redis_errors_total', help: 'Redis cache operations that failed', labelNames: ['op'], registers })
  const scorings = new Counter({ name: 'recsvc_scorings_total', help: 'users scored in the worker pool', registers })
  const answers = new SeriesCounter({
    name: 'recsvc_answers_total',
    help: 'recommendation answers (single and each id of a batch) by the tier that answered and their HTTP status',
    labelNames: ['tier', 'status'],
    registers
  })
  const answerSeconds = new SeriesHistogram({
    name: 'recsvc_answer_duration_seconds',
    help: 'time to an answer, by the tier that gave it',
    labelNames: ['tier'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers
  })
  const onAnswer = (tier: string, status: number, ms: number) => {
    answers.series(tier, String(status)).inc()
    answerSeconds.series(tier).observe(ms / 1000)
  }
  const backgroundFailures = new Counter({
    name: 'recsvc_background_failures_total',
    help: 'background work that failed (revalidate: a stale answer\'s refresh)',
    labelNames: ['task'],
    registers
  })
  const invalidationsSent = new Counter({ name: 'recsvc_invalidations_sent_total', help: 'users this replica invalidated on every replica', registers })
  const invalidationsReceived = new Counter({ name: 'recsvc_invalidations_received_total', help: 'users other replicas told this one to drop', registers })
  const invalidationAcks = new Counter({
    name: 'recsvc_invalidation_acks_total',
    help: 'replica acknowledgements of this replica\'s invalidations: acked, or missing at the ack timeout',
    labelNames: ['result'],
    registers
  })
  const ackSeconds = new Histogram({
    name: 'recsvc_invalidation_ack_duration_seconds',
    help: 'from publishing an invalidation to the last acknowledgement (or the ack timeout)',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers
  })
  const subscriptionUp = new Gauge({
    name: 'recsvc_invalidation_subscription_up',
    help: '1 while the invalidation subscription is confirmed by heartbeats (the LRU is trusted), else 0',
    registers
  })
  const lifetimes = answerLifetimes(c)
  const l1 = new L1Cache(l1Options(c, lifetimes))
  const l2 = new L2Cache({
    redis: app.redis,
    breaker: breakers.redis,
    keyPrefix: c.REDIS_KEY_PREFIX,
    modelVersion: version,
    leaseMs: c.LEASE_MS,
    generationTtlMs: generationTtlMs(c),
    onRedisError: (err, op) => {
      redisErrors.inc({ op })
      app.log.debug({ err, op }, 'redis cache operation failed; treated as a miss')
    }
  })
  const store = new UserStore(app.mysql, {
    queryTimeoutMs: c.MYSQL_QUERY_TIMEOUT_MS,
    historyDays: c.HISTORY_DAYS,
    historyMaxEvents: c.HISTORY_MAX_EVENTS,
    breaker: breakers.mysql,
    maxBatch: c.BATCH_MAX_IDS
  })

  const weights = {
    searchBase: c.SEARCH_BASE,
    searchHalfLifeDays: c.SEARCH_HALF_LIFE_DAYS,
    purchaseBase: c.PURCHASE_BASE,
    purchaseHalfLifeDays: c.PURCHASE_HALF_LIFE_DAYS
  }
  const fallbacks = new FallbackAnswers({ weights, modelVersion: version, maxAgeS: c.FALLBACK_MAX_AGE_S })
  const recommender = new Recommender({
    l1,
    l2,
    lifetimes,
    store,
    score: (task) => app.scorer.run(task),
    stats: () => app.globalStats.current(),
    fallback: (userId) => fallbacks.answer(userId, app.globalStats.current()),
    missGate: new BoundedGate({ name: 'recommendations', limit: c.MISS_MAX_INFLIGHT, maxQueue: c.MISS_MAX_QUEUE, queueTimeoutMs: c.MISS_TIMEOUT_MS }),
    missTimeoutMs: c.MISS_TIMEOUT_MS,
    broadcast: async (ids) => {
      const start = performance.now()
      const result = await bus.broadcast(ids)
      ackSeconds.observe((performance.now() - start) / 1000)
      invalidationsSent.inc(ids.length)
      invalidationAcks.inc({ result: 'acked' }, result.acked)
      if (result.expected > result.acked) invalidationAcks.inc({ result: 'missing' }, result.expected - result.acked)
      return result
    },
    weights,
    modelVersion: version,
    leaseWaitMs: c.LEASE_WAIT_MS,
    onScore: () => scorings.inc(),
    onAnswer,
    onBackgroundError: (err) => {
      backgroundFailures.inc({ task: 'revalidate' })
      // Under overload a refresh may not get a slot; the stale answer simply stays a little longer.
      const busy = err instanceof RecError && err.code === 'REC_ERR_OVERLOADED'
      app.log[busy ? 'debug' : 'warn']({ err }, 'background refresh failed; the stale answer stays until grace ends')
    }
  })
  // Subscriber mode needs a connection of its own; its name lets operators (and tests) find it.
  const subscriber = app.redis.duplicate({ connectionName: `recsvc-sub:${c.REPLICA_ID}`, enableOfflineQueue: true, autoResubscribe: false })
  const bus = new InvalidationBus({
    redis: app.redis,
    subscriber,
    keyPrefix: c.REDIS_KEY_PREFIX,
    replicaId: c.REPLICA_ID,
    ackTimeoutMs: c.INVALIDATION_ACK_TIMEOUT_MS,
    heartbeatIntervalMs: c.INVALIDATION_HEARTBEAT_MS,
    silentAfterMs: c.INVALIDATION_SILENT_AFTER_MS,
    onInvalidate: (ids) => {
      invalidationsReceived.inc(ids.length)
      recommender.dropLocal(ids)
    },
    onSubscriptionChange: (up) => {
      subscriptionUp.set(up ? 1 : 0)
      if (up) l1.trust()
      else l1.distrust()
    },
    log: app.log
  })

  await bus.start()

  new Gauge({
    name: 'recsvc_l1_entries', help: 'entries in the in-process LRU', registers,
    collect () { this.set(l1.stats.entries) }
  })
  new Gauge({
    name: 'recsvc_l1_bytes', help: 'bytes held by the in-process LRU', registers,
    collect () { this.set(l1.stats.bytes) }
  })

  app.decorate('breakers', breakers)
  app.decorate('userStore', store)
  app.decorate('invalidationBus', bus)
  app.decorate('recommender', recommender)
  app.addHook('onClose', async () => {
    await bus.close()
    subscriber.disconnect()
  })
}, { name: 'recommender', dependencies: ['mysql', 'redis', 'scorer', 'stats', 'metrics'] })

/** How long answers live in each tier, from the config. */
export function answerLifetimes (c: Config): AnswerLifetimes {
  return new AnswerLifetimes({ l2TtlS: c.L2_TTL_S, graceS: c.CACHE_GRACE_S, notFoundTtlMs: c.NOT_FOUND_TTL_MS, ttlJitter: c.CACHE_TTL_JITTER })
}

/** The LRU's options as the service builds it (the cache-layer benchmark builds the same). */
export function l1Options (c: Config, lifetimes: AnswerLifetimes): ConstructorParameters<typeof L1Cache>[0] {
  return {
    maxEntries: c.L1_MAX_ENTRIES,
    maxBytes: c.L1_MAX_BYTES,
    ttlMs: c.L1_TTL_MS,
    invalidationMemoryMs: INVALIDATION_MEMORY_MS,
    maxRememberedInvalidations: MAX_REMEMBERED_INVALIDATIONS,
    jitter: (ms) => lifetimes.jitter(ms)
  }
}

/** A user's generation key outlives every answer written under it. */
export function generationTtlMs (c: Config): number {
  return Math.max(86_400_000, 2 * (c.L2_TTL_S + c.CACHE_GRACE_S) * 1000)
}
