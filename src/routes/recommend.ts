import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.ts'
import { ErrorSchema, LimitQuery, RecommendationSchema, UserIdParams } from '../schemas/recommendation.ts'
import { requireUserId } from '../lib/user-id.ts'
import { ServerTiming } from '../lib/server-timing.ts'

const recommendRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const defaultLimit = opts.config.DEFAULT_LIMIT
  app.get('/recommend/:id', {
    schema: {
      params: UserIdParams,
      querystring: LimitQuery,
      response: { 200: RecommendationSchema, 400: ErrorSchema, 404: ErrorSchema, 503: ErrorSchema }
    }
  }, async (req, reply) => {
    const userId = requireUserId(req.params.id)
    const timing = new ServerTiming()
    const start = performance.now()
    const answer = await app.recommender.get(userId, req.query.limit ?? defaultLimit, timing)
    timing.add('total', performance.now() - start)
    app.recMetrics.cacheAnswers.inc({ tier: answer.tier })
    // The body is the cached, already-serialized JSON: sent as is, no serialization on a hit.
    return reply
      .code(answer.status)
      .header('x-cache', answer.tier)
      .header('server-timing', timing.toString())
      .type('application/json; charset=utf-8')
      .send(answer.body as never)
  })
}

export default recommendRoutes
