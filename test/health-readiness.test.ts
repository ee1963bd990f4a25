// Readiness is this process's state (booted, not shutting down), not its dependencies'. Two real
// API processes behind the real nginx, on a Redis and a MySQL of their own: with Redis stopped,
// and separately with MySQL stopped, every replica stays ready (200), /health names the failing
// dependency (503, "degraded"), and the cached users still get 200 through nginx from every
// replica. A replica that got SIGTERM answers 503 "shutting_down" before its port closes.
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { startTestStack } from './helpers/stack.ts'

const ADMIN_TOKEN = 'readiness-e2e-admin-token-0123456789'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const { stack, services } = await startTestStack({ label: 'readiness-e2e', replicas: 2, users: 200, adminToken: ADMIN_TOKEN, services: { ownMysql: true, ownRedis: true } })
const front = stack.frontUrl!
const agent = new Agent({ connections: 64 })
t.teardown(() => agent.close())

const header = (headers: Record<string, string | string[] | undefined>, name: string) => {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** GET through nginx. */
async function get (path: string) {
  const res = await request(`${front}${path}`, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const body = await res.body.text()
  return { status: res.statusCode, body, cache: header(res.headers, 'x-cache'), servedBy: header(res.headers, 'x-served-by') }
}

/** GET on one replica directly (health endpoints are not for clients; nginx never polls them). */
async function direct (i: number, path: string) {
  const res = await request(`${stack.apiUrls[i]}${path}`, { headersTimeout: 5000, bodyTimeout: 5000, reset: true })
  const text = await res.body.text()
  let json: Record<string, unknown> = {}
  try { json = JSON.parse(text) } catch {}
  return { status: res.statusCode, json, servedBy: header(res.headers, 'x-served-by') }
}

async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(100)
  }
}

const REPLICAS = ['api-1', 'api-2']
const CACHED = Array.from({ length: 10 }, (_v, i) => i + 1)

/** 6 rounds over the cached users through nginx, 10 at a time: every answer is a 200 with the
 *  user's own (not degraded) recommendations, and each replica served some of them. */
async function checkCachedServed (t: Test) {
  const responses = []
  for (let round = 0; round < 6; round++) responses.push(...await Promise.all(CACHED.map((id) => get(`/recommend/${id}`))))
  for (const r of responses.filter((r) => r.status !== 200).slice(0, 3)) t.comment(r.status, r.servedBy, r.body.slice(0, 300))
  t.same(responses.map((r) => r.status), responses.map(() => 200), 'cached users: all 200 through nginx')
  t.ok(responses.every((r) => r.status === 200 && JSON.parse(r.body).metadata.degraded === false),
    `their own answer, not the fallback (${[...new Set(responses.map((r) => r.cache))].join(', ')})`)
  for (const name of REPLICAS) {
    const mine = responses.filter((r) => r.servedBy === name)
    t.ok(mine.length > 0 && mine.every((r) => r.status === 200), `${name} served ${mine.length} of them, all 200`)
  }
}

/** Every replica: /health/ready 200 ("ok"); /health 503 "degraded", naming exactly `failing`. */
async function checkReadyButDegraded (t: Test, failing: 'redis' | 'database') {
  for (let i = 0; i < REPLICAS.length; i++) {
    const ready = await direct(i, '/health/ready')
    t.equal(ready.status, 200, `${REPLICAS[i]}: /health/ready is 200 with ${failing} down`)
    t.same(ready.json, { status: 'ok' }, `${REPLICAS[i]}: ready says ok`)
    const health = await direct(i, '/health')
    t.equal(health.status, 503, `${REPLICAS[i]}: /health is 503`)
    t.match(health.json, { status: 'degraded', failing: [failing], [failing]: 'down', [failing === 'redis' ? 'database' : 'redis']: 'ok' },
      `${REPLICAS[i]}: /health names ${failing}`)
    t.same(health.json.failing, [failing], `${REPLICAS[i]}: only ${failing} is failing`)
  }
}

async function waitHealthy () {
  for (let i = 0; i < REPLICAS.length; i++) {
    await waitFor(`${REPLICAS[i]} /health 200`, async () => (await direct(i, '/health')).status === 200)
  }
}

/** Reads the cached users through nginx until both replicas have them in their LRU and in Redis. */
async function warm (t: Test) {
  for (let round = 0; round < 4; round++) {
    const rs = await Promise.all(CACHED.map((id) => get(`/recommend/${id}`)))
    t.same(rs.map((r) => r.status), rs.map(() => 200), `warm-up round ${round + 1}: 200`, { diagnostic: false })
  }
  await waitFor('every replica to answer a cached user from its LRU', async () => {
    const seen = new Set<string>()
    for (let k = 0; k < 20; k++) {
      const rs = await Promise.all(CACHED.map((id) => get(`/recommend/${id}`)))
      for (const r of rs) if (r.cache === 'HIT-L1' && r.servedBy) seen.add(r.servedBy)
      if (seen.size === REPLICAS.length) return true
    }
    return false
  })
}

t.test('healthy: every replica is ready and healthy', async (t) => {
  for (let i = 0; i < REPLICAS.length; i++) {
    const ready = await direct(i, '/health/ready')
    t.equal(ready.status, 200)
    t.same(ready.json, { status: 'ok' })
    t.equal(ready.servedBy, REPLICAS[i], `apiUrls[${i}] is ${REPLICAS[i]}`)
    const health = await direct(i, '/health')
    t.equal(health.status, 200)
    t.match(health.json, { status: 'ok', database: 'ok', redis: 'ok', invalidation_subscription: 'ok' })
    t.notOk('failing' in health.json, 'nothing failing')
  }
  await warm(t)
})

t.test('Redis stopped: every replica stays ready, /health names redis, cached users get 200 through nginx from every replica', async (t) => {
  await services.redis.kill()
  t.teardown(async () => { if (!services.redis.running) await services.redis.start() })
  await checkCachedServed(t)
  await checkReadyButDegraded(t, 'redis')
  // Once the breaker has opened, it is still the same: ready, degraded, serving.
  await sleep(500)
  await checkCachedServed(t)
  await checkReadyButDegraded(t, 'redis')
  t.match((await direct(0, '/health')).json, { breakers: { redis: String } }, 'the breakers are reported')
})

t.test('Redis back: healthy again without a restart', async (t) => {
  if (!services.redis.running) await services.redis.start()
  await waitHealthy()
  for (let i = 0; i < REPLICAS.length; i++) t.equal((await direct(i, '/health/ready')).status, 200, `${REPLICAS[i]} ready`)
  await warm(t) // Redis came back empty
})

t.test('MySQL stopped: every replica stays ready, /health names the database, cached users get 200 through nginx from every replica', async (t) => {
  await services.mysql.kill()
  t.teardown(async () => { if (!services.mysql.running) await services.mysql.start() })
  await checkCachedServed(t)
  await checkReadyButDegraded(t, 'database')
  await sleep(500)
  await checkCachedServed(t)
  await checkReadyButDegraded(t, 'database')
})

t.test('MySQL back: healthy again without a restart', async (t) => {
  if (!services.mysql.running) await services.mysql.start()
  await waitHealthy()
  for (let i = 0; i < REPLICAS.length; i++) t.equal((await direct(i, '/health/ready')).status, 200, `${REPLICAS[i]} ready`)
})

t.test('shutting down (SIGTERM): readiness is 503 "shutting_down" while the replica still answers, then it is ready again after a start', async (t) => {
  const seen: Array<{ ready: number, status: unknown, health?: number, healthStatus?: unknown }> = []
  let watching = true
  const watcher = (async () => {
    while (watching) {
      try {
        const r = await direct(0, '/health/ready')
        const entry: (typeof seen)[number] = { ready: r.status, status: r.json.status }
        if (r.status === 503) {
          const h = await direct(0, '/health')
          entry.health = h.status
          entry.healthStatus = h.json.status
        }
        seen.push(entry)
      } catch {
        // refused: the port has closed
      }
      await sleep(25)
    }
  })()
  await sleep(200)
  await stack.killReplica(0, 'SIGTERM')
  watching = false
  await watcher
  t.ok(seen.length > 0 && seen[0]!.ready === 200, 'ready before SIGTERM')
  const draining = seen.filter((s) => s.ready === 503)
  t.ok(draining.length > 0, `503 seen while draining (${draining.length} polls)`)
  t.ok(draining.every((s) => s.status === 'shutting_down'), 'ready says shutting_down')
  t.ok(draining.every((s) => s.health === 503 && s.healthStatus === 'shutting_down'), '/health says shutting_down too')
  const first503 = seen.findIndex((s) => s.ready === 503)
  t.ok(seen.slice(first503).every((s) => s.ready === 503), 'once shutting down, never ready again')

  // The other replica carries the traffic meanwhile; the restarted one is ready again.
  const meanwhile = await Promise.all(CACHED.map((id) => get(`/recommend/${id}`)))
  t.ok(meanwhile.every((r) => r.status === 200 && r.servedBy === 'api-2'), 'api-2 serves while api-1 is down')
  await stack.startReplica(0)
  t.same((await direct(0, '/health/ready')).json, { status: 'ok' }, 'api-1 ready again')
})
