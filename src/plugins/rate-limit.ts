import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import rateLimit, { normalizeIP, type FastifyRateLimitStore } from '@fastify/rate-limit'
import client from 'prom-client'
import type { Config } from '../config.ts'
import { ApiKeyLookup, badApiKey, isWellFormedKey, type KeyTier } from '../lib/api-keys.ts'
import { RecError } from '../lib/errors.ts'

/** The budget a request draws from: its client's tier, or the admin budget of the write routes. */
export type Budget = 'anonymous' | KeyTier | 'admin'
export const BUDGETS: readonly Budget[] = ['anonymous', 'free', 'premium', 'enterprise', 'admin']

interface RateClient { id: string, tier: 'anonymous' | KeyTier }

declare module 'fastify' {
  interface FastifyRequest { rateClient: RateClient | null }
}

const WINDOW_MS = 60_000

/** Requests per minute of each budget (0 = unlimited). */
export function budgetLimits (c: Config): Record<Budget, number> {
  return {
    anonymous: c.RATE_LIMIT_ANONYMOUS_PER_MIN,
    free: c.RATE_LIMIT_FREE_PER_MIN,
    premium: c.RATE_LIMIT_PREMIUM_PER_MIN,
    enterprise: c.RATE_LIMIT_ENTERPRISE_PER_MIN,
    admin: c.RATE_LIMIT_ADMIN_PER_MIN
  }
}

export function rateLimitsOn (c: Config): boolean {
  return c.RATE_LIMIT_ENABLED && Object.values(budgetLimits(c)).some((n) => n > 0)
}

/** One line for start-up logs (the service's and the local stack's): the limits, or 'off'. */
export function describeRateLimits (c: Config): string {
  if (!rateLimitsOn(c)) return 'off'
  const l = budgetLimits(c)
  const f = (n: number) => (n > 0 ? `${n}/min` : 'unlimited')
  return `anonymous ${f(l.anonymous)} per IP, free ${f(l.free)}, premium ${f(l.premium)}, enterprise ${f(l.enterprise)} per key, admin ${f(l.admin)} per client`
}

/** Probes, scrapes and the API docs: limiting them would take a busy client's replica out of the
 *  balancer or blind its monitoring. */
function exempt (url: string): boolean {
  const path = url.split('?', 1)[0] as string
  return path === '/health' || path.startsWith('/health/') || path === '/metrics' || path === '/docs' || path.startsWith('/docs/')
}

/** Routes that write (invalidations, events): a stricter budget of their own, so a client's reads
 *  do not use it up and its writes cannot flood the invalidation bus within its read budget. */
const ADMIN_ROUTES = new Set(['/invalidate-cache', '/invalidate-cache/:id', '/events'])
const isAdmin = (req: FastifyRequest) => req.method === 'POST' && ADMIN_ROUTES.has(req.routeOptions.url ?? '')

const BATCH_ROUTE = '/batch-recommend'

/** INCRBY for a batch's further ids on the key @fastify/rate-limit's RedisStore counts on, with the
 *  same window: it starts with the first increment and is never extended. */
const COST_LUA = `
  local n = tonumber(ARGV[1])
  local window = tonumber(ARGV[2])
  local current = redis.call('INCRBY', KEYS[1], n)
  if current == n then
    redis.call('PEXPIRE', KEYS[1], window)
    return {current, window}
  end
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], window)
    ttl = window
  end
  return {current, ttl}
`

// The store ships with the plugin but is not exported from its entry point.
type StoreCtor = new (continueExceeding: boolean, exponentialBackoff: boolean, redis: unknown, key: string) => FastifyRateLimitStore
const RedisStore = createRequire(import.meta.url)('@fastify/rate-limit/store/RedisStore.js') as StoreCtor

/** Per-client limits by tier (lib/api-keys.ts resolves X-API-Key; else the client IP, which
 *  TRUST_PROXY makes nginx's X-Forwarded-For), counted by @fastify/rate-limit in Redis so the
 *  budget is one across replicas. A batch costs one per id. If Redis fails, requests are served
 *  (fail open) and recsvc_rate_limit_errors_total counts it; an unusable key is a 401 either way. */
export default fp(async function rateLimitPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const limits = budgetLimits(c)
  const rateLimited = new client.Counter({ name: 'recsvc_rate_limited_total', help: 'requests answered 429 by the rate limiter, by budget', labelNames: ['tier'], registers: [app.recMetrics.registry] })
  const storeErrors = new client.Counter({ name: 'recsvc_rate_limit_errors_total', help: 'rate-limit counts that failed in Redis (the request was served unlimited)', registers: [app.recMetrics.registry] })
  for (const tier of BUDGETS) rateLimited.inc({ tier }, 0)

  app.log.info(`rate limits: ${describeRateLimits(c)}`)
  app.decorateRequest('rateClient', null)
  if (!rateLimitsOn(c)) return

  // One warning per interval with the count, not one per request during an outage.
  const quiet = (what: string) => {
    let last = 0
    let suppressed = 0
    return (err: unknown, extra = '') => {
      const now = Date.now()
      if (now - last < 10_000) { suppressed++; return }
      app.log.warn({ err, suppressed }, `${what}${extra}`)
      last = now
      suppressed = 0
    }
  }
  const warnStore = quiet('rate limiting: Redis failed, serving requests unlimited')
  const onStoreError = (err: unknown) => { storeErrors.inc(); warnStore(err) }
  const warnKeys = quiet('rate limiting: API key lookup failed')

  const keys = new ApiKeyLookup(app.mysql, {
    ttlMs: c.RATE_LIMIT_KEY_CACHE_TTL_MS,
    timeoutMs: c.MYSQL_QUERY_TIMEOUT_MS,
    onError: (err, stale) => { warnKeys(err, stale ? ' (using the cached answer)' : ' (503)') }
  })

  // Who the client is, before the limiter runs (its hooks are route-level, after this one). A bad
  // key is refused rather than treated as anonymous: the client would silently get another budget.
  app.addHook('onRequest', async (req) => {
    if (exempt(req.url)) return
    const header = req.headers['x-api-key']
    if (header === undefined) {
      req.rateClient = { id: `ip:${normalizeIP(req.ip)}`, tier: 'anonymous' }
      return
    }
    if (typeof header !== 'string' || !isWellFormedKey(header)) throw badApiKey()
    const key = await keys.lookup(header)
    if (!key) throw badApiKey()
    req.rateClient = { id: `key:${key.id}`, tier: key.tier }
  })

  const budgetOf = (req: FastifyRequest): Budget | undefined => req.rateClient ? (isAdmin(req) ? 'admin' : req.rateClient.tier) : undefined
  const limitOf = (req: FastifyRequest): number => { const b = budgetOf(req); return b ? limits[b] : 0 }
  const bucketOf = (req: FastifyRequest): string => !req.rateClient ? 'none' : isAdmin(req) ? `admin:${req.rateClient.id}` : req.rateClient.id
  const nameSpace = `${c.REDIS_KEY_PREFIX}rl:`
  const tooMany = (max: number, ttlS: number) =>
    new RecError(429, 'REC_ERR_RATE_LIMITED', `rate limit of ${max} requests per minute exceeded, retry in ${ttlS} s`, ttlS)

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    timeWindow: WINDOW_MS,
    // The plugin's RedisStore on the app's client (its command timeout bounds every count),
    // wrapped because skipOnError would swallow a failure without a trace.
    store: class {
      constructor () {
        const inner = new RedisStore(false, false, app.redis, nameSpace)
        const observed: FastifyRateLimitStore = {
          incr: (key, cb, timeWindow, max) => inner.incr(key, (err, res) => { if (err) onStoreError(err); cb(err, res) }, timeWindow, max),
          child: (routeOptions) => inner.child(routeOptions)
        }
        return observed
      }
    } as unknown as new () => FastifyRateLimitStore,
    skipOnError: true,
    keyGenerator: bucketOf,
    max: async (req) => limitOf(req),
    allowList: (req) => !req.rateClient || limitOf(req) === 0,
    onExceeded: (req) => { rateLimited.inc({ tier: budgetOf(req) ?? 'anonymous' }) },
    errorResponseBuilder: (_req, ctx) => tooMany(ctx.max, Math.ceil(ctx.ttl / 1000))
  })

  // A batch costs one request per id: the limiter has counted one, this adds the rest to the same
  // key in one atomic step after validation (so a refused body costs one).
  app.redis.defineCommand('recsvcRateLimitCost', { numberOfKeys: 1, lua: COST_LUA })
  const addCost = (app.redis as unknown as { recsvcRateLimitCost: (key: string, n: number, windowMs: number) => Promise<[number, number]> }).recsvcRateLimitCost.bind(app.redis)
  const batchCost = async (req: FastifyRequest, reply: FastifyReply) => {
    const max = limitOf(req)
    if (!req.rateClient || max === 0) return
    const ids = req.method === 'GET'
      ? String((req.query as { user_ids?: string }).user_ids ?? '').split(',').length
      : ((req.body as { user_ids?: unknown[] }).user_ids ?? []).length
    if (ids <= 1) return
    let current: number, ttl: number
    try {
      [current, ttl] = await addCost(nameSpace + bucketOf(req), ids - 1, WINDOW_MS)
    } catch (err) {
      onStoreError(err)
      return
    }
    const ttlS = Math.ceil(ttl / 1000)
    reply.header('x-ratelimit-remaining', Math.max(0, max - current))
    reply.header('x-ratelimit-reset', ttlS)
    if (current > max) {
      rateLimited.inc({ tier: budgetOf(req) ?? 'anonymous' })
      reply.header('x-ratelimit-limit', max)
      reply.header('retry-after', ttlS)
      throw tooMany(max, ttlS)
    }
  }
  app.addHook('onRoute', (route) => {
    if (route.url !== BATCH_ROUTE) return
    const existing = route.preHandler === undefined ? [] : Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]
    route.preHandler = [...existing, batchCost]
  })
}, { name: 'rate-limit', dependencies: ['metrics', 'mysql', 'redis'] })
