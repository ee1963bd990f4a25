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

const Ready = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('shutting_down')]) })

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

  // Readiness is about this process only: it answers once the app is up (it only boots with both
  // dependencies reachable) and until it starts shutting down. A dependency outage must not take
  // every replica out of nginx or Kubernetes at once: the breakers, the LRU, stale answers and the
  // fallback are what serve users then, and they can only do so from replicas that still get
  // traffic. Load shedding, when it comes, belongs here too.
  app.get('/health/ready', { schema: { response: { 200: Ready, 503: Ready } } }, async (_req, reply) => {
    const ready = !app.shuttingDown
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' as const : 'shutting_down' as const })
  })

  // Dependency state, for people and monitoring: 503 whenever a dependency does not answer.
  app.get('/health', { schema: { response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    const h = await check()
    return reply.code(h.status === 'ok' ? 200 : 503).send(h)
  })
}

export default healthRoutes
