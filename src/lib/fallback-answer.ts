import { scoreUser } from '../../workers/scoring.ts'
import type { GlobalStats, ScoringWeights } from '../../workers/types.ts'
import { toAnswerBody, type AnswerBody } from '../../workers/answer-body.ts'
import { MAX_LIMIT } from './limits.ts'
import type { CachedAnswer } from './cached-answer.ts'

const USER_ID_PREFIX = '{"user_id":0'

/** The non-personalised answer for when a personalised one cannot be had in time (overload, MySQL
 *  down) and nothing is cached: the cold-start answer, i.e. the most popular categories and the
 *  most popular items in each, marked `degraded`. Computed on the main thread once per statistics
 *  version (it reads no history, so it is cheap), then only the user id changes per request. It is
 *  never written to a cache tier. */
export class FallbackAnswers {
  private version: number | undefined
  private rest: AnswerBody | undefined

  constructor (private readonly opts: { weights: ScoringWeights, modelVersion: string, maxAgeS: number, now?: () => number }) {}

  answer (userId: number, snapshot: { version: number, stats: GlobalStats } | undefined): CachedAnswer | undefined {
    if (!snapshot) return undefined
    const now = (this.opts.now ?? Date.now)()
    if (this.version !== snapshot.version || !this.rest) {
      const body = scoreUser({ userId: 0, searches: [], purchases: [], limit: MAX_LIMIT, now, weights: this.opts.weights, modelVersion: this.opts.modelVersion }, snapshot.stats)
      body.metadata.degraded = true
      const parts = toAnswerBody(body)
      this.rest = { ...parts, head: parts.head.slice(USER_ID_PREFIX.length) }
      this.version = snapshot.version
    }
    const until = now + this.opts.maxAgeS * 1000
    return { status: 200, body: { ...this.rest, head: `{"user_id":${userId}${this.rest.head}` }, freshUntil: until, staleUntil: until }
  }
}
