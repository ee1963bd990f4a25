import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.ts'
import { ErrorSchema } from '../schemas/common.ts'
import { EventsBody, EventsResponse, InvalidEventsErrorSchema } from '../schemas/events.ts'
import { adminAuthHook } from '../lib/admin-auth.ts'
import { adminSecurity } from '../plugins/docs.ts'
import { RecError } from '../lib/errors.ts'
import { EventWriter } from '../lib/event-writer.ts'

/** POST /events: admin-only batch of searches and purchases, stored in one transaction; the users'
 *  cached answers are dropped afterwards, so their next read is recomputed with the new events. */
const eventRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const c = opts.config
  const writer = new EventWriter(app.mysql, { queryTimeoutMs: c.MYSQL_QUERY_TIMEOUT_MS })
  app.addHook('onRequest', adminAuthHook(c.ADMIN_TOKEN))

  app.post('/events', {
    schema: {
      summary: 'Store searches and purchases, then drop the users\' cached answers',
      description: 'One transaction for the whole batch: a bad entry refuses it, every bad entry named in `entries`.',
      tags: ['admin'],
      security: adminSecurity,
      body: EventsBody,
      response: {
        201: EventsResponse,
        400: InvalidEventsErrorSchema,
        401: ErrorSchema,
        409: ErrorSchema,
        413: ErrorSchema,
        415: ErrorSchema,
        429: ErrorSchema,
        500: ErrorSchema,
        503: ErrorSchema
      }
    }
  }, async (req, reply) => {
    // A bad batch throws InvalidEventsError: the error handler answers it, entries included.
    const stored = await writer.write(req.body)

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
