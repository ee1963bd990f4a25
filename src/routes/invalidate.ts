import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../config.ts'
import { ErrorSchema, UserIdParams } from '../schemas/common.ts'
import { INVALIDATE_MAX_IDS, InvalidateBody, InvalidateResponse } from '../schemas/recommendation.ts'
import { requireUserId, requireUserIds } from '../lib/user-id.ts'
import { adminAuthHook } from '../lib/admin-auth.ts'
import { adminSecurity } from '../plugins/docs.ts'

/** Admin routes (see lib/admin-auth.ts). The answer comes once every listening replica has dropped the entries (or the ack timeout
 *  passed), and says how many acknowledged. */
const invalidateRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const c = opts.config
  app.addHook('onRequest', adminAuthHook(c.ADMIN_TOKEN))
  const response = { 200: InvalidateResponse, 400: ErrorSchema, 401: ErrorSchema, 429: ErrorSchema, 500: ErrorSchema, 503: ErrorSchema }
  const docs = { tags: ['admin'], security: adminSecurity }

  app.post('/invalidate-cache/:id', { schema: { summary: "Drop one user's cached answers on every replica", ...docs, params: UserIdParams, response } }, async (req) => {
    const id = requireUserId(req.params.id)
    return await app.recommender.invalidate([id])
  })
  app.post('/invalidate-cache', {
    schema: {
      summary: "Drop several users' cached answers on every replica",
      ...docs,
      body: InvalidateBody,
      response: { ...response, 413: ErrorSchema, 415: ErrorSchema }
    }
  }, async (req) => {
    const ids = requireUserIds(req.body.user_ids, INVALIDATE_MAX_IDS)
    return await app.recommender.invalidate(ids)
  })
}

export default invalidateRoutes
