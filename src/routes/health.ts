import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.ts'
import { withTimeout } from '../lib/timeout.ts'

const Part = Type.Union([Type.Literal('ok'), Type.Literal('down')])
const Health = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('shutting_down')]),
  database: Part,
  redis: Part,
  pool: Type.Object({ size: Type.Integer(), in_use: Type.Integer(), queued: Type.Integer() }),
  invalidation_subscription: Part,
  breakers: Type.Object({ redis: Type.String(), database: Type.String() }),
  failing: Type.Optional(Type.Array(Type.String()))
})

const healthRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const timeout = Math.max(opts.config.MYSQL_QUERY_TIMEOUT_MS, opts.config.REDIS_COMMAND_TIMEOUT_MS)

  const check = async () => {
    const [db, redis] = await Promise.all([
      withTimeout(app.userStore.ping(), timeout, 'database').then(() => 'ok' as const, () => 'down' as const),
      withTimeout(app.redis.ping(), timeout, 'redis').then(() => 'ok' as const, () => 'down' as const)
    ])
    const failing = [...(db === 'down' ? ['database'] : []), ...(redis === 'down' ? ['redis'] : [])]
    const status = app.shuttingDown ? 'shutting_down' as const : failing.length ? 'degraded' as const : 'ok' as const
    return {
      status,
      database: db,
      redis,
      pool: app.scorer.stats(),
      invalidation_subscription: app.invalidationBus.up ? 'ok' as const : 'down' as const,
      breakers: { redis: app.breakers.redis.current, database: app.breakers.mysql.current },
      ...(failing.length ? { failing } : {})
    }
  }

  app.get('/health/live', { schema: { response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }))

  for (const path of ['/health/ready', '/health']) {
    app.get(path, { schema: { response: { 200: Health, 503: Health } } }, async (_req, reply) => {
      const h = await check()
      return reply.code(h.status === 'ok' ? 200 : 503).send(h)
    })
  }
}

export default healthRoutes
