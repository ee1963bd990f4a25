import { createHash, randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import type { Connection, Pool } from 'mysql2/promise'
import { RecError, unavailable } from './errors.ts'
import { acquireConnection, timedQuery } from './mysql-deadline.ts'
import { SingleFlight } from './single-flight.ts'

/** API keys (table api_keys, sql/003_api_keys.sql): what a key looks like, its hash, the cached
 *  lookup the rate limiter does per request, and the create/list/revoke of `npm run keys`. Only
 *  the SHA-256 of a key is ever stored; the key itself is shown once, when it is created. */

export const KEY_TIERS = ['free', 'premium', 'enterprise'] as const
export type KeyTier = typeof KEY_TIERS[number]

/** `rk_` and 32 random bytes in base64url (43 characters): the prefix makes a leaked key easy to
 *  recognise (secret scanners, logs), the length makes guessing hopeless. */
const KEY_PATTERN = /^rk_[A-Za-z0-9_-]{43}$/

export function generateKey (): string {
  return `rk_${randomBytes(32).toString('base64url')}`
}

/** A header value that cannot be a key is refused without asking MySQL. */
export function isWellFormedKey (key: string): boolean {
  return KEY_PATTERN.test(key)
}

export function hashKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export const badApiKey = () => new RecError(401, 'REC_ERR_BAD_API_KEY', 'unknown, revoked or malformed X-API-Key')

export interface ApiKey { id: number, tier: KeyTier }

export interface ApiKeyLookupOptions {
  /** How long an answer (known, unknown or revoked) is trusted: a revocation takes effect within it. */
  ttlMs: number
  /** Deadline of one lookup: waiting for a pooled connection plus the query. */
  timeoutMs: number
  maxEntries?: number
  /** While MySQL fails, an answer older than ttlMs but younger than this is used rather than a 503,
   *  so clients with keys keep being served through an outage (a revocation made just before it is
   *  then seen when MySQL is back). */
  staleOnErrorMs?: number
  /** Told about each failed lookup, and whether a stale answer covered it. */
  onError?: (err: unknown, servedStale: boolean) => void
  now?: () => number
}

interface Entry { key: ApiKey | null, at: number }

/** The per-request lookup: key hash -> id and tier, through a bounded LRU, one query per hash at
 *  a time. Unknown and revoked keys are cached too, so a client repeating a bad key does not
 *  cost a query per request. */
export class ApiKeyLookup {
  private readonly cache: LRUCache<string, Entry>
  private readonly flights = new SingleFlight<string, ApiKey | null>()
  private readonly now: () => number

  constructor (private readonly pool: Pool, private readonly opts: ApiKeyLookupOptions) {
    this.now = opts.now ?? Date.now
    this.cache = new LRUCache<string, Entry>({
      max: opts.maxEntries ?? 10_000,
      // The LRU drops entries once they are too old even for an outage; freshness is checked below.
      ttl: Math.max(opts.ttlMs, opts.staleOnErrorMs ?? 10 * 60_000),
      ttlAutopurge: false
    })
  }

  /** The key's id and tier; null when it is unknown or revoked. Throws a 503 RecError when MySQL
   *  cannot answer and nothing usable is cached. */
  async lookup (key: string): Promise<ApiKey | null> {
    const hash = hashKey(key)
    const entry = this.cache.get(hash)
    if (entry && this.now() - entry.at < this.opts.ttlMs) return entry.key
    try {
      return await this.flights.do(hash, async () => {
        const found = await this.query(hash)
        this.cache.set(hash, { key: found, at: this.now() })
        return found
      }).promise
    } catch (err) {
      this.opts.onError?.(err, entry !== undefined)
      if (entry) return entry.key
      throw err instanceof RecError ? err : Object.assign(unavailable('API key lookup'), { cause: err })
    }
  }

  /** Forgets every cached answer (tests; an operator after an urgent revocation would restart). */
  clear (): void { this.cache.clear() }

  private async query (hash: string): Promise<ApiKey | null> {
    const conn = await acquireConnection(this.pool, this.opts.timeoutMs)
    let broken = false
    try {
      const rows = await timedQuery<{ id: number, tier: KeyTier, revoked_at: Date | null }>(conn,
        'SELECT id, tier, revoked_at FROM api_keys WHERE key_hash = ?', [hash], this.opts.timeoutMs, true)
      const row = rows[0]
      return row && row.revoked_at === null ? { id: Number(row.id), tier: row.tier } : null
    } catch (err) {
      // After a timeout the connection's state is unknown (see mysql-deadline.ts).
      broken = true
      throw Object.assign(unavailable('API key lookup'), { cause: err })
    } finally {
      if (broken) conn.destroy(); else conn.release()
    }
  }
}

// ---- administration (scripts/keys.ts)

type Db = Pool | Connection

export interface ApiKeyRow { id: number, tier: KeyTier, createdAt: Date, revokedAt: Date | null, hashPrefix: string }

const ADMIN_TIMEOUT_MS = 10_000

/** Stores a new key of `tier`; the returned key is not kept anywhere, only its hash. */
export async function createKey (db: Db, tier: KeyTier): Promise<{ id: number, key: string, tier: KeyTier }> {
  if (!KEY_TIERS.includes(tier)) throw new Error(`tier must be one of ${KEY_TIERS.join(', ')}, got ${JSON.stringify(tier)}`)
  const key = generateKey()
  const [res] = await db.query({ sql: 'INSERT INTO api_keys (key_hash, tier) VALUES (?, ?)', timeout: ADMIN_TIMEOUT_MS }, [hashKey(key), tier])
  return { id: Number((res as { insertId: number }).insertId), key, tier }
}

export async function listKeys (db: Db): Promise<ApiKeyRow[]> {
  const [rows] = await db.query({ sql: 'SELECT id, tier, created_at, revoked_at, key_hash FROM api_keys ORDER BY id', timeout: ADMIN_TIMEOUT_MS })
  return (rows as Array<{ id: number, tier: KeyTier, created_at: Date, revoked_at: Date | null, key_hash: string }>).map((r) => ({
    id: Number(r.id), tier: r.tier, createdAt: r.created_at, revokedAt: r.revoked_at, hashPrefix: r.key_hash.slice(0, 8)
  }))
}

/** 'revoked', 'already revoked' or 'not found'. Replicas stop accepting the key within their
 *  lookup cache's TTL (RATE_LIMIT_KEY_CACHE_TTL_MS). */
export async function revokeKey (db: Db, id: number): Promise<'revoked' | 'already revoked' | 'not found'> {
  const [res] = await db.query({ sql: 'UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP(3) WHERE id = ? AND revoked_at IS NULL', timeout: ADMIN_TIMEOUT_MS }, [id])
  if ((res as { affectedRows: number }).affectedRows === 1) return 'revoked'
  const [rows] = await db.query({ sql: 'SELECT id FROM api_keys WHERE id = ?', timeout: ADMIN_TIMEOUT_MS }, [id])
  return (rows as unknown[]).length ? 'already revoked' : 'not found'
}
