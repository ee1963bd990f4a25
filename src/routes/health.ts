import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../config.ts'
import { ErrorSchema } from '../schemas/common.ts'
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

const Ready = Type.Object({ status: Type.Union([Type.Literal('ok'), Type.Literal('starting'), Type.Literal('shutting_down'), Type.Literal('overloaded')]) })

const healthRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, opts) => {
  const tags = ['operations']
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

  app.get('/health/live', {
    schema: { summary: 'Liveness: the process answers', tags, response: { 200: Type.Object({ status: Type.Literal('ok') }), 500: ErrorSchema } }
  }, async () => ({ status: 'ok' as const }))

  // Readiness is about this process only: booted (every plugin loaded, which needs both
  // dependencies reachable at start-up) and not shutting down (SIGTERM sets app.shuttingDown, see
  // server.ts). A dependency outage must not fail it: every replica shares MySQL and Redis, so it
  // would take them all out of nginx and Kubernetes at once, and the breakers, the LRU, STALE
  // answers and the FALLBACK, which serve users through the outage, would get no traffic.
  // Dependency state is in /health and in the metrics.
  let booted = false
  app.addHook('onReady', async () => { booted = true })
  const notReady = (): 'starting' | 'shutting_down' | 'overloaded' | undefined => {
    if (!booted) return 'starting'
    if (app.shuttingDown) return 'shutting_down'
    // Shedding new work (plugins/pressure.ts): balancers should send it elsewhere until it recovers.
    if (app.shedding() !== undefined) return 'overloaded'
    return undefined
  }
  app.get('/health/ready', {
    schema: { summary: 'Readiness: booted and not shutting down (503 otherwise)', tags, response: { 200: Ready, 503: Ready, 500: ErrorSchema } }
  }, async (_req, reply) => {
    const reason = notReady()
    return reply.code(reason ? 503 : 200).send({ status: reason ?? 'ok' as const })
  })

  // Dependency state, for people and monitoring (no probe or balancer uses it): 503 whenever a
  // dependency does not answer ("degraded", with `failing`) or the process shuts down, 200 only
  // when all is well, so an HTTP status check alerts on an outage without parsing the body.
  app.get('/health', {
    schema: { summary: 'Dependency state (503 when one is down or the process shuts down)', tags, response: { 200: Health, 503: Health, 500: ErrorSchema } }
  }, async (_req, reply) => {
    const h = await check()
    return reply.code(h.status === 'ok' ? 200 : 503).send(h)
  })
}

export default healthRoutes
