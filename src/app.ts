import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './config.ts'
import { RecError, errorBody, recErrorBody } from './lib/errors.ts'
import { RequestLogging } from './lib/request-logging.ts'
import { VALIDATION_CODE } from './lib/user-id.ts'
import { INPUT_KIND, inputErrorMessage } from './schemas/common.ts'
import metricsPlugin from './plugins/metrics.ts'
import pressurePlugin from './plugins/pressure.ts'
import docsPlugin from './plugins/docs.ts'
import mysqlPlugin from './plugins/mysql.ts'
import redisPlugin from './plugins/redis.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import scorerPlugin from './plugins/scorer.ts'
import statsPlugin from './plugins/stats.ts'
import recommenderPlugin from './plugins/recommender.ts'
import healthRoutes from './routes/health.ts'
import recommendRoutes from './routes/recommend.ts'
import batchRoutes from './routes/batch.ts'
import invalidateRoutes from './routes/invalidate.ts'
import eventRoutes from './routes/events.ts'

declare module 'fastify' {
  interface FastifyInstance { shuttingDown: boolean }
}

export function trustProxyOption (value: string): FastifyServerOptions['trustProxy'] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean)
  return list.length ? list : false
}

/** Builds the whole service without listening, so tests use inject or port 0 on the same app. */
export async function buildApp (config: Config, fastifyOpts: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.LOG_LEVEL },
    logController: new RequestLogging(config.LOG_SLOW_REQUEST_MS),
    trustProxy: trustProxyOption(config.TRUST_PROXY),
    requestIdHeader: 'x-request-id',
    // A request that reaches a closing server on a kept-alive connection (a proxy's, mid-shutdown)
    // is served, with Connection: close, rather than answered 503: nginx never retries a 503, so
    // that request would fail the client. New connections are refused by then, which nginx retries.
    return503OnClosing: false,
    genReqId: () => crypto.randomUUID(),
    // No type coercion: "0x10", "1e3" or true would become users 16, 1000 and 1. Ids and limits are
    // strings or numbers checked by the shared schemas (schemas/common.ts); `verbose` lets the error
    // handler name the bad value with the one message of lib/user-id.ts.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, verbose: true, keywords: [INPUT_KIND] } },
    ...fastifyOpts
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.decorate('shuttingDown', false)
  // A callback hook, not an async one: no promise and no extra microtask on every request.
  app.addHook('onRequest', (_req, reply, done) => {
    reply.header('x-served-by', config.REPLICA_ID)
    // Draining (SIGTERM, before close): still serving, but wind the proxy's kept-alive connections
    // down, so few requests are in flight on them when the port closes.
    if (app.shuttingDown) reply.header('connection', 'close')
    done()
  })

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof RecError) {
      if (err.retryAfterS) reply.header('retry-after', String(err.retryAfterS))
      if (err.statusCode >= 500) req.log.warn({ err }, 'request failed: dependency unavailable or overloaded')
      // The status, code, message and any details of the error, so that no route translates one itself.
      return reply.code(err.statusCode).send(recErrorBody(err, err.statusCode >= 500 ? req.id : undefined))
    }
    const e = err as { validation?: unknown, validationContext?: string, statusCode?: number, code?: string, message: string }
    if (e.validation) {
      const part = { params: req.params, querystring: req.query, body: req.body }[String(e.validationContext)]
      const message = Array.isArray(e.validation) ? inputErrorMessage(e.validation, part) : undefined
      return reply.code(400).send(errorBody(400, VALIDATION_CODE, message ?? e.message))
    }
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) {
      return reply.code(e.statusCode).send(errorBody(e.statusCode, e.code ?? 'REC_ERR_BAD_REQUEST', e.message))
    }
    req.log.error({ err }, 'unhandled error')
    return reply.code(500).send(errorBody(500, 'REC_ERR_INTERNAL', 'internal error', req.id))
  })
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody(404, 'REC_ERR_NOT_FOUND', `route ${req.method} ${req.url.split('?')[0]} not found`))
  })

  await app.register(metricsPlugin)
  await app.register(pressurePlugin, { config })
  await app.register(docsPlugin)
  await app.register(mysqlPlugin, { config })
  await app.register(redisPlugin, { config })
  await app.register(rateLimitPlugin, { config })
  await app.register(scorerPlugin, { config })
  await app.register(statsPlugin, { config })
  await app.register(recommenderPlugin, { config })

  await app.register(healthRoutes, { config })
  await app.register(recommendRoutes, { config })
  await app.register(batchRoutes, { config })
  await app.register(invalidateRoutes, { config })
  await app.register(eventRoutes, { config })
  return app
}
