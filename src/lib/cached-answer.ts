import type { AnswerBody } from '../../workers/answer-body.ts'

/** A cached answer for one user, every limit at once: status and already-serialized body (a hit
 *  does no JSON work), with the absolute times until which it is fresh and until which it may
 *  still be served stale. */
export interface CachedAnswer {
  status: 200 | 404
  body: AnswerBody
  freshUntil: number
  staleUntil: number
}

export interface AnswerLifetimeOptions {
  l2TtlS: number
  graceS: number
  notFoundTtlMs: number
  /** ± this fraction of every TTL, so keys filled together do not expire together */
  ttlJitter: number
  now?: () => number
  random?: () => number
}

/** How long a new answer is fresh and then servable stale, the same for both tiers. */
export class AnswerLifetimes {
  private readonly now: () => number
  private readonly random: () => number

  constructor (private readonly opts: AnswerLifetimeOptions) {
    this.now = opts.now ?? Date.now
    this.random = opts.random ?? Math.random
  }

  /** Builds the cache entry for a new answer: fresh TTL with jitter, then the grace period. A 404
   *  has no grace: a user who appears is found once the short TTL ends. */
  stamp (status: 200 | 404, body: AnswerBody): CachedAnswer {
    const now = this.now()
    if (status === 404) {
      const until = now + this.jitter(this.opts.notFoundTtlMs)
      return { status, body, freshUntil: until, staleUntil: until }
    }
    const freshUntil = now + this.jitter(this.opts.l2TtlS * 1000)
    return { status, body, freshUntil, staleUntil: freshUntil + this.opts.graceS * 1000 }
  }

  jitter (ms: number): number {
    const j = this.opts.ttlJitter
    return Math.max(1, Math.round(ms * (1 - j + 2 * j * this.random())))
  }
}
