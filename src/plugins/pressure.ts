import fp from 'fastify-plugin'
import type { FastifyReply, FastifyRequest } from 'fastify'
import underPressure from '@fastify/under-pressure'
import { Counter } from 'prom-client'
import { getHeapStatistics } from 'node:v8'
import type { Config } from '../config.ts'
import { errorBody } from '../lib/errors.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** why this replica sheds new work right now, or undefined */
    shedding (): string | undefined
  }
}

const REASONS: Record<string, string> = {
  eventLoopDelay: 'event_loop_delay',
  heapUsedBytes: 'heap',
  rssBytes: 'rss',
  eventLoopUtilization: 'event_loop_utilization'
}

// Probes and scrapes must see an overloaded replica as it is: /health/ready answers 503
// "overloaded" (so balancers move traffic away), /health/live and /metrics keep answering.
const NEVER_SHED = /^\/(health|metrics)(\/|\?|$)/

/** Load shedding with @fastify/under-pressure: past the event-loop delay or heap limit, new
 *  requests get 503 + Retry-After at once instead of queueing behind a process that cannot keep
 *  up. A full scorer queue is not this: it gets the fallback answer (lib/recommender.ts). */
export default fp(async function pressurePlugin (app, opts: { config: Config }) {
  const c = opts.config
  const shed = new Counter({
    name: 'recsvc_shed_requests_total',
    help: 'requests refused by load shedding, by the limit that was exceeded',
    labelNames: ['reason'],
    registers: [app.recMetrics.registry]
  })
  const maxHeapUsedBytes = c.SHED_MAX_HEAP_USED_MB > 0
    ? c.SHED_MAX_HEAP_USED_MB * 1024 * 1024
    : Math.floor(0.9 * getHeapStatistics().heap_size_limit)
  let lastReason: string | undefined
  // under-pressure sends what the handler returns and lets the request through when it returns
  // nothing (its types only admit the latter).
  const pressureHandler = (req: FastifyRequest, reply: FastifyReply, type: string) => {
    const reason = REASONS[type] ?? String(type)
    lastReason = reason
    if (NEVER_SHED.test(req.url)) return undefined
    shed.inc({ reason })
    reply.code(503).header('retry-after', String(c.SHED_RETRY_AFTER_S))
    return errorBody(503, 'REC_ERR_OVERLOADED', `the server is overloaded (${reason.replace(/_/g, ' ')}); retry in ${c.SHED_RETRY_AFTER_S} s`, req.id)
  }
  await app.register(underPressure, {
    maxEventLoopDelay: c.SHED_MAX_EVENT_LOOP_DELAY_MS,
    maxHeapUsedBytes,
    retryAfter: c.SHED_RETRY_AFTER_S,
    pressureHandler: pressureHandler as unknown as (req: FastifyRequest, reply: FastifyReply, type: string) => void
  })
  app.decorate('shedding', () => {
    if (!app.isUnderPressure()) return undefined
    return lastReason ?? 'pressure'
  })
}, { name: 'pressure', dependencies: ['metrics'] })
