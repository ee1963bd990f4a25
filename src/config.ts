import { hostname, availableParallelism } from 'node:os'
import { Type, type Static, type TSchema } from 'typebox'
import { Value } from 'typebox/value'
import { MAX_LIMIT } from './lib/limits.ts'

const Int = (def: number, min: number, max: number, description: string) =>
  Type.Integer({ default: def, minimum: min, maximum: max, description })
const Num = (def: number, min: number, max: number, description: string) =>
  Type.Number({ default: def, minimum: min, maximum: max, description })
const Url = (def: string, scheme: string, description: string) =>
  Type.String({ default: def, pattern: `^${scheme}://`, description })

const threads = Math.max(1, availableParallelism() - 1)

/** Every variable the service reads, with its default and bounds. `.env.example` and the README's
 *  configuration table are written from this one list. */
export const ConfigSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development', description: 'development | production | test' }),
  HOST: Type.String({ default: '0.0.0.0', minLength: 1, description: 'interface to listen on' }),
  PORT: Int(3000, 0, 65535, 'HTTP port (0 = any free port)'),
  REPLICA_ID: Type.String({ default: `${hostname()}-${process.pid}`, minLength: 1, maxLength: 64, description: 'sent as X-Served-By (default: hostname-pid)' }),
  LOG_LEVEL: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info', description: 'pino log level; every request is logged only at debug (nginx writes the access log)' }),
  LOG_SLOW_REQUEST_MS: Int(1000, 0, 600_000, 'requests slower than this are logged at warn (0 = none)'),
  TRUST_PROXY: Type.String({ default: '', description: 'comma-separated proxy addresses/CIDRs whose X-Forwarded-* headers are trusted (empty = none)' }),

  MYSQL_URL: Url('mysql://root@127.0.0.1:3306/recsvc', 'mysql', 'MySQL/MariaDB connection URL'),
  MYSQL_POOL_SIZE: Int(20, 1, 500, 'connections in the mysql2 pool'),
  MYSQL_QUEUE_LIMIT: Int(1000, 1, 100_000, 'requests waiting for a pooled connection before new ones fail'),
  MYSQL_QUERY_TIMEOUT_MS: Int(800, 50, 60_000, 'deadline of one load: waiting for a pooled connection plus the query'),
  MYSQL_CONNECT_TIMEOUT_MS: Int(1000, 50, 60_000, 'connect timeout'),

  REDIS_URL: Url('redis://127.0.0.1:6379', 'rediss?', 'Redis connection URL'),
  REDIS_KEY_PREFIX: Type.String({ default: 'recsvc:', maxLength: 64, description: 'prefix of every Redis key this service writes' }),
  REDIS_COMMAND_TIMEOUT_MS: Int(300, 10, 60_000, 'per-command timeout'),
  REDIS_CONNECT_TIMEOUT_MS: Int(1000, 50, 60_000, 'connect timeout'),

  L1_MAX_ENTRIES: Int(100_000, 1, 10_000_000, 'in-process LRU: max entries'),
  L1_MAX_BYTES: Int(64 * 1024 * 1024, 1024, 8 * 1024 * 1024 * 1024, 'in-process LRU: max bytes of cached bodies'),
  L1_TTL_MS: Int(60_000, 1, 86_400_000, 'in-process LRU TTL'),
  L2_TTL_S: Int(600, 1, 7 * 86_400, 'how long an answer is fresh (Redis TTL before grace)'),
  CACHE_GRACE_S: Int(3600, 0, 7 * 86_400, 'after fresh: served STALE while one refresh runs, or when MySQL fails'),
  CACHE_TTL_JITTER: Num(0.1, 0, 0.5, 'random +/- fraction on every TTL so entries written together do not expire together'),
  LEASE_MS: Int(2000, 10, 60_000, 'cross-replica fill lease: one replica computes a cold key'),
  LEASE_WAIT_MS: Int(150, 0, 10_000, 'how long other replicas wait for the lease holder before computing themselves (keep it below MISS_TIMEOUT_MS)'),
  INVALIDATION_ACK_TIMEOUT_MS: Int(500, 10, 30_000, 'how long an invalidation waits for replicas to acknowledge'),
  INVALIDATION_HEARTBEAT_MS: Int(1000, 10, 60_000, 'how often each replica sends itself a heartbeat over its invalidation subscription'),
  INVALIDATION_SILENT_AFTER_MS: Int(3000, 20, 600_000, 'no heartbeat for this long: the subscription counts as dead, the LRU is not served as fresh and the subscriber reconnects'),
  BREAKER_FAILURES: Int(5, 1, 1000, 'consecutive failures that open a dependency circuit breaker'),
  BREAKER_COOLDOWN_MS: Int(2000, 10, 600_000, 'how long an open breaker skips its dependency before one probe'),
  NOT_FOUND_TTL_MS: Int(30_000, 1, 3_600_000, 'how long an unknown user id is remembered as 404'),

  SCORER_THREADS: Int(threads, 1, 256, 'piscina worker threads (default: cores - 1)'),
  SCORER_MAX_QUEUE: Int(512, 1, 1_000_000, 'scoring tasks waiting for a thread; beyond it a miss gets the fallback'),
  SCORER_QUEUE_TIMEOUT_MS: Int(200, 1, 60_000, 'max time a scoring task waits for a thread'),
  SCORER_TASK_TIMEOUT_MS: Int(2000, 10, 60_000, 'max time a caller waits for a running scoring task (it is not aborted: the thread and its parsed statistics stay)'),

  MISS_MAX_INFLIGHT: Int(256, 1, 100_000, 'users loaded from MySQL and scored at once per replica; more misses queue'),
  MISS_MAX_QUEUE: Int(512, 0, 1_000_000, 'misses waiting for a slot; beyond it a miss gets the fallback at once'),
  MISS_TIMEOUT_MS: Int(250, 10, 60_000, 'how long a request waits for a personalised answer before it gets the fallback (the fill goes on and caches its result)'),
  FALLBACK_MAX_AGE_S: Int(5, 0, 3600, 'Cache-Control max-age of a FALLBACK (non-personalised) answer'),

  SEARCH_BASE: Num(1, 0, 1000, 'weight of one search'),
  SEARCH_HALF_LIFE_DAYS: Num(7, 0.01, 3650, 'half-life of a search, days'),
  PURCHASE_BASE: Num(3, 0, 1000, 'weight of one purchase'),
  PURCHASE_HALF_LIFE_DAYS: Num(14, 0.01, 3650, 'half-life of a purchase, days'),
  HISTORY_DAYS: Int(90, 1, 3650, 'events older than this are ignored'),
  HISTORY_MAX_EVENTS: Int(500, 1, 100_000, 'newest events per table read per user'),
  MODEL_NAME: Type.String({ default: 'decay', pattern: '^[a-z0-9-]{1,32}$', description: 'model name; with the weights it forms model_version and the cache keys' }),

  BATCH_MAX_IDS: Int(100, 1, 10_000, 'max user ids per batch request'),
  DEFAULT_LIMIT: Int(10, 1, MAX_LIMIT, 'items returned when ?limit= is absent'),
  ADMIN_TOKEN: Type.String({ default: '', description: 'bearer token for admin endpoints (empty = admin endpoints always 401); at least 16 characters when set' }),
  // Rate limits in the app, per client (its API key, else its IP), counted in Redis so the budget is
  // one across replicas (src/plugins/rate-limit.ts). They replace RATE_LIMIT_MAX (one per-IP limit).
  RATE_LIMIT_ENABLED: Type.Boolean({ default: true, description: 'per-client rate limits by tier in the app, counted in Redis so they are exact across replicas (false = off: benchmarks; NGINX limits per IP in front either way). Replaces RATE_LIMIT_MAX' }),
  RATE_LIMIT_ANONYMOUS_PER_MIN: Int(100, 0, 10_000_000, 'requests per minute per client IP without an X-API-Key (0 = unlimited)'),
  RATE_LIMIT_FREE_PER_MIN: Int(100, 0, 10_000_000, 'requests per minute per API key of tier free (0 = unlimited)'),
  RATE_LIMIT_PREMIUM_PER_MIN: Int(1000, 0, 10_000_000, 'requests per minute per API key of tier premium (0 = unlimited)'),
  RATE_LIMIT_ENTERPRISE_PER_MIN: Int(0, 0, 10_000_000, 'requests per minute per API key of tier enterprise (0 = unlimited)'),
  RATE_LIMIT_ADMIN_PER_MIN: Int(60, 0, 10_000_000, 'requests per minute per client to POST /invalidate-cache and POST /events, a budget apart from the tier\'s (0 = unlimited)'),
  RATE_LIMIT_KEY_CACHE_TTL_MS: Int(30_000, 100, 3_600_000, 'how long an API key lookup is cached in-process: a revoked key can keep working this long'),

  STATS_REFRESH_INTERVAL_S: Int(300, 1, 86_400, 'how often global statistics are recomputed (one replica at a time) and reloaded'),
  STATS_LOAD_TIMEOUT_MS: Int(30_000, 100, 600_000, 'max time to read the global statistics into memory (at boot and on reload)'),
  STATS_REFRESH_TIMEOUT_S: Int(600, 1, 86_400, 'after this a background recomputation is given up on (the previous statistics stay)'),
  STATS_ITEMS_PER_CATEGORY: Int(200, 1, 10_000, 'popular items kept in memory per category'),
  // Load shedding, the last line of defence (src/plugins/pressure.ts). Far above what the
  // cold-start scenario at 1000 connections reaches (event-loop delay p99 35-48 ms, bench/README.md).
  SHED_MAX_EVENT_LOOP_DELAY_MS: Int(1000, 0, 60_000, 'shed new requests (503 + Retry-After) while the mean event-loop delay over the last second exceeds this (0 = never)'),
  SHED_MAX_HEAP_USED_MB: Int(0, 0, 1_048_576, 'shed new requests while the V8 heap in use exceeds this many MiB (0 = 90% of the heap limit)'),
  SHED_RETRY_AFTER_S: Int(5, 1, 3600, 'Retry-After of a shed request'),
  SHUTDOWN_DRAIN_DELAY_MS: Int(0, 0, 120_000, 'on SIGTERM: how long readiness fails (and new work is still served) before the server stops accepting; set it above the balancer\'s health-check interval'),
  SHUTDOWN_GRACE_MS: Int(10_000, 0, 600_000, 'on SIGTERM: time allowed for in-flight requests before the process exits anyway')
})

export type Config = Static<typeof ConfigSchema>

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Reads the environment once. Unknown variables are ignored; a present but bad value throws
 *  a ConfigError that names the variable, so start-up stops with a clear message. */
export function loadConfig (env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  const raw: Record<string, unknown> = {}
  for (const key of Object.keys(ConfigSchema.properties)) {
    const v = env[key]
    if (v !== undefined && v !== '') raw[key] = v
  }
  const converted = Value.Convert(ConfigSchema, Value.Default(ConfigSchema, raw)) as Record<string, unknown>
  const merged: Record<string, unknown> = { ...converted, ...overrides }
  const errors = [...Value.Errors(ConfigSchema, merged)]
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const name = e.instancePath.replace(/^\//, '') || '(config)'
      const options = (ConfigSchema.properties as Record<string, { anyOf?: Array<{ const: string }> }>)[name]?.anyOf
      const message = options ? `must be one of ${options.map((o) => o.const).join(', ')}` : e.message
      return `  ${name}=${JSON.stringify(merged[name] ?? env[name])}: ${message}`
    })
    throw new ConfigError(`invalid configuration:\n${[...new Set(lines)].join('\n')}`)
  }
  const config = merged as unknown as Config
  // RATE_LIMIT_MAX is gone; ignoring a limit someone still sets would silently lift it.
  if (env.RATE_LIMIT_MAX !== undefined && env.RATE_LIMIT_MAX !== '' && env.RATE_LIMIT_MAX !== '0') {
    throw new ConfigError(`invalid configuration:\n  RATE_LIMIT_MAX=${JSON.stringify(env.RATE_LIMIT_MAX)}: replaced by RATE_LIMIT_ENABLED=true and RATE_LIMIT_ANONYMOUS_PER_MIN (per IP; RATE_LIMIT_FREE/PREMIUM/ENTERPRISE_PER_MIN per API key); remove it`)
  }
  if (config.ADMIN_TOKEN !== '' && config.ADMIN_TOKEN.length < 16) {
    throw new ConfigError('invalid configuration:\n  ADMIN_TOKEN: must be at least 16 characters when set')
  }
  if (config.LEASE_WAIT_MS >= config.MISS_TIMEOUT_MS) {
    throw new ConfigError(`invalid configuration:\n  LEASE_WAIT_MS=${config.LEASE_WAIT_MS}: must be below MISS_TIMEOUT_MS (${config.MISS_TIMEOUT_MS}), or a request waiting for another replica's fill always gets the fallback`)
  }
  if (config.INVALIDATION_SILENT_AFTER_MS <= config.INVALIDATION_HEARTBEAT_MS) {
    throw new ConfigError(`invalid configuration:\n  INVALIDATION_SILENT_AFTER_MS=${config.INVALIDATION_SILENT_AFTER_MS}: must exceed INVALIDATION_HEARTBEAT_MS (${config.INVALIDATION_HEARTBEAT_MS}), or every subscription would count as dead`)
  }
  return config
}

/** A setting's default, for code that also runs without a loaded config (the seeder, tests), so
 *  the value is written once: here. */
export function configDefault<K extends keyof Config> (name: K): Config[K] {
  return (ConfigSchema.properties[name] as unknown as { default: Config[K] }).default
}

/** What the statistics refresh needs from the model's settings; the same weights the scorer uses. */
export function statsRefreshSettings (c: Pick<Config, 'PURCHASE_HALF_LIFE_DAYS' | 'SEARCH_HALF_LIFE_DAYS' | 'HISTORY_DAYS' | 'PURCHASE_BASE' | 'SEARCH_BASE'>): { purchaseHalfLifeDays: number, searchHalfLifeDays: number, windowDays: number, purchaseWeight: number } {
  return {
    purchaseHalfLifeDays: c.PURCHASE_HALF_LIFE_DAYS,
    searchHalfLifeDays: c.SEARCH_HALF_LIFE_DAYS,
    windowDays: c.HISTORY_DAYS,
    // A purchase's weight relative to a search (with searches weighing nothing, purchases alone rank).
    purchaseWeight: c.SEARCH_BASE > 0 ? c.PURCHASE_BASE / c.SEARCH_BASE : Number.MAX_SAFE_INTEGER
  }
}

export function describeConfig (): Array<{ name: string, default: unknown, description: string }> {
  return Object.entries(ConfigSchema.properties).map(([name, schema]) => ({
    name,
    default: (schema as TSchema & { default?: unknown }).default,
    description: (schema as TSchema & { description?: string }).description ?? ''
  }))
}

export function modelVersion (c: Config): string {
  return `${c.MODEL_NAME}-s${c.SEARCH_BASE}h${c.SEARCH_HALF_LIFE_DAYS}-p${c.PURCHASE_BASE}h${c.PURCHASE_HALF_LIFE_DAYS}`
}
