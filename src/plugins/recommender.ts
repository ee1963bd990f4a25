import fp from 'fastify-plugin'
import fastJson from 'fast-json-stringify'
import { modelVersion, type Config } from '../config.ts'
import { RecommendationCache } from '../lib/recommendation-cache.ts'
import { Recommender } from '../lib/recommender.ts'
import { UserStore } from '../lib/user-store.ts'
import { RecommendationSchema } from '../schemas/recommendation.ts'
import type { RecommendationBody } from '../../workers/types.ts'

declare module 'fastify' {
  interface FastifyInstance {
    recommender: Recommender
    recommendationCache: RecommendationCache
    userStore: UserStore
  }
}

/** Wires the tiers together: the LRU and Redis cache, the MySQL user store and the scorer. */
export default fp(async function recommenderPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const version = modelVersion(c)
  const cache = new RecommendationCache({
    redis: app.redis,
    keyPrefix: c.REDIS_KEY_PREFIX,
    modelVersion: version,
    l1MaxEntries: c.L1_MAX_ENTRIES,
    l1MaxBytes: c.L1_MAX_BYTES,
    l1TtlMs: c.L1_TTL_MS,
    l2TtlS: c.L2_TTL_S,
    notFoundTtlMs: c.NOT_FOUND_TTL_MS,
    onRedisError: (err, op) => {
      app.recMetrics.redisErrors.inc({ op })
      app.log.warn({ err, op }, 'redis cache operation failed; treated as a miss')
    }
  })
  const store = new UserStore(app.mysql, {
    queryTimeoutMs: c.MYSQL_QUERY_TIMEOUT_MS,
    historyDays: c.HISTORY_DAYS,
    historyMaxEvents: c.HISTORY_MAX_EVENTS
  })
  const serialize = fastJson(RecommendationSchema as object) as (b: RecommendationBody) => string
  const recommender = new Recommender({
    cache,
    store,
    score: (task) => app.scorer.run(task),
    stats: () => app.globalStats.current(),
    serialize,
    weights: {
      searchBase: c.SEARCH_BASE,
      searchHalfLifeDays: c.SEARCH_HALF_LIFE_DAYS,
      purchaseBase: c.PURCHASE_BASE,
      purchaseHalfLifeDays: c.PURCHASE_HALF_LIFE_DAYS
    },
    modelVersion: version,
    onScore: () => app.recMetrics.scorings.inc()
  })
  app.decorate('recommendationCache', cache)
  app.decorate('userStore', store)
  app.decorate('recommender', recommender)
}, { name: 'recommender', dependencies: ['mysql', 'redis', 'scorer', 'global-stats', 'rec-metrics'] })
