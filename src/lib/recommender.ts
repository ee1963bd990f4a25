import type { RecommendationBody, ScoreTask, ScoringWeights } from '../../workers/types.ts'
import type { CachedAnswer, RecommendationCache } from './recommendation-cache.ts'
import type { UserHistory, UserStore } from './user-store.ts'
import { errorBody } from './errors.ts'
import { ServerTiming } from './server-timing.ts'
import { SingleFlight } from './single-flight.ts'

export type Tier = 'HIT-L1' | 'HIT-L2' | 'MISS'
export interface Answer extends CachedAnswer { tier: Tier }

export interface RecommenderDeps {
  cache: RecommendationCache
  store: UserStore
  score: (task: ScoreTask) => Promise<RecommendationBody>
  stats: () => { version: number, json: string }
  serialize: (body: RecommendationBody) => string
  weights: ScoringWeights
  modelVersion: string
  now?: () => number
  onScore?: () => void
}

/** Answers "what should user N see": L1, then L2, then MySQL + scoring, writing back to both tiers.
 *  Concurrent misses for the same user and limit share one load and one scoring. */
export class Recommender {
  private readonly flight = new SingleFlight<string, Answer>()
  private readonly now: () => number

  constructor (private readonly deps: RecommenderDeps) {
    this.now = deps.now ?? Date.now
  }

  async get (userId: number, limit: number, timing = new ServerTiming()): Promise<Answer> {
    const hit = this.deps.cache.getL1(userId, limit)
    if (hit) return { ...hit, tier: 'HIT-L1' }
    const { promise, shared } = this.flight.do(`${userId}:${limit}`, () => this.fill(userId, limit, timing))
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

    const l2 = await timing.measure('l2', () => this.deps.cache.getManyL2(l1Misses, limit))
    const cold: number[] = []
    l1Misses.forEach((id, i) => {
      const answer = l2[i]
      if (answer) {
        this.deps.cache.setL1(id, limit, answer)
        out.set(id, { ...answer, tier: 'HIT-L2' })
      } else {
        cold.push(id)
      }
    })
    if (cold.length === 0) return out

    let histories: Map<number, UserHistory>
    try {
      histories = await timing.measure('db', () => this.deps.store.loadUsers(cold, this.now()))
    } catch (err) {
      for (const id of cold) out.set(id, err as Error)
      return out
    }
    const start = performance.now()
    await Promise.all(cold.map(async (id) => {
      try {
        out.set(id, await this.answerFor(id, limit, histories.get(id)))
      } catch (err) {
        out.set(id, err as Error)
      }
    }))
    timing.add('score', performance.now() - start)
    return out
  }

  async invalidate (userIds: number[]): Promise<void> {
    await this.deps.cache.invalidate(userIds)
  }

  private async fill (userId: number, limit: number, timing: ServerTiming): Promise<Answer> {
    const l2 = await timing.measure('l2', () => this.deps.cache.getL2(userId, limit))
    if (l2) {
      this.deps.cache.setL1(userId, limit, l2)
      return { ...l2, tier: 'HIT-L2' }
    }
    const history = await timing.measure('db', () => this.deps.store.loadUser(userId, this.now()))
    return await this.answerFor(userId, limit, history, timing)
  }

  /** Scores (or records the 404) and writes the answer to both tiers. */
  private async answerFor (userId: number, limit: number, history: UserHistory | undefined, timing?: ServerTiming): Promise<Answer> {
    let answer: CachedAnswer
    if (!history) {
      answer = { status: 404, body: JSON.stringify(errorBody(404, 'REC_ERR_USER_NOT_FOUND', `user ${userId} not found`)) }
    } else {
      const stats = this.deps.stats()
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
      answer = { status: 200, body: this.deps.serialize(body) }
    }
    this.deps.cache.setL1(userId, limit, answer)
    await this.deps.cache.setL2(userId, limit, answer)
    return { ...answer, tier: 'MISS' }
  }
}
