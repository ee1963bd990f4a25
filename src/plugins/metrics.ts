import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import client from 'prom-client'
import { monitorEventLoopDelay } from 'node:perf_hooks'

// fastify-metrics is CommonJS with an `exports.default`; under NodeNext the default import is the
// module object.
const fastifyMetrics = fastifyMetricsModule.default

export interface RecMetrics {
  registry: client.Registry
  cacheAnswers: client.Counter<'tier'>
  redisErrors: client.Counter<'op'>
  scorings: client.Counter
}

declare module 'fastify' {
  interface FastifyInstance { recMetrics: RecMetrics }
}

/** Prometheus metrics: fastify-metrics for process and per-route figures, plus this service's own
 *  (answers per cache tier, scorings, Redis errors, pool and queue sizes, event-loop delay) in a
 *  registry per app instance, so several instances in one process (tests) do not collide. */
export default fp(async function metricsPlugin (app) {
  await app.register(fastifyMetrics, {
    endpoint: null,
    clearRegisterOnInit: true,
    routeMetrics: { enabled: { histogram: true, summary: false }, registeredRoutesOnly: true, groupStatusCodes: false }
  })
  const registry = new client.Registry()
  const eld = monitorEventLoopDelay({ resolution: 1 })
  eld.enable()
  const m: RecMetrics = {
    registry,
    cacheAnswers: new client.Counter({ name: 'recsvc_answers_total', help: 'recommendation answers by cache tier', labelNames: ['tier'], registers: [registry] }),
    redisErrors: new client.Counter({ name: 'recsvc_redis_errors_total', help: 'Redis cache operations that failed', labelNames: ['op'], registers: [registry] }),
    scorings: new client.Counter({ name: 'recsvc_scorings_total', help: 'users scored in the worker pool', registers: [registry] })
  }
  new client.Gauge({
    name: 'recsvc_scorer_threads', help: 'scoring pool threads by state', labelNames: ['state'], registers: [registry],
    collect () {
      const s = app.scorer?.stats()
      if (!s) return
      this.set({ state: 'size' }, s.size)
      this.set({ state: 'in_use' }, s.in_use)
      this.set({ state: 'queued' }, s.queued)
    }
  })
  new client.Gauge({
    name: 'recsvc_l1_entries', help: 'entries in the in-process LRU', registers: [registry],
    collect () { if (app.recommendationCache) this.set(app.recommendationCache.l1Stats.entries) }
  })
  new client.Gauge({
    name: 'recsvc_l1_bytes', help: 'bytes held by the in-process LRU', registers: [registry],
    collect () { if (app.recommendationCache) this.set(app.recommendationCache.l1Stats.bytes) }
  })
  new client.Gauge({
    name: 'recsvc_event_loop_delay_p99_seconds', help: 'event-loop delay p99 since the last scrape', registers: [registry],
    collect () { this.set(eld.percentile(99) / 1e9); eld.reset() }
  })
  app.decorate('recMetrics', m)
  app.get('/metrics', async (_req, reply) => {
    const merged = client.Registry.merge([client.register, registry])
    reply.type(merged.contentType)
    return await merged.metrics()
  })
  app.addHook('onClose', async () => { eld.disable() })
}, { name: 'rec-metrics' })
