// Issue 12, scenario 9: the cache layer alone. Our tiered get (the real Recommender.get over the
// real L1Cache and L2Cache, built with the defaults src/plugins/recommender.ts uses) against
// bentocache configured the same way (memory L1 of the same bounds, Redis L2 on the same server,
// no bus), in one process, same value, same closed loop: ops/s for an L1 hit, an L2 hit and a miss
// with a trivial loader. Only MySQL and scoring are stubbed (the "loader"); everything between the
// get and the loader is the code the service runs.
//
//   npx tsx bench/cache-layer.ts [--redis-url redis://...] [--seconds 3] [--runs 3] [--concurrency 64]
import { parseArgs } from 'node:util'
import crypto from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { Redis, type RedisOptions } from 'ioredis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { loadConfig, type Config } from '../src/config.ts'
import { redisClientOptions } from '../src/plugins/redis.ts'
import { answerLifetimes, generationTtlMs, l1Options } from '../src/plugins/recommender.ts'
import { BoundedGate } from '../src/lib/bounded-gate.ts'
import { CircuitBreaker } from '../src/lib/circuit-breaker.ts'
import { L1Cache } from '../src/lib/l1-cache.ts'
import { L2Cache } from '../src/lib/l2-cache.ts'
import { Recommender, type RecommenderDeps, type Tier } from '../src/lib/recommender.ts'
import type { UserStore } from '../src/lib/user-store.ts'
import { bodyBytes, bodyFor, toAnswerBody, type AnswerBody } from '../workers/answer-body.ts'
import type { RecommendationBody } from '../workers/types.ts'
import { CATEGORIES } from '../tools/fixture.ts'
import { isMain } from '../scripts/lib/is-main.ts'

export type CacheLayerCase = 'L1 hit' | 'L2 hit' | 'miss + loader'

export interface CacheLayerRow {
  case: CacheLayerCase
  oursOpsPerSec: number
  bentoOpsPerSec: number
  /** ours / bento */
  ratio: number
  notes?: string
}

export interface CacheLayerResult {
  rows: CacheLayerRow[]
  notes: string[]
  config: Record<string, string>
}

export interface CacheLayerOptions {
  redisUrl: string
  /** measured seconds per case and implementation (after a warm-up of 20 % of it, 0.2-1 s) */
  seconds: number
  log: (m: string) => void
  /** every Redis key written starts with it, and only such keys are deleted afterwards */
  keyPrefix?: string
  /** runs of the three cases (default 1); with more, each figure is the median over the runs and
   *  the ratio the median of the per-run ratios. The order of the sides alternates between runs. */
  runs?: number
}

/** gets in flight at once, per implementation and case */
const CONCURRENCY = 64
/** keys of the L1-hit and L2-hit sets */
const HOT_KEYS = 1000
/** a loop also stops after this many gets, whatever the time */
const MAX_OPS_PER_LOOP = 20_000_000
/** past the measured time, how long the last gets may take before the loop is declared stuck */
const STUCK_AFTER_MS = 15_000

/** Which implementation goes first alternates from one run to the next (and from case to case),
 *  also across calls. */
let runsStarted = 0

/** A realistic answer of 100 items, serialized by the service's own serializer (toAnswerBody). */
export function sampleAnswer (userId = 4242): AnswerBody {
  const cats = [...CATEGORIES]
  const items = Array.from({ length: 100 }, (_, i) => {
    const category = cats[i % cats.length] as string
    return { item_id: 100_000 + i * 37, category, score: Math.round((1 - i / 150) * 10_000) / 10_000, reason: `popular in ${category}` }
  })
  const body: RecommendationBody = {
    user_id: userId,
    recommendations: {
      weightage: 0.7,
      search_weight: 0.3,
      purchase_weight: 0.7,
      recommended_categories: cats.slice(0, 3),
      explore_categories: cats.slice(3, 5),
      category_scores: cats.map((category, i) => ({ category, score: Math.round((1 - i / 10) * 10_000) / 10_000 })),
      items
    },
    metadata: { search_count: 42, purchase_count: 7, cold_start: false, model_version: 'bench', generated_at: new Date(0).toISOString(), degraded: false }
  }
  return toAnswerBody(body)
}

/** The ioredis options of src/plugins/redis.ts, from the config. */
const redisOptions = (c: Config): RedisOptions => redisClientOptions(c)

async function connect (url: string, opts: RedisOptions, name: string): Promise<Redis> {
  const r = new Redis(url, { ...opts, connectionName: name })
  r.on('error', () => {}) // failures surface as rejected commands (counted as errors)
  if (r.status !== 'ready') {
    const timer = setTimeout(() => r.emit('error', new Error(`Redis at ${url} not ready within 5 s`)), 5000)
    try {
      await Promise.race([once(r, 'ready'), once(r, 'error').then(([err]) => { throw err })])
    } finally {
      clearTimeout(timer)
    }
  }
  return r
}

interface LoopResult { ops: number, errors: number, elapsedMs: number, firstError?: string }

/** `concurrency` workers each run `op` back to back until `ms` have passed (or the count bound);
 *  then `drain` (every command already sent has its reply). ops/s = completed / elapsed. */
async function closedLoop (ms: number, concurrency: number, op: () => Promise<unknown>, drain: () => Promise<unknown>): Promise<LoopResult> {
  let ops = 0
  let errors = 0
  let started = 0
  let firstError: string | undefined
  const start = performance.now()
  const end = start + ms
  const worker = async () => {
    while (performance.now() < end && started < MAX_OPS_PER_LOOP) {
      started++
      try {
        await op()
        ops++
      } catch (err) {
        errors++
        firstError ??= (err as Error).message
      }
    }
  }
  let timer: NodeJS.Timeout | undefined
  const stuck = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`a get did not finish within ${STUCK_AFTER_MS} ms of the end of the loop`)), ms + STUCK_AFTER_MS)
  })
  try {
    await Promise.race([Promise.all(Array.from({ length: concurrency }, worker)).then(drain), stuck])
  } finally {
    clearTimeout(timer)
  }
  return { ops, errors, elapsedMs: performance.now() - start, firstError }
}

async function commandsProcessed (admin: Redis): Promise<number> {
  const info = await admin.info('stats')
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? NaN)
}

async function deleteByPrefix (admin: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let deleted = 0
  // Keys are matched literally: the prefix's glob characters are escaped.
  const pattern = `${prefix.replace(/[*?[\]\\]/g, (ch) => `\\${ch}`)}*`
  for (let rounds = 0; rounds < 100_000; rounds++) {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    if (keys.length > 0) deleted += await admin.unlink(...keys)
    cursor = next
    if (cursor === '0') break
  }
  return deleted
}

interface Side {
  name: 'ours' | 'bento'
  get: () => Promise<unknown>
  redis: Redis
  /** how many times the loader ran */
  loads: () => number
  /** a description of what a get returned, per tier, for ours */
  tiers?: () => string
  resetCounters: () => void
}

interface Measured { opsPerSec: number, commandsPerOp: number, loadsPerOp: number, errors: number, firstError?: string, tiers?: string }

async function measure (side: Side, admin: Redis, seconds: number): Promise<Measured> {
  const warmMs = Math.min(1000, Math.max(200, seconds * 200))
  await closedLoop(warmMs, CONCURRENCY, side.get, () => side.redis.ping())
  side.resetCounters()
  const before = await commandsProcessed(admin)
  const r = await closedLoop(seconds * 1000, CONCURRENCY, side.get, () => side.redis.ping())
  // INFO itself and the drain's PING are 2 of the commands; they do not matter at these counts.
  const commands = (await commandsProcessed(admin)) - before - 2
  return {
    opsPerSec: r.ops / (r.elapsedMs / 1000),
    commandsPerOp: r.ops > 0 ? commands / r.ops : NaN,
    loadsPerOp: r.ops > 0 ? side.loads() / r.ops : NaN,
    errors: r.errors,
    firstError: r.firstError,
    tiers: side.tiers?.()
  }
}

function fmt (n: number, digits = 2): string { return Number.isFinite(n) ? n.toFixed(digits) : String(n) }

function describe (m: Measured): string {
  return `${Math.round(m.opsPerSec)} ops/s, ${fmt(m.commandsPerOp)} Redis cmds/get, ${fmt(m.loadsPerOp)} loads/get` +
    (m.tiers ? `, ${m.tiers}` : '') + (m.errors > 0 ? `, ${m.errors} errors (first: ${m.firstError})` : '')
}

/** `runs` runs (default 1) of the three cases, each side measured for `seconds` after a warm-up. */
export async function measureCacheLayer (o: CacheLayerOptions): Promise<CacheLayerResult> {
  const runs = o.runs ?? 1
  if (!(Number.isInteger(runs) && runs >= 1 && runs <= 20)) throw new RangeError(`runs must be an integer from 1 to 20, not ${runs}`)
  if (!(o.seconds > 0 && o.seconds <= 120)) throw new RangeError(`seconds must be in (0, 120], not ${o.seconds}`)
  const results: CacheLayerResult[] = []
  for (let r = 0; r < runs; r++) {
    if (runs > 1) o.log(`cache-layer: run ${r + 1} of ${runs}`)
    results.push(await measureOnce(o))
  }
  return runs === 1 ? results[0] as CacheLayerResult : combine(results)
}

/** Medians over the runs; the row notes keep every run's figures. */
function combine (results: CacheLayerResult[]): CacheLayerResult {
  const first = results[0] as CacheLayerResult
  const rows = first.rows.map((row, i): CacheLayerRow => {
    const of = (f: (r: CacheLayerRow) => number) => median(results.map((res) => f(res.rows[i] as CacheLayerRow)))
    return {
      case: row.case,
      oursOpsPerSec: of((r) => r.oursOpsPerSec),
      bentoOpsPerSec: of((r) => r.bentoOpsPerSec),
      ratio: of((r) => r.ratio),
      notes: results.map((res, n) => `run ${n + 1}: ${(res.rows[i] as CacheLayerRow).notes ?? ''}`).join(' | ')
    }
  })
  const ratios = first.rows.map((row, i) => `${row.case} ${results.map((res) => fmt((res.rows[i] as CacheLayerRow).ratio)).join(', ')}`).join('; ')
  return {
    rows,
    notes: [...first.notes, `Median of ${results.length} runs: each ops/s is the median over the runs, each ratio the median of the per-run ratios (so it need not equal the quotient of the two medians). Per-run ratios: ${ratios}.`],
    config: { ...first.config, runs: String(results.length), order: results.map((r, n) => `run ${n + 1}: ${r.config.order}`).join('; ') }
  }
}

/** One run of the three cases. */
async function measureOnce (o: CacheLayerOptions): Promise<CacheLayerResult> {
  const c = loadConfig({})
  const prefix = o.keyPrefix ?? `bench-cache-layer-${process.pid}-${crypto.randomBytes(3).toString('hex')}:`
  const oursPrefix = `${prefix}ours:`
  const bentoPrefix = `${prefix}bento`
  const call = runsStarted++
  const answerBody = sampleAnswer()
  const answerString = bodyFor(answerBody, 100)
  const connections: Redis[] = []
  const open = async (name: string) => { const r = await connect(o.redisUrl, redisOptions(c), name); connections.push(r); return r }
  const notes: string[] = []
  try {
    const admin = await open('bench-cache-layer-admin')
    const oursRedis = await open('bench-cache-layer-ours')
    const bentoRedis = await open('bench-cache-layer-bento')

    /* ---- ours: src/plugins/recommender.ts's construction, MySQL and scoring stubbed ---------- */
    const lifetimes = answerLifetimes(c)
    const l1Of = (maxEntries: number) => new L1Cache({ ...l1Options(c, lifetimes), maxEntries })
    const l2 = new L2Cache({
      redis: oursRedis,
      breaker: new CircuitBreaker({ name: 'redis', failureThreshold: c.BREAKER_FAILURES, cooldownMs: c.BREAKER_COOLDOWN_MS }),
      keyPrefix: oursPrefix,
      modelVersion: 'bench',
      leaseMs: c.LEASE_MS,
      generationTtlMs: generationTtlMs(c)
    })
    let oursLoads = 0
    const tierCounts = new Map<Tier | 'ERROR', number>()
    const history = { searches: [], purchases: [] }
    // The loader: the user's history (no MySQL) and the answer (no scoring), each a resolved promise.
    const store = { loadUser: async () => history } as unknown as UserStore
    const score = async (): Promise<AnswerBody> => {
      oursLoads++
      await Promise.resolve()
      return answerBody
    }
    const unused = () => { throw new Error('not used by this benchmark') }
    const recommenderWith = (l1: L1Cache) => new Recommender({
      l1,
      l2,
      lifetimes,
      store,
      score,
      stats: () => ({ version: 1, stats: { categoryPopularity: [], cooccurrence: {}, itemsByCategory: {} }, buffer: new SharedArrayBuffer(8) }),
      fallback: () => undefined,
      missGate: new BoundedGate({ name: 'recommendations', limit: c.MISS_MAX_INFLIGHT, maxQueue: c.MISS_MAX_QUEUE, queueTimeoutMs: c.MISS_TIMEOUT_MS }),
      missTimeoutMs: c.MISS_TIMEOUT_MS,
      broadcast: unused,
      weights: { searchBase: c.SEARCH_BASE, searchHalfLifeDays: c.SEARCH_HALF_LIFE_DAYS, purchaseBase: c.PURCHASE_BASE, purchaseHalfLifeDays: c.PURCHASE_HALF_LIFE_DAYS },
      modelVersion: 'bench',
      leaseWaitMs: c.LEASE_WAIT_MS,
      // The app counts and times every answer here (lib/prom-series.ts); this only counts tiers.
      onAnswer: (tier) => { tierCounts.set(tier, (tierCounts.get(tier) ?? 0) + 1) }
    } satisfies RecommenderDeps)
    const oursFull = recommenderWith(l1Of(c.L1_MAX_ENTRIES))
    const oursNoL1 = recommenderWith(l1Of(1))
    const oursTiers = () => {
      const total = [...tierCounts.values()].reduce((a, b) => a + b, 0)
      return [...tierCounts].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ${fmt(100 * n / total, 1)} %`).join(' / ')
    }

    /* ---- bentocache, configured the same way ------------------------------------------------- */
    let bentoLoads = 0
    const factory = async () => {
      bentoLoads++
      await Promise.resolve()
      return answerString
    }
    const bentoWith = (l1: ReturnType<typeof memoryDriver> | undefined) => {
      const store = l1 ? bentostore().useL1Layer(l1) : bentostore()
      return new BentoCache({
        default: 'answers',
        prefix: bentoPrefix,
        ttl: c.L2_TTL_S * 1000,
        grace: c.CACHE_GRACE_S * 1000,
        hardTimeout: c.MISS_TIMEOUT_MS,
        l2CircuitBreakerDuration: c.BREAKER_COOLDOWN_MS,
        stores: { answers: store.useL2Layer(redisDriver({ connection: bentoRedis })) }
      })
    }
    const bentoFull = bentoWith(memoryDriver({ maxItems: c.L1_MAX_ENTRIES, maxSize: c.L1_MAX_BYTES }))
    const bentoL1One = bentoWith(memoryDriver({ maxItems: 1 }))
    const bentoL2Only = bentoWith(undefined)
    const bentoNoSerialize = bentoWith(memoryDriver({ maxItems: c.L1_MAX_ENTRIES, serialize: false }))

    const config: Record<string, string> = {
      redis: o.redisUrl.replace(/\/\/[^@/]*@/, '//***@'),
      keyPrefix: prefix,
      seconds: String(o.seconds),
      concurrency: `${CONCURRENCY} gets in flight, closed loop`,
      warmup: `${Math.min(1000, Math.max(200, o.seconds * 200))} ms per side and case`,
      value: `the same answer of 100 items from the service's serializer (toAnswerBody): ours keeps the AnswerBody, bento its ${Buffer.byteLength(answerString)}-byte JSON string (bodyFor(answer, 100)); the "about 14 KB" of bench/README.md is L1's accounting of the same answer (bodyBytes + 200 = ${bodyBytes(answerBody) + 200})`,
      hotKeys: String(HOT_KEYS),
      ioredis: `both: the options of src/plugins/redis.ts (enableAutoPipelining, commandTimeout ${c.REDIS_COMMAND_TIMEOUT_MS} ms, connectTimeout ${c.REDIS_CONNECT_TIMEOUT_MS} ms, maxRetriesPerRequest 1, no offline queue), one connection per side`,
      ours: `Recommender.get over L1Cache (max ${c.L1_MAX_ENTRIES} entries, ${c.L1_MAX_BYTES} bytes, TTL ${c.L1_TTL_MS} ms, grace ${c.CACHE_GRACE_S} s) and L2Cache (Lua lookup with generation + lease, CAS write; fresh ${c.L2_TTL_S} s + grace ${c.CACHE_GRACE_S} s), SingleFlight, BoundedGate (${c.MISS_MAX_INFLIGHT} + ${c.MISS_MAX_QUEUE} queued), miss timeout ${c.MISS_TIMEOUT_MS} ms, CircuitBreaker (${c.BREAKER_FAILURES} failures, ${c.BREAKER_COOLDOWN_MS} ms)`,
      bento: `bentocache ${bentoVersion()} getOrSet: memoryDriver({ maxItems: ${c.L1_MAX_ENTRIES}, maxSize: ${c.L1_MAX_BYTES} }) (serialize: true, the default and required for maxSize) + redisDriver on the same Redis; ttl ${c.L2_TTL_S} s, grace ${c.CACHE_GRACE_S} s, hardTimeout ${c.MISS_TIMEOUT_MS} ms, l2CircuitBreakerDuration ${c.BREAKER_COOLDOWN_MS} ms, no bus`,
      order: call % 2 === 0 ? 'L1: ours first, L2: bento first, miss: ours first' : 'L1: bento first, L2: ours first, miss: bento first'
    }

    /* ---- prefill: the hot keys in Redis for both, and in each full L1 --------------------- */
    for (let id = 1; id <= HOT_KEYS; id++) {
      await oursFull.get(id)
      await bentoFull.getOrSet({ key: `u${id}`, factory })
      // Filled by set, not by an L2 hit: bentocache 1.6.1 writes an L2 hit into an unserialized L1
      // as the serialized string, and the next L1 read of it throws (reading 'deserialize').
      await bentoNoSerialize.set({ key: `u${id}`, value: answerString })
    }
    await oursRedis.ping() // ours writes Redis in the background: wait for those writes
    const oursInL2 = (await oursNoL1.get(1)).tier
    if (oursInL2 !== 'HIT-L2') throw new Error(`prefill: ours answered user 1 with ${oursInL2}, not HIT-L2`)
    const [oursBytes, bentoBytes] = await Promise.all([admin.strlen(l2.valueKey(1)), admin.strlen(`${bentoPrefix}:u1`)])
    if (!(bentoBytes > 0)) throw new Error(`prefill: bentocache wrote nothing at ${bentoPrefix}:u1`)
    config.redisValueBytes = `ours ${oursBytes} (header fields + head, tail, items), bento ${bentoBytes} (JSON of { value, createdAt, logicalExpiration }: the string re-escaped)`

    let hotCursor = 0
    const nextHot = () => (hotCursor++ % HOT_KEYS) + 1
    let missId = 10_000_000 * (call + 1)
    const sideOf = (name: 'ours' | 'bento', get: () => Promise<unknown>): Side => name === 'ours'
      ? { name, get, redis: oursRedis, loads: () => oursLoads, tiers: oursTiers, resetCounters: () => { oursLoads = 0; tierCounts.clear() } }
      : { name, get, redis: bentoRedis, loads: () => bentoLoads, resetCounters: () => { bentoLoads = 0 } }

    const cases: Array<{ name: CacheLayerCase, ours: () => Promise<unknown>, bento: () => Promise<unknown>, variant?: { label: string, get: () => Promise<unknown> } }> = [
      {
        name: 'L1 hit',
        ours: () => oursFull.get(nextHot()),
        bento: () => bentoFull.getOrSet({ key: `u${nextHot()}`, factory }),
        variant: { label: 'bento with an unserialized L1 (serialize: false, maxItems only, no byte bound)', get: () => bentoNoSerialize.getOrSet({ key: `u${nextHot()}`, factory }) }
      },
      {
        name: 'L2 hit',
        ours: () => oursNoL1.get(nextHot()),
        bento: () => bentoL1One.getOrSet({ key: `u${nextHot()}`, factory }),
        variant: { label: 'bento with no L1 layer at all (L2-only store)', get: () => bentoL2Only.getOrSet({ key: `u${nextHot()}`, factory }) }
      },
      {
        name: 'miss + loader',
        ours: () => oursFull.get(missId++),
        bento: () => bentoFull.getOrSet({ key: `m${missId++}`, factory })
      }
    ]

    const rows: CacheLayerRow[] = []
    for (const [i, k] of cases.entries()) {
      const oursFirst = (call + i) % 2 === 0
      const order = oursFirst ? (['ours', 'bento'] as const) : (['bento', 'ours'] as const)
      const got: Partial<Record<'ours' | 'bento', Measured>> = {}
      for (const name of order) {
        const m = await measure(sideOf(name, k[name]), admin, o.seconds)
        got[name] = m
        o.log(`cache-layer ${k.name}, ${name}: ${describe(m)}`)
      }
      const ours = got.ours as Measured
      const bento = got.bento as Measured
      const rowNotes = [`ours: ${describe(ours)}`, `bento: ${describe(bento)}`]
      if (k.variant) {
        const v = await measure(sideOf('bento', k.variant.get), admin, o.seconds)
        o.log(`cache-layer ${k.name}, ${k.variant.label}: ${describe(v)}`)
        rowNotes.push(`${k.variant.label}: ${describe(v)}; ours / that = ${fmt(ours.opsPerSec / v.opsPerSec)}`)
      }
      if (k.name === 'miss + loader') {
        // Misses leave one 14 KB value per get: drop them before the next case (and the next run).
        await oursRedis.ping()
        await bentoRedis.ping()
        const dropped = await deleteByPrefix(admin, prefix)
        rowNotes.push(`${dropped} keys deleted after the case`)
      }
      rows.push({ case: k.name, oursOpsPerSec: ours.opsPerSec, bentoOpsPerSec: bento.opsPerSec, ratio: ours.opsPerSec / bento.opsPerSec, notes: rowNotes.join('; ') })
    }

    notes.push(
      'ours = Recommender.get (src/lib/recommender.ts: cached, then load, the read path of GET /recommend/:id and of batches), over the real L1Cache, L2Cache, SingleFlight, BoundedGate and CircuitBreaker with the defaults of src/config.ts; only UserStore.loadUser (no MySQL: a resolved empty history) and the scorer (no worker: the answer after `await Promise.resolve()`) are stubbed, and the metrics in onAnswer are left out.',
      'bento = BentoCache.getOrSet (its read-through call; a plain get has no loader) with the loader `async () => { await Promise.resolve(); return value }`.',
      'L1 hit: 1000 keys already in both L1s, read round robin. ours: L1Cache.get (freshness, trust epoch) and a shallow copy with the tier. bento: memory driver get + JSON.parse of the serialized entry (serialize: true is its default and the only way to bound bytes like our L1_MAX_BYTES); the unserialized variant is in the row notes.',
      'L2 hit: the same 1000 keys in Redis, L1 reduced to 1 entry for both (ours: L1_MAX_ENTRIES=1 as bench scenario l2-only does; bento: memoryDriver maxItems 1), so both still write each L2 hit into their L1 as in production. ours: SingleFlight + miss timeout timer + one EVALSHA (generation check; a lease only when not fresh) + decode by slicing + L1 write. bento: per-key lock + GET + JSON.parse + L1 set. The L2-only bento store is in the row notes.',
      'miss + loader: every get a new key. ours: L2 lookup (EVALSHA: creates the generation key, takes the fill lease), BoundedGate, loader, L1 write, then the generation-checked CAS write to Redis (EVALSHA), which Recommender does not await: the answer goes out first. bento: lock, L2 GET, factory under hardTimeout, L1 set, awaited L2 SET. Each loop ends with a PING on that side\'s connection inside the measured time, so ours\' background writes are finished (and counted) before ops/s is computed.',
      'No bus on either side: ours needs none on a get (invalidation is by generation in Redis; its InvalidationBus only carries invalidations), and bento publishes to its bus on every set, which ours has no counterpart for.',
      'One process, the same Redis, sides run one after the other (never at once); the order alternates per case and per call. Redis cmds/get comes from INFO total_commands_processed, which counts the redis.call()s inside a script as well as the EVALSHA (ours\' L2 hit is 1 EVALSHA = 3 commands, its miss 2 EVALSHA = 12; bento\'s are plain GET/SET), and counts every client of that Redis: anything else using it shows up there.'
    )
    return { rows, notes, config }
  } finally {
    const admin = connections[0]
    if (admin?.status === 'ready') {
      try {
        for (const r of connections.slice(1)) if (r.status === 'ready') await r.ping()
        await deleteByPrefix(admin, prefix)
      } catch (err) {
        o.log(`cache-layer: cleaning ${prefix}* failed: ${(err as Error).message}`)
      }
    }
    for (const r of connections) r.disconnect()
  }
}

/** bentocache's own version (its exports map does not expose package.json). */
function bentoVersion (): string {
  try {
    const main = createRequire(import.meta.url).resolve('bentocache')
    return (JSON.parse(readFileSync(path.join(path.dirname(main), '..', 'package.json'), 'utf8')) as { version: string }).version
  } catch {
    return '(version unknown)'
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] as number : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** The result as a Markdown table (medians when it holds several runs). */
export function markdownTable (r: CacheLayerResult): string {
  const lines = [
    `| case | ours ops/s | bentocache ops/s | ours / bento${r.config.runs ? ' (median of the per-run ratios)' : ''} |`,
    '| --- | ---: | ---: | ---: |'
  ]
  for (const row of r.rows) {
    lines.push(`| ${row.case} | ${Math.round(row.oursOpsPerSec).toLocaleString('en-US')} | ${Math.round(row.bentoOpsPerSec).toLocaleString('en-US')} | ${fmt(row.ratio)} |`)
  }
  return lines.join('\n')
}

if (isMain(import.meta.url)) {
  const { values: args } = parseArgs({
    options: {
      'redis-url': { type: 'string' },
      seconds: { type: 'string', default: '3' },
      runs: { type: 'string', default: '3' }
    }
  })
  const seconds = Number(args.seconds)
  const runs = Number(args.runs)
  if (!(seconds > 0 && seconds <= 120) || !(Number.isInteger(runs) && runs >= 1 && runs <= 20)) {
    console.error('usage: npx tsx bench/cache-layer.ts [--redis-url redis://...] [--seconds 0-120] [--runs 1-20]')
    process.exit(2)
  }
  const { startRedis } = await import('../tools/servers/throwaway.ts')
  const server = args['redis-url'] === undefined ? await startRedis({ externalUrl: process.env.REDIS_URL }) : undefined
  const redisUrl = args['redis-url'] ?? (server as { url: string }).url
  let result: CacheLayerResult
  try {
    result = await measureCacheLayer({ redisUrl, seconds, runs, log: (m) => console.error(m) })
  } finally {
    await server?.stop()
  }
  console.log(`## Cache layer alone: ours vs bentocache (${runs > 1 ? `median of ${runs} runs` : '1 run'}, ${seconds} s per side and case)\n`)
  console.log(markdownTable(result))
  console.log('\n' + result.notes.map((n) => `- ${n}`).join('\n'))
  console.log('\nPer case:\n' + result.rows.map((row) => `- ${row.case}: ${row.notes ?? ''}`).join('\n'))
  console.log('\nConfiguration:\n' + Object.entries(result.config).map(([k, v]) => `- ${k}: ${v}`).join('\n'))
}
