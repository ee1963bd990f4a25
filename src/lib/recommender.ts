import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { ScoreTask, ScoringWeights } from '../../workers/types.ts'
import type { AnswerLifetimes, CachedAnswer } from './cached-answer.ts'
import type { FillTicket, L1Cache } from './l1-cache.ts'
import type { L2Cache } from './l2-cache.ts'
import type { UserHistory, UserStore } from './user-store.ts'
import type { BroadcastResult } from './invalidation-bus.ts'
import type { BoundedGate } from './bounded-gate.ts'
import type { StatsSnapshot } from '../plugins/stats.ts'
import { errorAnswerBody, type AnswerBody } from '../../workers/answer-body.ts'
import { packHistory } from '../../workers/history-wire.ts'
import { errorBody, RecError, unavailable } from './errors.ts'
import { ServerTiming } from './server-timing.ts'
import { SingleFlight } from './single-flight.ts'
import { MAX_LIMIT } from './limits.ts'

export type Tier = 'HIT-L1' | 'HIT-L2' | 'MISS' | 'STALE' | 'FALLBACK'
export interface Answer extends CachedAnswer { tier: Tier }

export interface RecommenderDeps {
  l1: L1Cache
  l2: L2Cache
  lifetimes: AnswerLifetimes
  store: UserStore
  /** scores in a worker thread and returns the serialized answer */
  score: (task: ScoreTask) => Promise<AnswerBody>
  stats: () => StatsSnapshot | undefined
  /** the non-personalised answer for a user, or undefined when there are no statistics yet */
  fallback: (userId: number) => CachedAnswer | undefined
  /** bounds the misses that load from MySQL and score at once, and those waiting to */
  missGate: BoundedGate
  /** how long a request waits for a personalised answer before it is given the fallback */
  missTimeoutMs: number
  /** sends an invalidation to every replica (this one included) and waits for their acks */
  broadcast: (userIds: number[]) => Promise<BroadcastResult>
  weights: ScoringWeights
  modelVersion: string
  /** how long to wait for another replica's fill before computing here */
  leaseWaitMs: number
  now?: () => number
  onScore?: () => void
  onBackgroundError?: (err: unknown) => void
  /** every answer, single or one id of a batch: its tier ('ERROR' when there was none), its HTTP
   *  status and how long it took */
  onAnswer?: (tier: Tier | 'ERROR', status: number, ms: number) => void
}

export interface InvalidationResult { invalidated: number[], replicas: BroadcastResult }

const LEASE_POLL_MS = 20

const timedOut = unavailable('personalised answer')

/** Answers "what should user N see" by orchestrating the tiers: L1 (l1-cache.ts decides what it
 *  may serve), then Redis (l2-cache.ts keeps it generation-checked), then MySQL + scoring.
 *  Concurrent misses share one fill, cold keys are computed by one replica (a Redis lease), past
 *  fresh an answer is served STALE while one refresh runs, and when MySQL fails an answer within
 *  its grace period is served STALE instead of an error. A user is scored once for every limit.
 *  A request never waits longer than `missTimeoutMs` for a miss: past it, or when the miss gate
 *  or a dependency refuses, it gets the fallback answer while the fill goes on by itself. */
export class Recommender {
  private readonly flight = new SingleFlight<number, Answer>()
  private readonly refreshes = new SingleFlight<number, Answer>()
  private readonly now: () => number
  /** Lease tokens need only be unique while a lease lives: one random prefix per process and a
   *  counter, not a UUID per fill (every Redis lookup sends one). */
  private readonly leasePrefix = `${randomUUID()}:`
  private leases = 0

  constructor (private readonly deps: RecommenderDeps) {
    this.now = deps.now ?? Date.now
  }

  /** The one tier-decision path (`cached`, then `load`): every id of a batch goes through it, and
   *  GET /recommend/:id calls the two parts itself so that a hit needs no promise. */
  async get (userId: number, timing?: ServerTiming): Promise<Answer> {
    return this.cached(userId) ?? await this.load(userId, timing)
  }

  /** A fresh answer from this replica's LRU, counted like any answer, or undefined. Synchronous, so
   *  that GET /recommend/:id serves a hit without a promise (see routes/recommend.ts). */
  cached (userId: number): Answer | undefined {
    const start = performance.now()
    const hit = this.deps.l1.get(userId)
    if (hit === undefined) return undefined
    this.deps.onAnswer?.('HIT-L1', hit.status, performance.now() - start)
    return hit
  }

  /** Everything past the LRU: the fill (shared by concurrent requests), within the miss timeout,
   *  else the stale or fallback answer. */
  async load (userId: number, timing?: ServerTiming): Promise<Answer> {
    const start = performance.now()
    const { promise, shared } = this.flight.do(userId, () => this.fill(userId, timing))
    let answer: Answer
    try {
      answer = await this.withinMissTimeout(promise).catch((err: unknown) => this.degrade(userId, err))
    } catch (err) {
      this.deps.onAnswer?.('ERROR', err instanceof RecError ? err.statusCode : 500, performance.now() - start)
      throw err
    } finally {
      if (shared) timing?.add('wait', performance.now() - start)
    }
    this.deps.onAnswer?.(answer.tier, answer.status, performance.now() - start)
    return answer
  }

  /** Batch read: every id goes through `get` (L1, single flight, lease, fallback); Redis commands
   *  of one batch share a pipeline and its MySQL loads one query. */
  async getMany (userIds: number[]): Promise<Map<number, Answer | Error>> {
    const answers = await Promise.all(userIds.map((id) => this.get(id).catch((err: Error) => err)))
    return new Map(userIds.map((id, i) => [id, answers[i] as Answer | Error]))
  }

  /** Moves the users to a new generation in Redis, then drops them here, then on every other
   *  replica, and reports how many replicas acknowledged (this one included). Here only once Redis
   *  has moved on: a read in between would otherwise fetch the old answer from Redis into the LRU,
   *  after the drop, where no later drop would find it (the sender does not drop again on its own
   *  broadcast). */
  async invalidate (userIds: number[]): Promise<InvalidationResult> {
    try {
      await this.deps.l2.invalidate(userIds)
    } finally {
      // Dropped here even when Redis failed: the 503 says nothing was promised, but this replica
      // need not keep serving what the caller wanted gone.
      this.dropLocal(userIds)
    }
    const replicas = await this.deps.broadcast(userIds)
    return { invalidated: userIds, replicas }
  }

  /** Called for every invalidation this replica hears of. Synchronous, so that once it returns no
   *  later read can see the old entries. */
  dropLocal (userIds: readonly number[]): void {
    // Requests arriving from now on must not join a fill that started before the invalidation.
    for (const id of userIds) this.flight.forget(id)
    this.deps.l1.drop(userIds)
  }

  /** Empties this replica's LRU (operators and tests: the next reads go to Redis). */
  clearL1 (): void { this.deps.l1.clear() }

  private withinMissTimeout (p: Promise<Answer>): Promise<Answer> {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(reject, this.deps.missTimeoutMs, timedOut) })
    return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
  }

  /** What a request gets when its personalised answer failed for lack of capacity or a
   *  dependency: the stale answer if one is left, else the fallback. Anything else stays an error. */
  private degrade (userId: number, err: unknown): Answer {
    if (!(err instanceof RecError) || err.statusCode !== 503) throw err
    const stale = this.deps.l1.getStale(userId)
    if (stale) return { ...stale, tier: 'STALE' }
    const fallback = this.deps.fallback(userId)
    if (fallback) return { ...fallback, tier: 'FALLBACK' }
    throw err
  }

  private async fill (userId: number, timing?: ServerTiming): Promise<Answer> {
    // Before anything is read: what the fill writes back is judged against this moment and epoch.
    const ticket = this.deps.l1.beginFill()
    const token = `${this.leasePrefix}${++this.leases}`
    const stale = this.deps.l1.getStale(userId)
    const found = await measure(timing, 'l2', () => this.deps.l2.lookup(userId, token))
    const now = this.now()
    if (found.value && now < found.value.freshUntil) {
      this.deps.l1.write(userId, found.value, ticket)
      return { ...found.value, tier: 'HIT-L2' }
    }
    if (found.value) {
      // Past fresh, within grace: answer now, refresh once in the background (here if we hold the
      // lease, otherwise another replica is already doing it).
      if (found.lease && found.generation !== undefined) this.refreshInBackground(userId, found.generation, found.lease, ticket)
      return { ...found.value, tier: 'STALE' }
    }
    if (!found.failed && !found.lease) {
      const landed = await measure(timing, 'lease', () => this.waitForOtherReplica(userId))
      if (landed) {
        this.deps.l1.write(userId, landed, ticket)
        return { ...landed, tier: 'HIT-L2' }
      }
    }
    try {
      return await this.deps.missGate.run(async () => {
        const history = await measure(timing, 'db', () => this.deps.store.loadUser(userId))
        return await this.compute(userId, history, found.generation, found.lease ?? '', ticket, timing)
      })
    } catch (err) {
      if (found.lease) this.deps.l2.releaseLease(userId, found.lease)
      if (stale) return { ...stale, tier: 'STALE' }
      throw err
    }
  }

  private async waitForOtherReplica (userId: number): Promise<CachedAnswer | undefined> {
    const deadline = performance.now() + this.deps.leaseWaitMs
    while (performance.now() < deadline) {
      await sleep(LEASE_POLL_MS)
      const v = await this.deps.l2.peek(userId)
      if (v && this.now() < v.freshUntil) return v
    }
    return undefined
  }

  private refreshInBackground (userId: number, generation: string, lease: string, ticket: FillTicket): void {
    this.refreshes.do(userId, () => this.deps.missGate.run(async () => {
      const history = await this.deps.store.loadUser(userId)
      return await this.compute(userId, history, generation, lease, ticket)
    })).promise.catch((err: unknown) => this.deps.onBackgroundError?.(err))
  }

  /** Scores (or records the 404) and writes the answer to both tiers, each write conditional on
   *  no invalidation having happened since the fill started. */
  private async compute (userId: number, history: UserHistory | undefined, generation: string | undefined,
    lease: string, ticket: FillTicket, timing?: ServerTiming): Promise<Answer> {
    let answer: CachedAnswer
    if (!history) {
      answer = this.deps.lifetimes.stamp(404, errorAnswerBody(JSON.stringify(errorBody(404, 'REC_ERR_USER_NOT_FOUND', `user ${userId} not found`))))
    } else {
      const stats = this.deps.stats()
      if (!stats) throw unavailable('global statistics')
      const task: ScoreTask = {
        userId,
        history: packHistory(history.searches, history.purchases),
        limit: MAX_LIMIT,
        now: this.now(),
        weights: this.deps.weights,
        modelVersion: this.deps.modelVersion,
        statsVersion: stats.version,
        statsBuffer: stats.buffer
      }
      this.deps.onScore?.()
      const body = await measure(timing, 'score', () => this.deps.score(task))
      answer = this.deps.lifetimes.stamp(200, body)
    }
    // The LRU write is guarded by this replica's own record of invalidations (see l1-cache.ts), so
    // it needs no Redis round trip and the answer goes out without waiting for the Redis write.
    // That write is checked against the user's generation; without one (Redis was failing when
    // the fill started) it is skipped.
    this.deps.l1.write(userId, answer, ticket)
    if (generation !== undefined) {
      this.deps.l2.write(userId, answer, generation, lease).catch((err: unknown) => this.deps.onBackgroundError?.(err))
    }
    return { ...answer, tier: 'MISS' }
  }
}

function measure<T> (timing: ServerTiming | undefined, name: string, fn: () => Promise<T>): Promise<T> {
  return timing ? timing.measure(name, fn) : fn()
}
