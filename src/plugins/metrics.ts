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
}

declare module 'fastify' {
  interface FastifyInstance { recMetrics: RecMetrics }
}

/** Prometheus metrics: fastify-metrics for process and per-route figures, plus this service's own
 *  in a registry per app instance, so several instances in one process (tests) do not collide.
 *  Other plugins register their own series on `recMetrics.registry` (the scorer its pool, the
 *  recommender its LRU); this one holds the counters the routes share and the event-loop delay. */
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
    cacheAnswers: new client.Counter({ name: 'recsvc_answers_total', help: 'recommendation answers by cache tier', labelNames: ['tier'], registers: [registry] })
  }
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
}, { name: 'metrics' })
