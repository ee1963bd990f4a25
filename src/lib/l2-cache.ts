import type { Redis } from 'ioredis'
import type { CircuitBreaker } from './circuit-breaker.ts'
import type { CachedAnswer } from './cached-answer.ts'
import { RecError, unavailable } from './errors.ts'

/** What one Redis round trip tells a fill: the cached value if any, the user's generation at that
 *  moment (a later write is conditional on it), and whether this caller holds the fill lease. */
export interface Lookup {
  value?: CachedAnswer
  generation?: string
  lease?: string
  /** Redis failed or its breaker is open: no value, no generation, no lease */
  failed: boolean
}

export interface L2CacheOptions {
  redis: Redis
  breaker: CircuitBreaker
  keyPrefix: string
  modelVersion: string
  leaseMs: number
  /** how long a generation is kept after its last use (it must outlive the values written under it) */
  generationTtlMs: number
  onRedisError?: (err: unknown, op: string) => void
  now?: () => number
}

// Correct whatever key Redis evicts (it runs allkeys-lru in compose). Every value carries the
// generation it was computed under and is served only while that is still the user's generation,
// so an invalidation needs nothing but a new generation: the value's deletion is only tidying.
// Generations come from the Redis clock in microseconds and only grow: an invalidation sets
// max(current + 1, now), and a lookup that finds no generation (never set, expired or evicted)
// starts one at now. That is above every generation handed out before it, so no value written
// under an older one is served, and no fill that read an older one can write (the CAS fails).
const NOW_US = `local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])`

// One round trip per miss: the validated value, the generation, and (on a miss or a stale value) a lease.
const LOOKUP_SCRIPT = `
local g = redis.call('GET', KEYS[2])
if not g then
  ${NOW_US}
  g = string.format('%.0f', now_us)
  redis.call('SET', KEYS[2], g, 'PX', ARGV[4])
end
local v = redis.call('GET', KEYS[1])
local fresh = false
if v then
  local vg, f = string.match(v, '^(%d+)|%d+|(%d+)|')
  if vg ~= g then v = false else fresh = tonumber(f) > tonumber(ARGV[3]) end
end
local lease = ''
if not fresh and redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then lease = ARGV[1] end
return {v or '', g, lease}`

// The value, only if it belongs to the current generation (used while waiting on another replica's lease).
const PEEK_SCRIPT = `
local g = redis.call('GET', KEYS[2])
local v = redis.call('GET', KEYS[1])
if not g or not v or string.match(v, '^(%d+)|') ~= g then return '' end
return v`

// Write only if no invalidation happened since the fill read the generation (and the generation
// is still there to say so): a slow fill can never put old data back. Releases the caller's lease
// either way.
const CAS_WRITE_SCRIPT = `
if redis.call('GET', KEYS[3]) == ARGV[4] then redis.call('DEL', KEYS[3]) end
if redis.call('GET', KEYS[2]) ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local pttl = redis.call('PTTL', KEYS[2])
if pttl >= 0 and pttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`

const RELEASE_LEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

// KEYS come in pairs (generation, value) per user.
const INVALIDATE_SCRIPT = `
${NOW_US}
for i = 1, #KEYS, 2 do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  redis.call('SET', KEYS[i], string.format('%.0f', math.max(cur + 1, now_us)), 'PX', ARGV[1])
  redis.call('UNLINK', KEYS[i + 1])
end
return #KEYS / 2`

/** Users per invalidation script, so a storm does not hold Redis for one long script. */
const INVALIDATE_CHUNK = 1000

/** The Redis tier for recommendation answers: keys, encoding and the scripts that keep it correct
 *  (generation-checked reads and writes, fill leases). Redis failures are reported and treated as
 *  misses: the cache is never the reason a request fails. Invalidation is the exception: it throws,
 *  since an invalidation that did not happen must not be reported as done. */
export class L2Cache {
  private readonly redis: Redis
  private readonly now: () => number

  constructor (private readonly opts: L2CacheOptions) {
    this.redis = opts.redis
    this.now = opts.now ?? Date.now
    if (!this.redis.recLookup) {
      this.redis.defineCommand('recLookup', { numberOfKeys: 3, lua: LOOKUP_SCRIPT })
      this.redis.defineCommand('recPeek', { numberOfKeys: 2, lua: PEEK_SCRIPT })
      this.redis.defineCommand('recCasWrite', { numberOfKeys: 3, lua: CAS_WRITE_SCRIPT })
      this.redis.defineCommand('recInvalidate', { lua: INVALIDATE_SCRIPT })
      this.redis.defineCommand('recReleaseLease', { numberOfKeys: 1, lua: RELEASE_LEASE_SCRIPT })
    }
  }

  // One answer per user and model version holds every limit (see answer-body.ts). The value key
  // is new with the generation-carrying encoding, so replicas of an older version never read it.
  valueKey (userId: number): string { return `${this.opts.keyPrefix}answer:${this.opts.modelVersion}:${userId}` }
  generationKey (userId: number): string { return `${this.opts.keyPrefix}gen:${userId}` }
  leaseKey (userId: number): string { return `${this.opts.keyPrefix}lease:${this.opts.modelVersion}:${userId}` }

  async lookup (userId: number, token: string): Promise<Lookup> {
    try {
      const [raw, generation, lease] = await this.opts.breaker.run(() => this.redis.recLookup(
        this.valueKey(userId), this.generationKey(userId), this.leaseKey(userId),
        token, this.opts.leaseMs, this.now(), this.opts.generationTtlMs))
      return { value: decode(raw, this.now()), generation, lease: lease || undefined, failed: false }
    } catch (err) {
      this.opts.onRedisError?.(err, 'lookup')
      return { failed: true }
    }
  }

  /** The current value, used while waiting for another replica's lease. */
  async peek (userId: number): Promise<CachedAnswer | undefined> {
    try {
      return decode(await this.opts.breaker.run(() => this.redis.recPeek(this.valueKey(userId), this.generationKey(userId))), this.now())
    } catch (err) {
      this.opts.onRedisError?.(err, 'get')
      return undefined
    }
  }

  /** Writes unless the user's generation is no longer `generation`. Returns whether it wrote. */
  async write (userId: number, answer: CachedAnswer, generation: string, lease = ''): Promise<boolean> {
    const ttlMs = Math.max(1, answer.staleUntil - this.now())
    try {
      const written = await this.opts.breaker.run(() => this.redis.recCasWrite(
        this.valueKey(userId), this.generationKey(userId), this.leaseKey(userId),
        encode(answer, generation), ttlMs, generation, lease))
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

  /** Moves the users to a new generation (and drops their current answers). A chunk at a time:
   *  building and sending 20,000 keys at once held the event loop for ~20 ms. */
  async invalidate (userIds: readonly number[]): Promise<void> {
    try {
      for (let i = 0; i < userIds.length; i += INVALIDATE_CHUNK) {
        const keys = userIds.slice(i, i + INVALIDATE_CHUNK).flatMap((id) => [this.generationKey(id), this.valueKey(id)])
        await this.opts.breaker.run(() => this.redis.recInvalidate(keys.length, ...keys, this.opts.generationTtlMs))
      }
    } catch (err) {
      throw err instanceof RecError ? err : Object.assign(unavailable('redis'), { cause: err })
    }
  }
}

// generation|status|freshUntil|staleUntil|headLen|tailLen|itemEnd,itemEnd,...|head tail items:
// decoding is slicing, and the leading fields stay readable by the Lua checks.
function encode (a: CachedAnswer, generation: string): string {
  const b = a.body
  return `${generation}|${a.status}|${a.freshUntil}|${a.staleUntil}|${b.head.length}|${b.tail.length}|${b.ends.join(',')}|${b.head}${b.tail}${b.items}`
}

function decode (raw: string | null | undefined, now: number): CachedAnswer | undefined {
  if (!raw) return undefined
  const bars: number[] = []
  for (let at = -1, i = 0; i < 7; i++) {
    at = raw.indexOf('|', at + 1)
    if (at < 0) return undefined
    bars.push(at)
  }
  const field = (i: number) => raw.slice(i === 0 ? 0 : (bars[i - 1] as number) + 1, bars[i])
  const status = Number(field(1))
  const staleUntil = Number(field(3))
  const headLen = Number(field(4))
  const tailLen = Number(field(5))
  if ((status !== 200 && status !== 404) || !(staleUntil > now) || !Number.isInteger(headLen) || !Number.isInteger(tailLen)) return undefined
  const start = (bars[6] as number) + 1
  const ends = parseEnds(raw, (bars[5] as number) + 1, bars[6] as number)
  if (ends === undefined) return undefined
  const items = raw.slice(start + headLen + tailLen)
  if (items.length !== (ends.length ? ends[ends.length - 1] : 0)) return undefined
  return {
    status,
    freshUntil: Number(field(2)),
    staleUntil,
    body: { head: raw.slice(start, start + headLen), items, ends, tail: raw.slice(start + headLen, start + headLen + tailLen) }
  }
}

/** The comma-separated item ends between `from` and `to`, read in place: a split and a map made
 *  a hundred strings and two arrays per Redis hit (the largest allocation of the L2 path after
 *  the value itself). */
function parseEnds (raw: string, from: number, to: number): number[] | undefined {
  const ends: number[] = []
  if (from === to) return ends
  let n = 0
  let digits = 0
  for (let i = from; i <= to; i++) {
    const c = i === to ? 44 : raw.charCodeAt(i)
    if (c === 44) { // ','
      if (digits === 0) return undefined
      ends.push(n)
      n = 0
      digits = 0
    } else if (c >= 48 && c <= 57) {
      n = n * 10 + (c - 48)
      digits++
    } else {
      return undefined
    }
  }
  return ends
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    recLookup (valueKey: string, genKey: string, leaseKey: string, token: string, leaseMs: number, now: number, genTtlMs: number): Promise<[string, string, string]>
    recPeek (valueKey: string, genKey: string): Promise<string>
    recCasWrite (valueKey: string, genKey: string, leaseKey: string, value: string, ttlMs: number, generation: string, lease: string): Promise<number>
    recInvalidate (numKeys: number, ...args: Array<string | number>): Promise<number>
    recReleaseLease (leaseKey: string, lease: string): Promise<number>
  }
}
