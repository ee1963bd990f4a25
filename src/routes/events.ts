import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.ts'
import { ErrorSchema } from '../schemas/recommendation.ts'
import { adminAuthHook } from '../lib/admin-auth.ts'
import { RecError, errorBody } from '../lib/errors.ts'
import { EventWriter, InvalidEventsError } from '../lib/event-writer.ts'

// Entries are checked one by one in lib/event-writer.ts (its TypeBox schemas, then the database),
// so that a bad batch is answered with every bad entry named rather than with Ajv's first error.
const EventsBody = Type.Array(Type.Unknown(), { description: 'search and purchase events, 1 to 1000' })

const EventsResponse = Type.Object({
  stored: Type.Object({ searches: Type.Integer(), purchases: Type.Integer() }),
  invalidated: Type.Array(Type.Integer()),
  replicas: Type.Object({ acked: Type.Integer(), expected: Type.Integer() })
})

const InvalidEventsErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  request_id: Type.Optional(Type.String()),
  entries: Type.Optional(Type.Array(Type.Object({ index: Type.Integer(), error: Type.String() })))
})

/** POST /events: admin-only batch of searches and purchases, stored in one transaction; the users'
 *  cached answers are dropped afterwards, so their next read is recomputed with the new events. */
const eventRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const c = opts.config
  const writer = new EventWriter(app.mysql, { queryTimeoutMs: c.MYSQL_QUERY_TIMEOUT_MS })
  app.addHook('onRequest', adminAuthHook(c.ADMIN_TOKEN))

  app.post('/events', {
    schema: {
      body: EventsBody,
      response: { 201: EventsResponse, 400: InvalidEventsErrorSchema, 401: ErrorSchema, 409: ErrorSchema, 503: ErrorSchema }
    }
  }, async (req, reply) => {
    let stored
    try {
      stored = await writer.write(req.body)
    } catch (err) {
      if (err instanceof InvalidEventsError) {
        return reply.code(400).send({ ...errorBody(400, err.code, err.message), entries: err.entries })
      }
      throw err
    }

    let result
    try {
      result = await app.recommender.invalidate(stored.userIds)
    } catch (err) {
      // The events are committed: a retry of the same batch would store them twice.
      req.log.warn({ err, userIds: stored.userIds }, 'events stored but cache invalidation failed')
      throw Object.assign(new RecError(503, 'REC_ERR_INVALIDATION_FAILED',
        `stored ${stored.searches} searches and ${stored.purchases} purchases, but invalidating the cached answers failed: ` +
        `do not resend these events; call POST /invalidate-cache with user_ids ${JSON.stringify(stored.userIds)}`, 2), { cause: err })
    }
    return reply.code(201).send({
      stored: { searches: stored.searches, purchases: stored.purchases },
      invalidated: stored.userIds,
      replicas: result.replicas
    })
  })
}

export default eventRoutes
