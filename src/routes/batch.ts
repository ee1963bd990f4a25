import type { FastifyReply } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.ts'
import { publicSecurity } from '../plugins/docs.ts'
import { ErrorSchema } from '../schemas/common.ts'
import { batchBody, batchQuery, BatchResponse } from '../schemas/recommendation.ts'
import { requireLimit, requireUserIds } from '../lib/user-id.ts'
import { RecError } from '../lib/errors.ts'
import { ServerTiming } from '../lib/server-timing.ts'
import type { Answer } from '../lib/recommender.ts'
import { bodyFor } from '../../workers/answer-body.ts'

const batchRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const c = opts.config
  const response = { 200: BatchResponse, 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema, 500: ErrorSchema, 503: ErrorSchema }
  const docs = {
    tags: ['recommendations'],
    security: publicSecurity,
    description: `Up to ${c.BATCH_MAX_IDS} users; a user that is unknown or could not be answered is listed in \`errors\`, not failed.`
  }
  const BatchBody = batchBody(c.BATCH_MAX_IDS)
  const BatchQuery = batchQuery(c.BATCH_MAX_IDS)
  // Refused before parsing: room for BATCH_MAX_IDS quoted 10-digit ids, pretty-printed, and a
  // limit. Parsing a large nested body would block the event loop for every other request.
  const bodyLimit = 1024 + 32 * c.BATCH_MAX_IDS

  // The schemas already hold ids and limits to the rules of lib/user-id.ts; these parse them.
  const answerBatch = async (rawIds: unknown[], rawLimit: unknown, reply: FastifyReply) => {
    const ids = requireUserIds(rawIds, c.BATCH_MAX_IDS)
    const limit = requireLimit(rawLimit, c.DEFAULT_LIMIT)
    const timing = new ServerTiming()
    const start = performance.now()
    const answers = await app.recommender.getMany(ids)
    timing.add('total', performance.now() - start)
    // Results are cached as serialized JSON; the batch body is assembled from those strings so a
    // warm batch does no parse/stringify round trip per user.
    const results: string[] = []
    const errors: Array<{ user_id: number, status: number, error: string }> = []
    for (const id of ids) {
      const a = answers.get(id) as Answer | Error
      if (a instanceof Error) {
        const status = a instanceof RecError ? a.statusCode : 500
        if (status >= 500 && !(a instanceof RecError)) reply.log.error({ err: a, userId: id }, 'batch entry failed')
        errors.push({ user_id: id, status, error: a instanceof RecError ? a.message : 'internal error' })
      } else if (a.status === 404) {
        errors.push({ user_id: id, status: 404, error: `user ${id} not found` })
      } else {
        results.push(bodyFor(a.body, limit))
      }
    }
    const body = `{"successful":${results.length},"failed":${errors.length},"results":[${results.join(',')}],"errors":${JSON.stringify(errors)}}`
    return reply.header('server-timing', timing.toString()).type('application/json; charset=utf-8').send(body)
  }

  app.get('/batch-recommend', { schema: { summary: 'Recommendations for several users (ids in the query)', ...docs, querystring: BatchQuery, response } }, async (req, reply) => {
    return await answerBatch(req.query.user_ids.split(','), req.query.limit, reply)
  })
  app.post('/batch-recommend', {
    bodyLimit,
    schema: {
      summary: 'Recommendations for several users (ids in a JSON body)',
      ...docs,
      body: BatchBody,
      response: { ...response, 413: ErrorSchema, 415: ErrorSchema }
    }
  }, async (req, reply) => {
    return await answerBatch(req.body.user_ids, req.body.limit, reply)
  })
}

export default batchRoutes
