import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.ts'
import { ErrorSchema, LimitQuery, UserIdParams } from '../schemas/common.ts'
import { RecommendationSchema } from '../schemas/recommendation.ts'
import { requireLimit, requireUserId } from '../lib/user-id.ts'
import { ServerTiming } from '../lib/server-timing.ts'
import type { Answer } from '../lib/recommender.ts'
import { encodedBody } from '../../workers/answer-body.ts'
import { publicSecurity } from '../plugins/docs.ts'

const recommendRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const defaultLimit = opts.config.DEFAULT_LIMIT
  const graceS = opts.config.CACHE_GRACE_S
  app.get('/recommend/:id', {
    schema: {
      summary: 'Recommendations for one user',
      description: 'Served from the in-process LRU, then Redis, then scored from MySQL (header x-cache: the tier). ' +
        'An unknown user is a 404; `limit` cuts the item list.',
      tags: ['recommendations'],
      security: publicSecurity,
      params: UserIdParams,
      querystring: LimitQuery,
      response: { 200: RecommendationSchema, 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 429: ErrorSchema, 500: ErrorSchema, 503: ErrorSchema }
    }
  }, (req, reply) => {
    const userId = requireUserId(req.params.id)
    const limit = requireLimit(req.query.limit, defaultLimit)
    const start = performance.now()
    // A hit is answered synchronously: no promise, no await, and no Server-Timing collector. It is
    // most of the traffic, and this is about a fifth of its main-thread CPU (bench/README.md).
    const hit = app.recommender.cached(userId)
    if (hit !== undefined) {
      send(reply, hit, limit, ServerTiming.only('total', performance.now() - start))
      return
    }
    const timing = new ServerTiming()
    return app.recommender.load(userId, timing).then((answer) => {
      timing.add('total', performance.now() - start)
      send(reply, answer, limit, timing.toString())
    })
  })

  function send (reply: FastifyReply, answer: Answer, limit: number, serverTiming: string): void {
    // The body is the cached, already-encoded JSON: sent as is, no serialization on a hit.
    reply
      .code(answer.status)
      .header('x-cache', answer.tier)
      .header('server-timing', serverTiming)
      .header('cache-control', cacheControl(answer, graceS))
      .type('application/json; charset=utf-8')
      .send(encodedBody(answer.body, limit))
  }
}

/** RFC 5861: how long the answer stays fresh, and how long a cache in front may serve it stale
 *  while revalidating or when we fail. */
export function cacheControl (answer: Answer, graceS: number, now = Date.now()): string {
  const maxAge = answer.tier === 'STALE' ? 0 : Math.max(0, Math.floor((answer.freshUntil - now) / 1000))
  // A fallback is only good until the service can personalise again: short, and never served stale.
  if (answer.tier === 'FALLBACK') return `max-age=${Math.max(0, Math.round((answer.freshUntil - now) / 1000))}`
  if (answer.status !== 200) return `max-age=${maxAge}`
  const grace = Math.max(0, Math.floor((answer.staleUntil - Math.max(now, answer.freshUntil)) / 1000))
  return `max-age=${maxAge}, stale-while-revalidate=${Math.min(grace, graceS)}, stale-if-error=${Math.min(grace, graceS)}`
}

export default recommendRoutes
