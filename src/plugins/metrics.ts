import fp from 'fastify-plugin'
import fastifyMetricsModule from 'fastify-metrics'
import client from 'prom-client'
import { performance } from 'node:perf_hooks'
import { SeriesHistogram } from '../lib/prom-series.ts'

// fastify-metrics is CommonJS with an `exports.default`; under NodeNext the default import is the
// module object.
const fastifyMetrics = fastifyMetricsModule.default

export interface RecMetrics {
  /** this app's registry: every plugin registers its own series here */
  registry: client.Registry
}

declare module 'fastify' {
  interface FastifyInstance { recMetrics: RecMetrics }
}

/** How often the event-loop delay is sampled: a timer's lateness is the delay a request would
 *  have met at that moment. 20 ms costs nothing measurable and catches every stall past 20 ms. */
const EVENT_LOOP_SAMPLE_MS = 20

/** fastify-metrics' default method blacklist: requests not timed per route */
const UNTIMED_METHODS = new Set(['HEAD', 'OPTIONS', 'TRACE', 'CONNECT'])

/** Prometheus metrics on a registry per app instance (several instances in one process, as in the
 *  tests, never share a series): per-route durations, Node's default metrics (fastify-metrics),
 *  and the event loop's delay and utilisation. Every other plugin registers its own series on
 *  `recMetrics.registry`. Histograms and counters only grow, so any number of scrapers
 *  can read them (nothing is reset per scrape). */
export default fp(async function metricsPlugin (app) {
  const registry = new client.Registry()
  // fastify-metrics for Node's default metrics only. Its per-route histogram cost about 14 µs of
  // main-thread CPU per request (a WeakMap entry and an hrtime timer per request, a labels object
  // hashed and sorted on every observation): 14 % of an LRU hit at a fixed 5,000 req/s
  // (bench/README.md). The same series, by the same name, labels and buckets, is kept below
  // (lib/prom-series.ts).
  await app.register(fastifyMetrics, {
    endpoint: null,
    promClient: client,
    defaultMetrics: { enabled: true, register: registry },
    routeMetrics: {
      enabled: false,
      // Not collected, but created: on the global registry they would clash between two apps.
      overrides: { summary: { registers: [registry] }, histogram: { registers: [registry] } }
    }
  })
  const routeDuration = new SeriesHistogram({
    name: 'http_request_duration_seconds',
    help: 'request duration in seconds',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  app.addHook('onResponse', (req, reply, done) => {
    // Registered routes only (the not-found handler has no route url), as fastify-metrics did,
    // and not the methods it left out.
    const route = req.routeOptions.url
    if (route !== undefined && !UNTIMED_METHODS.has(req.method)) routeDuration.series(req.method, route, String(reply.statusCode)).observe(reply.elapsedTime / 1000)
    done()
  })

  const delay = new client.Histogram({
    name: 'recsvc_event_loop_delay_seconds',
    help: `event-loop delay: how late a ${EVENT_LOOP_SAMPLE_MS} ms timer fired, sampled continuously`,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry]
  })
  let expected = performance.now() + EVENT_LOOP_SAMPLE_MS
  const sampler = setInterval(() => {
    const now = performance.now()
    delay.observe(Math.max(0, now - expected) / 1000)
    expected = now + EVENT_LOOP_SAMPLE_MS
  }, EVENT_LOOP_SAMPLE_MS)
  sampler.unref()

  const eluAtStart = performance.eventLoopUtilization()
  new client.Counter({
    name: 'recsvc_event_loop_busy_seconds_total',
    help: 'time the event loop spent running callbacks (its rate is the event-loop utilisation, 0 to 1)',
    registers: [registry],
    collect () {
      this.reset()
      this.inc(performance.eventLoopUtilization(eluAtStart).active / 1000)
    }
  })

  app.decorate('recMetrics', { registry })
  app.get('/metrics', async (_req, reply) => {
    reply.type(registry.contentType)
    return await registry.metrics()
  })
  app.addHook('onClose', async () => { clearInterval(sampler) })
}, { name: 'metrics' })
