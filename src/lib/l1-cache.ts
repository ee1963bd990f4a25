import { LRUCache } from 'lru-cache'
import { bodyBytes } from '../../workers/answer-body.ts'
import type { CachedAnswer } from './cached-answer.ts'

interface L1Entry extends CachedAnswer {
  /** an entry is served fresh as a HIT-L1: tagged once here, so a hit copies nothing */
  readonly tier: 'HIT-L1'
  /** fresh for this process's LRU (never beyond freshUntil) */
  l1FreshUntil: number
  /** the trust epoch of the fill that wrote it; fresh only while that epoch lasts */
  epoch: number
}

/** What a fill brings back to `write`: when it started and in which trust epoch. */
export interface FillTicket { startedAt: number, epoch: number }

export interface L1CacheOptions {
  maxEntries: number
  maxBytes: number
  ttlMs: number
  /** how long an invalidation is remembered; a fill older than this writes nothing */
  invalidationMemoryMs: number
  /** past this many remembered users, forget them all and refuse every older fill instead */
  maxRememberedInvalidations: number
  jitter: (ms: number) => number
  now?: () => number
  /** a monotonic clock for fill and invalidation times (performance.now) */
  clock?: () => number
}

/** The in-process LRU and everything that decides whether one of its entries may be served:
 *  freshness, trust (is this replica hearing every invalidation?) and the per-user invalidation
 *  guard (a fill that started before an invalidation never writes its result).
 *
 *  Why a write needs the guard: an invalidation is acknowledged once every listening replica has
 *  run `drop`, so a fill that started before it either wrote before (and `drop` removed the
 *  entry) or finds the invalidation remembered here and writes nothing. Remembering is bounded in
 *  time, so a fill that is older than the memory writes nothing either: no comment has to promise
 *  that fills are fast. */
export class L1Cache {
  private readonly lru: LRUCache<number, L1Entry>
  private readonly now: () => number
  private readonly clock: () => number
  /** user id → when this process last dropped them (clock) */
  private readonly invalidatedAt = new Map<number, number>()
  /** fills that started at or before this (clock) write nothing */
  private writeFloor = Number.NEGATIVE_INFINITY
  private epoch = 0
  private trusted = true

  constructor (private readonly opts: L1CacheOptions) {
    this.now = opts.now ?? Date.now
    this.clock = opts.clock ?? (() => performance.now())
    this.lru = new LRUCache<number, L1Entry>({
      max: opts.maxEntries,
      maxSize: opts.maxBytes,
      sizeCalculation: (v) => bodyBytes(v.body) + 200
      // No TTL here: freshness and grace are read from the entry's own times (get, getStale), and
      // the LRU's bounds hold whatever has expired until it is read or evicted. Its TTL would cost
      // a clock read and a timer on every hit, to say again what the entry says.
    })
  }

  /** A fresh entry written in the current trust epoch while trusted, or undefined. */
  get (userId: number): (CachedAnswer & { readonly tier: 'HIT-L1' }) | undefined {
    const e = this.lru.get(userId)
    if (e && this.trusted && e.epoch === this.epoch && this.now() < e.l1FreshUntil) return e
    return undefined
  }

  /** Any entry still within its grace period, trusted or not: the last resort when the
   *  dependencies fail. */
  getStale (userId: number): CachedAnswer | undefined {
    const e = this.lru.get(userId)
    if (e === undefined) return undefined
    if (this.now() < e.staleUntil) return e
    this.lru.delete(userId)
    return undefined
  }

  /** Taken when a fill starts, before it reads anything. */
  beginFill (): FillTicket {
    return { startedAt: this.clock(), epoch: this.epoch }
  }

  /** Stores a fill's answer unless the user was dropped since the fill began, or the fill is
   *  older than the invalidation memory. An answer from a fill that began in another trust epoch
   *  (the subscription dropped meanwhile) is kept only as a stale-if-error fallback. */
  write (userId: number, answer: CachedAnswer, ticket: FillTicket): boolean {
    const t = this.clock()
    if (ticket.startedAt <= this.writeFloor || t - ticket.startedAt >= this.opts.invalidationMemoryMs) return false
    const dropped = this.invalidatedAt.get(userId)
    if (dropped !== undefined && dropped >= ticket.startedAt) return false
    const now = this.now()
    if (answer.staleUntil <= now) return false
    const l1FreshUntil = Math.min(answer.freshUntil, now + this.opts.jitter(this.opts.ttlMs))
    this.lru.set(userId, { status: answer.status, body: answer.body, freshUntil: answer.freshUntil, staleUntil: answer.staleUntil, tier: 'HIT-L1', l1FreshUntil, epoch: ticket.epoch })
    return true
  }

  /** Drops the users and remembers when. Synchronous, so that once it returns no later read can
   *  see the old entries. O(users): one delete and one map write each. */
  drop (userIds: readonly number[]): void {
    const t = this.clock()
    for (const id of userIds) {
      this.lru.delete(id)
      // Re-inserted so the map stays in time order and pruning stops at the first recent one.
      this.invalidatedAt.delete(id)
      this.invalidatedAt.set(id, t)
    }
    this.prune(t)
  }

  /** While invalidations may be missed (the subscription is down) nothing here is served as
   *  fresh; entries written before or during the gap stay usable only as stale-if-error fallbacks. */
  distrust (): void {
    this.trusted = false
    this.epoch++
  }

  trust (): void {
    this.epoch++
    this.trusted = true
  }

  get isTrusted (): boolean { return this.trusted }

  clear (): void { this.lru.clear() }

  get stats (): { entries: number, bytes: number } { return { entries: this.lru.size, bytes: this.lru.calculatedSize } }

  private prune (t: number): void {
    for (const [id, at] of this.invalidatedAt) {
      if (t - at < this.opts.invalidationMemoryMs) break
      this.invalidatedAt.delete(id)
    }
    if (this.invalidatedAt.size > this.opts.maxRememberedInvalidations) {
      // An invalidation storm: forget the per-user times but keep the guarantee by refusing every
      // write from fills that started before now.
      this.invalidatedAt.clear()
      this.writeFloor = t
    }
  }
}
