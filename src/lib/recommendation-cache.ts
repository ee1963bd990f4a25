import { LRUCache } from 'lru-cache'
import type { Redis } from 'ioredis'

/** What a cache tier holds: the status and the already-serialized body, so a hit does no JSON work. */
export interface CachedAnswer { status: 200 | 404, body: string }

export interface RecommendationCacheOptions {
  redis: Redis
  keyPrefix: string
  modelVersion: string
  l1MaxEntries: number
  l1MaxBytes: number
  l1TtlMs: number
  l2TtlS: number
  notFoundTtlMs: number
  onRedisError?: (err: unknown, op: string) => void
}

// Every cached answer for a user is listed in one Redis set, whatever the model version or limit,
// so an invalidation removes all of them in one script call.
const WRITE_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1`

const INVALIDATE_SCRIPT = `
local n = 0
for i = 1, #KEYS do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members do n = n + redis.call('UNLINK', members[j]) end
  redis.call('UNLINK', KEYS[i])
end
return n`

const L1_MAX_LIMIT = 100

/** The two cache tiers for recommendation answers: an in-process LRU (bounded by entries, bytes and
 *  TTL) and Redis (TTL, prefixed and versioned keys). Redis failures are reported and treated as
 *  misses: the cache must never be the reason a request fails. */
export class RecommendationCache {
  private readonly l1: LRUCache<string, CachedAnswer>
  private readonly redis: Redis

  constructor (private readonly opts: RecommendationCacheOptions) {
    this.redis = opts.redis
    this.l1 = new LRUCache<string, CachedAnswer>({
      max: opts.l1MaxEntries,
      maxSize: opts.l1MaxBytes,
      sizeCalculation: (v, k) => v.body.length + k.length + 64,
      ttl: opts.l1TtlMs,
      // Expired entries are dropped on read; no timers per entry.
      ttlAutopurge: false,
      updateAgeOnGet: false
    })
    if (!this.redis.recWrite) {
      this.redis.defineCommand('recWrite', { numberOfKeys: 2, lua: WRITE_SCRIPT })
      this.redis.defineCommand('recInvalidate', { lua: INVALIDATE_SCRIPT })
    }
  }

  private l1Key (userId: number, limit: number) { return `${userId}:${limit}` }
  private l2Key (userId: number, limit: number) { return `${this.opts.keyPrefix}rec:${this.opts.modelVersion}:${userId}:${limit}` }
  private indexKey (userId: number) { return `${this.opts.keyPrefix}recidx:${userId}` }

  getL1 (userId: number, limit: number): CachedAnswer | undefined {
    return this.l1.get(this.l1Key(userId, limit))
  }

  setL1 (userId: number, limit: number, answer: CachedAnswer): void {
    this.l1.set(this.l1Key(userId, limit), answer, answer.status === 404 ? { ttl: Math.min(this.opts.notFoundTtlMs, this.opts.l1TtlMs) } : undefined)
  }

  async getL2 (userId: number, limit: number): Promise<CachedAnswer | undefined> {
    try {
      return decode(await this.redis.get(this.l2Key(userId, limit)))
    } catch (err) {
      this.opts.onRedisError?.(err, 'get')
      return undefined
    }
  }

  /** One MGET for all ids. */
  async getManyL2 (userIds: number[], limit: number): Promise<Array<CachedAnswer | undefined>> {
    if (userIds.length === 0) return []
    try {
      const values = await this.redis.mget(userIds.map((id) => this.l2Key(id, limit)))
      return values.map(decode)
    } catch (err) {
      this.opts.onRedisError?.(err, 'mget')
      return userIds.map(() => undefined)
    }
  }

  async setL2 (userId: number, limit: number, answer: CachedAnswer): Promise<void> {
    const ttlMs = answer.status === 404 ? this.opts.notFoundTtlMs : this.opts.l2TtlS * 1000
    try {
      await this.redis.recWrite(this.l2Key(userId, limit), this.indexKey(userId), encode(answer), ttlMs)
    } catch (err) {
      this.opts.onRedisError?.(err, 'set')
    }
  }

  /** Drops every cached answer of these users from this process's LRU and from Redis. */
  async invalidate (userIds: number[]): Promise<void> {
    this.invalidateL1(userIds)
    if (userIds.length === 0) return
    await this.redis.recInvalidate(userIds.length, ...userIds.map((id) => this.indexKey(id)))
  }

  invalidateL1 (userIds: number[]): void {
    // Limits are 1..100, so deleting each possible key is cheaper than keeping a per-user index.
    for (const id of userIds) {
      for (let limit = 1; limit <= L1_MAX_LIMIT; limit++) this.l1.delete(this.l1Key(id, limit))
    }
  }

  clearL1 (): void { this.l1.clear() }

  get l1Stats () { return { entries: this.l1.size, bytes: this.l1.calculatedSize } }
}

function encode (a: CachedAnswer): string { return `${a.status}${a.body}` }

function decode (raw: string | null | undefined): CachedAnswer | undefined {
  if (raw == null || raw.length < 3) return undefined
  const status = raw.charCodeAt(0) === 52 /* '4' */ ? 404 : 200
  return { status, body: raw.slice(3) }
}

declare module 'ioredis' {
  interface RedisCommander<Context> {
    recWrite (key: string, indexKey: string, value: string, ttlMs: number): Promise<number>
    recInvalidate (numKeys: number, ...indexKeys: string[]): Promise<number>
  }
}
