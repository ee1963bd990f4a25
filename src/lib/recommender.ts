import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { RecommendationBody, ScoreTask, ScoringWeights } from '../../workers/types.ts'
import type { CachedAnswer, RecommendationCache } from './recommendation-cache.ts'
import type { UserHistory, UserStore } from './user-store.ts'
import type { BroadcastResult } from './invalidation-bus.ts'
import { errorBody, unavailable } from './errors.ts'
import { ServerTiming } from './server-timing.ts'
import { SingleFlight } from './single-flight.ts'
import { MAX_LIMIT } from './limits.ts'

export type Tier = 'HIT-L1' | 'HIT-L2' | 'MISS' | 'STALE'
export interface Answer extends CachedAnswer { tier: Tier }

export interface RecommenderDeps {
  cache: RecommendationCache
  store: UserStore
  score: (task: ScoreTask) => Promise<RecommendationBody>
  stats: () => { version: number, json: string }
  serialize: (body: RecommendationBody) => string
  /** sends an invalidation to every replica (this one included) and waits for their acks */
  broadcast: (userIds: number[]) => Promise<BroadcastResult>
  weights: ScoringWeights
  modelVersion: string
  /** how long to wait for another replica's fill before computing here */
  leaseWaitMs: number
  now?: () => number
  onScore?: () => void
  onBackgroundError?: (err: unknown) => void
}

export interface InvalidationResult { invalidated: number[], replicas: BroadcastResult }

const LEASE_POLL_MS = 20
/** Longer than any fill can take (every step has a timeout well below this). */
const INVALIDATION_MEMORY_MS = 30_000
const MAX_REMEMBERED_INVALIDATIONS = 1_000_000

/** Answers "what should user N see" through L1, L2, then MySQL + scoring, and keeps the tiers
 *  correct: concurrent misses share one fill, a fill that started before an invalidation never
 *  writes its result into either tier, cold keys are computed by one replica (a Redis lease), past
 *  fresh an answer is served STALE while one refresh runs, and when MySQL fails an answer within
 *  its grace period is served STALE instead of an error. */
export class Recommender {
  private readonly flight = new SingleFlight<string, Answer>()
  private readonly refreshes = new SingleFlight<string, Answer>()
  /** user id → when this process last dropped them (performance.now()) */
  private readonly invalidatedAt = new Map<number, number>()
  /** fills that started before this (performance.now()) write nothing to L1 */
  private l1WriteFloor = 0
  private readonly now: () => number

  constructor (private readonly deps: RecommenderDeps) {
    this.now = deps.now ?? Date.now
  }

  async get (userId: number, limit: number, timing = new ServerTiming()): Promise<Answer> {
    const hit = this.deps.cache.getL1(userId, limit)
    if (hit) return { ...hit, tier: 'HIT-L1' }
    const { promise, shared } = this.flight.do(this.flightKey(userId, limit), () => this.fill(userId, limit, timing))
    if (shared) return await timing.measure('wait', () => promise)
    return await promise
  }

  /** Batch read: L1 per id, one MGET for the rest, one query per table for what Redis lacked. */
  async getMany (userIds: number[], limit: number, timing = new ServerTiming()): Promise<Map<number, Answer | Error>> {
    const out = new Map<number, Answer | Error>()
    const l1Misses: number[] = []
    for (const id of userIds) {
      const hit = this.deps.cache.getL1(id, limit)
      if (hit) out.set(id, { ...hit, tier: 'HIT-L1' })
      else l1Misses.push(id)
    }
    if (l1Misses.length === 0) return out

    const startedAt = performance.now()
    const l2 = await timing.measure('l2', () => this.deps.cache.lookupMany(l1Misses, limit))
    const cold: Array<{ id: number, generation?: string, stale?: CachedAnswer }> = []
    const now = this.now()
    l1Misses.forEach((id, i) => {
      const { value, generation } = l2[i] ?? {}
      if (value && now < value.freshUntil) {
        this.writeL1(id, limit, value, startedAt)
        out.set(id, { ...value, tier: 'HIT-L2' })
      } else {
        cold.push({ id, generation, stale: value ?? this.deps.cache.getL1Fallback(id, limit) })
      }
    })
    if (cold.length === 0) return out

    let histories: Map<number, UserHistory> | undefined
    let loadError: unknown
    try {
      histories = await timing.measure('db', () => this.deps.store.loadUsers(cold.map((c) => c.id), this.now()))
    } catch (err) {
      loadError = err
    }
    const start = performance.now()
    await Promise.all(cold.map(async ({ id, generation, stale }) => {
      try {
        if (!histories) throw loadError
        out.set(id, await this.compute(id, limit, histories.get(id), generation, '', startedAt))
      } catch (err) {
        out.set(id, stale ? { ...stale, tier: 'STALE' } : err as Error)
      }
    }))
    timing.add('score', performance.now() - start)
    return out
  }

  /** Drops the users here, then in Redis (generation bump), then on every replica, and reports how
   *  many replicas acknowledged. */
  async invalidate (userIds: number[]): Promise<InvalidationResult> {
    this.dropLocal(userIds)
    await this.deps.cache.invalidateL2(userIds)
    const replicas = await this.deps.broadcast(userIds)
    return { invalidated: userIds, replicas }
  }

  /** Called for every invalidation this replica hears of (its own included). Synchronous, so that
   *  once it returns no later read can see the old entries. */
  dropLocal (userIds: number[]): void {
    const t = performance.now()
    for (const id of userIds) {
      this.invalidatedAt.delete(id)
      this.invalidatedAt.set(id, t)
      // Requests arriving from now on must not join a fill that started before the invalidation.
      for (let limit = 1; limit <= MAX_LIMIT; limit++) this.flight.forget(this.flightKey(id, limit))
    }
    this.deps.cache.invalidateL1(userIds)
    this.pruneInvalidations(t)
  }

  private flightKey (userId: number, limit: number) { return `${userId}:${limit}` }

  private async fill (userId: number, limit: number, timing: ServerTiming): Promise<Answer> {
    const startedAt = performance.now()
    const token = randomUUID()
    const fallback = this.deps.cache.getL1Fallback(userId, limit)
    const found = await timing.measure('l2', () => this.deps.cache.lookup(userId, limit, token))
    const now = this.now()
    if (found.value && now < found.value.freshUntil) {
      this.writeL1(userId, limit, found.value, startedAt)
      return { ...found.value, tier: 'HIT-L2' }
    }
    if (found.value) {
      // Past fresh, within grace: answer now, refresh once in the background (here if we hold the
      // lease, otherwise another replica is already doing it).
      if (found.lease) this.refreshInBackground(userId, limit, found.generation ?? '0', found.lease, startedAt)
      return { ...found.value, tier: 'STALE' }
    }
    if (!found.failed && !found.lease) {
      const landed = await timing.measure('lease', () => this.waitForOtherReplica(userId, limit))
      if (landed) {
        this.writeL1(userId, limit, landed, startedAt)
        return { ...landed, tier: 'HIT-L2' }
      }
    }
    try {
      const history = await timing.measure('db', () => this.deps.store.loadUser(userId, this.now()))
      return await this.compute(userId, limit, history, found.generation, found.lease ?? '', startedAt, timing)
    } catch (err) {
      if (fallback) return { ...fallback, tier: 'STALE' }
      throw err
    }
  }

  private async waitForOtherReplica (userId: number, limit: number): Promise<CachedAnswer | undefined> {
    const deadline = performance.now() + this.deps.leaseWaitMs
    while (performance.now() < deadline) {
      await sleep(LEASE_POLL_MS)
      const v = await this.deps.cache.peek(userId, limit)
      if (v && this.now() < v.freshUntil) return v
    }
    return undefined
  }

  private refreshInBackground (userId: number, limit: number, generation: string, lease: string, startedAt: number): void {
    this.refreshes.do(this.flightKey(userId, limit), async () => {
      const history = await this.deps.store.loadUser(userId, this.now())
      return await this.compute(userId, limit, history, generation, lease, startedAt)
    }).promise.catch((err: unknown) => this.deps.onBackgroundError?.(err))
  }

  /** Scores (or records the 404) and writes the answer to both tiers, each write conditional on
   *  no invalidation having happened since the fill started. */
  private async compute (userId: number, limit: number, history: UserHistory | undefined, generation: string | undefined,
    lease: string, startedAt: number, timing?: ServerTiming): Promise<Answer> {
    let answer: CachedAnswer
    if (!history) {
      answer = this.deps.cache.stamp(404, JSON.stringify(errorBody(404, 'REC_ERR_USER_NOT_FOUND', `user ${userId} not found`)))
    } else {
      const stats = this.deps.stats()
      if (!stats.json) throw unavailable('global statistics')
      const task: ScoreTask = {
        userId,
        searches: history.searches,
        purchases: history.purchases,
        limit,
        now: this.now(),
        weights: this.deps.weights,
        modelVersion: this.deps.modelVersion,
        statsVersion: stats.version,
        statsJson: stats.json
      }
      this.deps.onScore?.()
      const body = timing ? await timing.measure('score', () => this.deps.score(task)) : await this.deps.score(task)
      answer = this.deps.cache.stamp(200, this.deps.serialize(body))
    }
    // Without a generation (Redis was failing when the fill started) an L2 write could not be
    // checked against invalidations, so it is skipped.
    const writtenL2 = generation !== undefined && await this.deps.cache.setL2(userId, limit, answer, generation, lease)
    if (writtenL2 || generation === undefined) this.writeL1(userId, limit, answer, startedAt)
    return { ...answer, tier: 'MISS' }
  }

  private writeL1 (userId: number, limit: number, answer: CachedAnswer, startedAt: number): void {
    const dropped = this.invalidatedAt.get(userId)
    if ((dropped !== undefined && dropped >= startedAt) || startedAt <= this.l1WriteFloor) return
    this.deps.cache.setL1(userId, limit, answer)
  }

  private pruneInvalidations (t: number): void {
    // Map iteration is insertion order and dropLocal re-inserts, so the oldest come first.
    for (const [id, at] of this.invalidatedAt) {
      if (t - at < INVALIDATION_MEMORY_MS) break
      this.invalidatedAt.delete(id)
    }
    if (this.invalidatedAt.size > MAX_REMEMBERED_INVALIDATIONS) {
      // An invalidation storm: forget the per-user times but keep the guarantee by refusing every
      // L1 write from fills that started before now.
      this.invalidatedAt.clear()
      this.l1WriteFloor = t
    }
  }
}
