// MySQL paused (SIGSTOP: queries hang) and then stopped, behind the real nginx with two real API
// processes: every request still gets a 200 through nginx, from every replica. Cached users get
// their own answer, uncached users the FALLBACK, and nginx never marks a live replica down.
import t, { type Test } from 'tap'
import { readFile } from 'node:fs/promises'
import { Agent, request } from 'undici'
import { startTestStack } from './helpers/stack.ts'

const ADMIN_TOKEN = 'fallback-e2e-admin-token-0123456789'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const { stack, services } = await startTestStack({ label: 'fallback-e2e', replicas: 2, users: 400, adminToken: ADMIN_TOKEN, services: { ownMysql: true } })
const front = stack.frontUrl!
const agent = new Agent({ connections: 64 })
t.teardown(() => agent.close())

async function get (path: string) {
  const res = await request(`${front}${path}`, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const body = await res.body.text()
  const h = (name: string) => { const v = res.headers[name]; return Array.isArray(v) ? v[0] : v }
  return { status: res.statusCode, body, cache: h('x-cache'), servedBy: h('x-served-by') }
}

const mysqlPid = () => {
  const pid = services.mysql.pid
  if (pid === undefined) throw new Error('MySQL is not running')
  return pid
}

const CACHED = Array.from({ length: 10 }, (_v, i) => i + 1)

/** 4 rounds over the cached users and 40 uncached ones, 20 requests at a time. */
async function checkDegraded (t: Test, uncached: number[]) {
  const cached = []
  const cold = []
  for (let round = 0; round < 4; round++) cached.push(...await Promise.all(CACHED.map((id) => get(`/recommend/${id}`))))
  for (let i = 0; i < uncached.length; i += 20) cold.push(...await Promise.all(uncached.slice(i, i + 20).map((id) => get(`/recommend/${id}`))))
  t.ok(cached.every((r) => r.status === 200 && /^(HIT-L1|HIT-L2|STALE)$/.test(r.cache ?? '')), 'cached users: 200 HIT or STALE')
  t.ok(cached.every((r) => JSON.parse(r.body).metadata.degraded === false), 'their own answer')
  t.same(cold.map((r) => r.status), cold.map(() => 200), 'uncached users: 200')
  t.ok(cold.every((r) => r.cache === 'FALLBACK' && JSON.parse(r.body).metadata.degraded === true), 'FALLBACK, marked degraded')
  t.same([...new Set([...cached, ...cold].map((r) => r.servedBy))].sort(), ['api-1', 'api-2'], 'from every replica')
  await checkReady(t)
}

/** Readiness is this process's state: an outage of a dependency leaves every replica ready. */
async function checkReady (t: Test) {
  for (const url of stack.apiUrls) {
    const res = await request(`${url}/health/ready`, { headersTimeout: 5000, bodyTimeout: 5000 })
    await res.body.text()
    t.equal(res.statusCode, 200, `${url}/health/ready is 200`)
  }
}

t.test('warm up: the cached users are in every replica', async (t) => {
  for (let round = 0; round < 3; round++) for (const id of CACHED) t.equal((await get(`/recommend/${id}`)).status, 200, `user ${id}`, { diagnostic: false })
})

t.test('MySQL paused: every request through nginx still gets a 200', async (t) => {
  process.kill(mysqlPid(), 'SIGSTOP')
  t.teardown(() => { try { process.kill(mysqlPid(), 'SIGCONT') } catch {} })
  await checkDegraded(t, Array.from({ length: 40 }, (_v, i) => 100 + i))
  process.kill(mysqlPid(), 'SIGCONT')
})

t.test('MySQL stopped: the same, and no live replica is marked down', async (t) => {
  await services.mysql.kill()
  await checkDegraded(t, Array.from({ length: 40 }, (_v, i) => 200 + i))
  const log = (await readFile(stack.nginxAccessLog!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { status: number, upstream_addr: string })
  t.equal(log.filter((e) => e.status >= 500).length, 0, 'nginx answered no 5xx of its own or passed on')
  t.equal(log.filter((e) => e.upstream_addr.includes(',')).length, 0, 'nothing was retried on the other replica')
})

t.test('MySQL back: personalised again without a restart', async (t) => {
  await services.mysql.start()
  let res = await get('/recommend/300')
  for (let i = 0; i < 100 && res.cache === 'FALLBACK'; i++) {
    await sleep(200)
    res = await get(`/recommend/${300 + i}`)
  }
  t.equal(res.status, 200)
  t.match(res.cache, /^(MISS|HIT-L2|HIT-L1)$/)
  t.equal(JSON.parse(res.body).metadata.degraded, false)
})
