// Load shedding, the last line of defence: past the heap or event-loop delay limit, new requests
// get 503 + Retry-After and the service's JSON error at once, readiness says "overloaded" so
// balancers move traffic away, liveness and /metrics keep answering, and
// recsvc_shed_requests_total counts each refusal by reason. When the pressure goes, so does the
// shedding. By default the limits sit far above what any benchmark reaches.
import t from 'tap'
import { parseExposition } from '../tools/monitor/exposition.ts'
import { loadConfig } from '../src/config.ts'
import { waitFor, withApp } from './helpers/app.ts'

const shedCount = async (app: import('fastify').FastifyInstance, reason: string) => {
  const expo = parseExposition((await app.inject({ method: 'GET', url: '/metrics' })).body)
  return expo.samples.filter((s) => s.name === 'recsvc_shed_requests_total' && s.labels.reason === reason).reduce((n, s) => n + s.value, 0)
}

t.test('defaults: shedding is on, far above normal load', async (t) => {
  const c = loadConfig({})
  t.equal(c.SHED_MAX_EVENT_LOOP_DELAY_MS, 1000, 'a mean event-loop delay of 1 s (cold start at 1000 connections: p99 35-48 ms)')
  t.equal(c.SHED_MAX_HEAP_USED_MB, 0, '0 = 90% of the V8 heap limit')
  t.throws(() => loadConfig({ SHED_MAX_EVENT_LOOP_DELAY_MS: '-1' }), /SHED_MAX_EVENT_LOOP_DELAY_MS/, 'a bad value stops the process')
})

t.test('heap over its limit: 503 + Retry-After for new work, readiness overloaded, liveness and metrics answer', async (t) => {
  const { app } = await withApp(t, { config: { SHED_MAX_HEAP_USED_MB: 1, SHED_RETRY_AFTER_S: 7 } })
  // under-pressure samples once a second; the first sample puts this 1 MiB heap limit to shame.
  await waitFor('the first pressure sample', async () => (await app.inject({ method: 'GET', url: '/recommend/1' })).statusCode === 503, 5000)
  const before = await shedCount(app, 'heap')
  const res = await app.inject({ method: 'GET', url: '/recommend/2' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '7')
  t.match(res.json(), { statusCode: 503, code: 'REC_ERR_OVERLOADED', error: 'Service Unavailable', message: /overloaded \(heap\)/, request_id: String })
  const batch = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [1, 2] } })
  t.equal(batch.statusCode, 503, 'batches too')
  const ready = await app.inject({ method: 'GET', url: '/health/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), { status: 'overloaded' }, 'readiness reports it')
  t.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200, 'liveness still answers')
  t.equal(await shedCount(app, 'heap') - before, 2, 'each refusal counted (the probes and scrapes are not)')
})

t.test('event-loop delay over its limit: shed while the loop is behind, served again once it catches up', async (t) => {
  const { app } = await withApp(t, { config: { SHED_MAX_EVENT_LOOP_DELAY_MS: 50 } })
  t.equal((await app.inject({ method: 'GET', url: '/recommend/3' })).statusCode, 200, 'served before')
  // A sustained stall, as a CPU-bound burst would cause: 100 ms of synchronous work, a moment for
  // timers, and again, for 2.5 s. (under-pressure judges the mean delay over a second, so one long
  // block among many on-time ticks is not overload; this is.)
  const until = Date.now() + 2500
  while (Date.now() < until) {
    const chunk = Date.now() + 100
    while (Date.now() < chunk) { /* busy */ }
    await new Promise((resolve) => setImmediate(resolve))
  }
  const shedNow = await app.inject({ method: 'GET', url: '/recommend/3' })
  t.equal(shedNow.statusCode, 503, 'shed right after the stall')
  t.match(shedNow.json(), { code: 'REC_ERR_OVERLOADED', message: /event loop delay/ })
  t.ok(await shedCount(app, 'event_loop_delay') >= 1, 'counted as event_loop_delay')
  t.same((await app.inject({ method: 'GET', url: '/health/ready' })).json(), { status: 'overloaded' })
  await waitFor('the loop caught up', async () => (await app.inject({ method: 'GET', url: '/recommend/3' })).statusCode === 200, 5000)
  t.equal((await app.inject({ method: 'GET', url: '/health/ready' })).statusCode, 200, 'ready again')
})
