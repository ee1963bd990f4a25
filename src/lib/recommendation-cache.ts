import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'
import type { CircuitBreaker } from './circuit-breaker.ts'
import { RecError, unavailable } from './errors.ts'
import { bodyBytes, type AnswerBody } from '../../workers/answer-body.ts'

/** A cached answer for one user, every limit at once: status and already-serialized body (a hit
 *  does no JSON work), with the absolute times until which it is fresh and until which it may
 *  still be served stale. */
export interface CachedAnswer {
  status: 200 | 404
  body: AnswerBody
  freshUntil: number
  staleUntil: number
}

interface L1Entry extends CachedAnswer {
  /** fresh for this process's LRU (never beyond freshUntil) */
  l1FreshUntil: number
  /** the trust epoch it was written in; see `distrustL1` */
  epoch: number
}

/** What one Redis round trip tells a fill: the cached value if any, the user's generation at that
 *  moment (a later write is conditional on it), and whether this caller holds the fill lease. */
export interface Lookup {
  value?: CachedAnswer
  generation?: string
  lease?: string
  /** Redis failed or its breaker is open: no value, no generation, no lease */
  failed: boolean
}

export interface RecommendationCacheOptions {
  redis: Redis
  breaker: CircuitBreaker
  keyPrefix: string
  modelVersion: string
  l1MaxEntries: number
  l1MaxBytes: number
  l1TtlMs: number
  l2TtlS: number
  graceS: number
  notFoundTtlMs: number
  ttlJitter: number
  leaseMs: number
  onRedisError?: (err: unknown, op: string) => void
  now?: () => number
  random?: () => number
}

// One round trip per miss: the value, the generation, and (on a miss or a stale value) a lease.
const LOOKUP_SCRIPT = `
local v = redis.call('GET', KEYS[1])
local g = redis.call('GET', KEYS[2]) or '0'
local lease = ''
local fresh = false
if v then
  local f = string.match(v, '^%d+|(%d+)|')
  fresh = f ~= nil and tonumber(f) > tonumber(ARGV[3])
end
if not fresh and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then lease = ARGV[1] end
return {v or '', g, lease}`

// Write only if no invalidation happened since the fill read the generation: a slow fill can never
// put old data back. Releases the caller's lease either way.
const CAS_WRITE_SCRIPT = `
if redis.call('GET', KEYS[4]) == ARGV[4] then redis.call('DEL', KEYS[4]) end
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`

const RELEASE_LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// KEYS come in pairs (index set, generation) per user: bump the generation first, then drop every
// cached answer listed in the index, whatever its model version or limit.
const INVALIDATE_SCRIPT = `
for i = 1, #KEYS, 2 do
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members do redis.call('UNLINK', members[j]) end
  redis.call('UNLINK', KEYS[i])
end
return #KEYS / 2`


/** The two cache tiers for recommendation answers: an in-process LRU (bounded by entries, bytes and
 *  TTL) and Redis (TTL with jitter, prefixed and versioned keys, generation-checked writes).
 *  Redis failures are reported and treated as misses: the cache is never the reason a request fails. */
export class RecommendationCache {
  private readonly l1: LRUCache<number, L1Entry>
  private readonly redis: Redis
  private readonly now: () => number
  private readonly random: () => number
  private epoch = 0
  private trusted = true

  constructor (private readonly opts: RecommendationCacheOptions) {
    this.redis = opts.redis
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
    this.l1 = new LRUCache<number, L1Entry>({
      max: opts.l1MaxEntries,
      maxSize: opts.l1MaxBytes,
      sizeCalculation: (v) => bodyBytes(v.body) + 200,
      // Entries live until their grace period ends so they can serve stale-if-error; freshness
      // is checked on read.
      ttl: opts.l1TtlMs + opts.graceS * 1000,
      ttlAutopurge: false,
      updateAgeOnGet: false
    })
    if (!this.redis.recLookup) {
      this.redis.defineCommand('recLookup', { numberOfKeys: 3, lua: LOOKUP_SCRIPT })
      this.redis.defineCommand('recCasWrite', { numberOfKeys: 4, lua: CAS_WRITE_SCRIPT })
      this.redis.defineCommand('recInvalidate', { lua: INVALIDATE_SCRIPT })
      this.redis.defineCommand('recReleaseLease', { numberOfKeys: 1, lua: RELEASE_LEASE_SCRIPT })
    }
  }

  // One answer per user and model version holds every limit (see answer-body.ts).
  private valueKey (userId: number) { return `${this.opts.keyPrefix}ans:${this.opts.modelVersion}:${userId}` }
  private indexKey (userId: number) { return `${this.opts.keyPrefix}recidx:${userId}` }
  private genKey (userId: number) { return `${this.opts.keyPrefix}gen:${userId}` }
  private leaseKey (userId: number) { return `${this.opts.keyPrefix}lease:${this.opts.modelVersion}:${userId}` }

  /** A fresh, trusted LRU entry, or undefined. */
  getL1 (userId: number): CachedAnswer | undefined {
    const e = this.l1.get(userId)
    if (e && this.trusted && e.epoch === this.epoch && this.now() < e.l1FreshUntil) return e
    return undefined
  }

  /** Any LRU entry still within its grace period, trusted or not: the last resort when the
   *  dependencies fail. */
  getL1Fallback (userId: number): CachedAnswer | undefined {
    const e = this.l1.get(userId, { allowStale: false })
    return e && this.now() < e.staleUntil ? e : undefined
  }

  setL1 (userId: number, answer: CachedAnswer): void {
    const now = this.now()
    const ttl = answer.staleUntil - now
    if (ttl <= 0) return
    const l1FreshUntil = Math.min(answer.freshUntil, now + this.jitter(this.opts.l1TtlMs))
    this.l1.set(userId, { ...answer, l1FreshUntil, epoch: this.epoch }, { ttl })
  }

  /** Builds the cache entry for a new answer: fresh TTL with jitter, then the grace period. */
  stamp (status: 200 | 404, body: AnswerBody): CachedAnswer {
    const now = this.now()
    if (status === 404) {
      const until = now + this.jitter(this.opts.notFoundTtlMs)
      return { status, body, freshUntil: until, staleUntil: until }
    }
    const freshUntil = now + this.jitter(this.opts.l2TtlS * 1000)
    return { status, body, freshUntil, staleUntil: freshUntil + this.opts.graceS * 1000 }
  }

  async lookup (userId: number, token: string): Promise<Lookup> {
    try {
      const [raw, generation, lease] = await this.opts.breaker.run(() =>
        this.redis.recLookup(this.valueKey(userId), this.genKey(userId), this.leaseKey(userId), token, this.opts.leaseMs, this.now()))
      return { value: decode(raw, this.now()), generation, lease: lease || undefined, failed: false }
    } catch (err) {
      this.opts.onRedisError?.(err, 'lookup')
      return { failed: true }
    }
  }

  /** Plain read of the value, used while waiting for another replica's lease. */
  async peek (userId: number): Promise<CachedAnswer | undefined> {
    try {
      return decode(await this.opts.breaker.run(() => this.redis.get(this.valueKey(userId))), this.now())
    } catch (err) {
      this.opts.onRedisError?.(err, 'get')
      return undefined
    }
  }

  /** Writes unless the user was invalidated since `generation` was read. Returns whether it wrote. */
  async setL2 (userId: number, answer: CachedAnswer, generation: string, lease = ''): Promise<boolean> {
    const ttlMs = Math.max(1, answer.staleUntil - this.now())
    try {
      const written = await this.opts.breaker.run(() => this.redis.recCasWrite(
        this.valueKey(userId), this.indexKey(userId), this.genKey(userId), this.leaseKey(userId),
        encode(answer), ttlMs, generation, lease))
      return written === 1
    } catch (err) {
      this.opts.onRedisError?.(err, 'set')
      return false
    }
  }

  /** A fill that failed hands its lease back, so other replicas (and the next request here)
   *  compute at once instead of waiting for a result that will not come. */
  releaseLease (userId: number, lease: string): void {
    this.opts.breaker.run(() => this.redis.recReleaseLease(this.leaseKey(userId), lease))
      .catch((err: unknown) => this.opts.onRedisError?.(err, 'release'))
  }

  /** Bumps the users' generations and drops their answers from Redis. Throws when Redis fails:
   *  an invalidation that did not happen must not be reported as done. */
  async invalidateL2 (userIds: number[]): Promise<void> {
    if (userIds.length === 0) return
    const keys = userIds.flatMap((id) => [this.indexKey(id), this.genKey(id)])
    const genTtlMs = Math.max(86_400_000, 2 * (this.opts.l2TtlS + this.opts.graceS) * 1000)
    try {
      await this.opts.breaker.run(() => this.redis.recInvalidate(keys.length, ...keys, genTtlMs))
    } catch (err) {
      throw err instanceof RecError ? err : Object.assign(unavailable('redis'), { cause: err })
    }
  }

  invalidateL1 (userIds: number[]): void {
    for (const id of userIds) this.l1.delete(id)
  }

  /** While invalidations may be missed (the subscription is down) nothing in the LRU is served as
   *  fresh; entries written before or during the gap stay usable only as stale-if-error fallbacks. */
  distrustL1 (): void {
    this.trusted = false
    this.epoch++
  }

  trustL1 (): void {
    this.epoch++
    this.trusted = true
  }

  get l1Trusted (): boolean { return this.trusted }

  clearL1 (): void { this.l1.clear() }

  get l1Stats () { return { entries: this.l1.size, bytes: this.l1.calculatedSize } }

  private jitter (ms: number): number {
    const j = this.opts.ttlJitter
    return Math.max(1, Math.round(ms * (1 - j + 2 * j * this.random())))
  }
}

// status|freshUntil|staleUntil|headLen|tailLen|itemEnd,itemEnd,...|head tail items: decoding is
// slicing, and the leading fields stay readable by the Lua freshness check.
function encode (a: CachedAnswer): string {
  const b = a.body
  return `${a.status}|${a.freshUntil}|${a.staleUntil}|${b.head.length}|${b.tail.length}|${b.ends.join(',')}|${b.head}${b.tail}${b.items}`
}

function decode (raw: string | null | undefined, now: number): CachedAnswer | undefined {
  if (!raw) return undefined
  const bars: number[] = []
  for (let at = -1, i = 0; i < 6; i++) {
    at = raw.indexOf('|', at + 1)
    if (at < 0) return undefined
    bars.push(at)
  }
  const field = (i: number) => raw.slice(i === 0 ? 0 : (bars[i - 1] as number) + 1, bars[i])
  const staleUntil = Number(field(2))
  const headLen = Number(field(3))
  const tailLen = Number(field(4))
  const endsField = field(5)
  if (!(staleUntil > now) || !Number.isInteger(headLen) || !Number.isInteger(tailLen)) return undefined
  const start = (bars[5] as number) + 1
  const ends = endsField === '' ? [] : endsField.split(',').map(Number)
  const items = raw.slice(start + headLen + tailLen)
  if (items.length !== (ends.length ? ends[ends.length - 1] : 0)) return undefined
  return {
    status: raw.startsWith('404') ? 404 : 200,
    freshUntil: Number(field(1)),
    staleUntil,
    body: { head: raw.slice(start, start + headLen), items, ends, tail: raw.slice(start + headLen, start + headLen + tailLen) }
  }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    recLookup (valueKey: string, genKey: string, leaseKey: string, token: string, leaseMs: number, now: number): Promise<[string, string, string]>
    recCasWrite (valueKey: string, indexKey: string, genKey: string, leaseKey: string, value: string, ttlMs: number, generation: string, lease: string): Promise<number>
    recInvalidate (numKeys: number, ...args: Array<string | number>): Promise<number>
    recReleaseLease (leaseKey: string, lease: string): Promise<number>
  }
}
