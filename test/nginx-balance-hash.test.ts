// `--balance hash` through the real nginx binary: a local rendering of nginx/nginx.conf.template in
// front of three fake replicas (each answers with its name in X-Served-By, as the app does). Every
// request for one user reaches the same replica, whatever its limit; the users spread over all
// three; requests without a user id still answer, spread too; a replica that stops loses its users
// to the others while everyone else keeps their replica, and gets them back once it answers again.
// The app itself is not needed: what is tested is nginx's choice of replica.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { UPSTREAM_DEFAULTS } from '../tools/nginx-config.ts'
import { startLocalNginx } from './helpers/nginx.ts'
import { getFreePort } from './helpers/services.ts'

const BALANCE = 'hash'
const USERS = 300
const NAMES = ['fake-1', 'fake-2', 'fake-3']
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const work = await mkdtemp(join(tmpdir(), 'recsvc-nginx-hash-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---- three fake replicas, each stoppable and restartable on its port

interface Replica { name: string, port: number, server?: Server }

function startReplica (r: Replica): Promise<void> {
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': r.name }).end(`{"served_by":"${r.name}"}`))
  })
  r.server = server
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(r.port, '127.0.0.1', () => resolve())
  })
}

async function stopReplica (r: Replica): Promise<void> {
  const server = r.server
  r.server = undefined
  if (!server) return
  server.closeAllConnections() // nginx's idle keep-alive connections too: the replica is gone
  await new Promise((resolve) => server.close(resolve))
}

const replicas: Replica[] = []
for (const name of NAMES) replicas.push({ name, port: await getFreePort() })
for (const r of replicas) await startReplica(r)
t.teardown(() => Promise.all(replicas.map(stopReplica)))

// ---- nginx (test/helpers/nginx.ts)
const ng = await startLocalNginx(join(work, 'state'), { upstreams: replicas.map((r) => r.port), balance: BALANCE, rateLimit: false })
t.teardown(() => ng.stop())
const front = ng.front

const agent = new Agent({ connections: 16, keepAliveTimeout: 30_000 })
t.teardown(() => agent.close())

async function call (path: string, init: { method?: 'GET' | 'POST', body?: string, headers?: Record<string, string> } = {}) {
  const res = await request(`${front}${path}`, { dispatcher: agent, method: init.method ?? 'GET', body: init.body, headers: init.headers, headersTimeout: 10_000, bodyTimeout: 10_000 })
  await res.body.text()
  const by = res.headers['x-served-by']
  return { status: res.statusCode, servedBy: Array.isArray(by) ? by[0] : by }
}

/** GET /recommend/:id for every id (10 at a time), `limit` varied per round: the replica of each. */
async function placement (round: number): Promise<{ of: Map<number, string>, failed: string[] }> {
  const of = new Map<number, string>()
  const failed: string[] = []
  for (let id = 1; id <= USERS; id += 10) {
    await Promise.all(Array.from({ length: 10 }, async (_, j) => {
      const user = id + j
      const path = round === 0 ? `/recommend/${user}` : `/recommend/${user}?limit=${1 + ((user + round) % 50)}`
      const r = await call(path, { headers: { 'x-request-id': `u${user}-r${round}` } })
      if (r.status !== 200 || !r.servedBy) failed.push(`${path}: ${r.status}`)
      else of.set(user, r.servedBy)
    }))
  }
  return { of, failed }
}

const shares = (of: Map<number, string>) => {
  const counts = Object.fromEntries(NAMES.map((n) => [n, 0]))
  for (const by of of.values()) counts[by] = (counts[by] ?? 0) + 1
  return counts
}

let home = new Map<number, string>() // each user's replica with all three up

t.test('every request for one user reaches the same replica; 300 users spread over all 3', async (t) => {
  const rounds = [await placement(0), await placement(1), await placement(2)]
  t.same(rounds.flatMap((r) => r.failed), [], 'every GET answered 200 with an X-Served-By')
  home = rounds[0]!.of
  const moved = [...home].filter(([user, by]) => rounds.some((r) => r.of.get(user) !== by))
  t.same(moved.slice(0, 10), [], `3 rounds of ${USERS} users (other limits, other request ids): each user on one replica throughout${moved.length ? ` (${moved.length} moved)` : ''}`)
  const counts = shares(home)
  for (const name of NAMES) {
    t.ok(counts[name]! >= 0.15 * USERS, `${name} holds ${counts[name]} of ${USERS} users (>= 15 %): ${JSON.stringify(counts)}`)
  }
})

t.test('requests without a user id still answer, spread over the replicas', async (t) => {
  const requests: Array<{ path: string, method?: 'GET' | 'POST', body?: string, headers?: Record<string, string> }> = [
    ...Array.from({ length: 30 }, (_, i) => ({ path: `/batch-recommend?user_ids=1,2,${i + 3}` })),
    ...Array.from({ length: 10 }, () => ({ path: '/batch-recommend', method: 'POST' as const, body: '{"user_ids":[1,2,3]}', headers: { 'content-type': 'application/json' } })),
    ...Array.from({ length: 10 }, () => ({ path: '/events', method: 'POST' as const, body: '{}', headers: { 'content-type': 'application/json' } })),
    ...Array.from({ length: 10 }, () => ({ path: '/health/ready' })),
    // a fixed client request id must not pin anything: the key is nginx's own $request_id
    ...Array.from({ length: 10 }, () => ({ path: '/batch-recommend?user_ids=4,5', headers: { 'x-request-id': 'the-same-id' } }))
  ]
  const res: Array<(typeof requests)[number] & Awaited<ReturnType<typeof call>>> = []
  for (const r of requests) res.push({ ...r, ...await call(r.path, r) })
  t.same(res.filter((r) => r.status !== 200).map((r) => `${r.method ?? 'GET'} ${r.path}: ${r.status}`), [], `${res.length} requests without a user id in the URI: all 200`)
  const by = (rs: typeof res) => [...new Set(rs.map((r) => r.servedBy))].sort()
  t.same(by(res), NAMES, 'from all three replicas')
  t.ok(by(res.filter((r) => r.headers?.['x-request-id'] === 'the-same-id')).length > 1, 'even with one client X-Request-Id on every request')
})

t.test('a stopped replica: only its users move, every GET still answers 200; back, it gets them again', async (t) => {
  const gone = replicas[1]!
  await stopReplica(gone)
  const during = await placement(3)
  t.same(during.failed, [], `with ${gone.name} stopped, every GET answered 200 (its connects refused, tried on the next replica of the ring)`)
  const stayed = [...home].filter(([, by]) => by !== gone.name)
  const movedOthers = stayed.filter(([user, by]) => during.of.get(user) !== by)
  t.same(movedOthers.slice(0, 10), [], `the ${stayed.length} users of the other replicas kept theirs${movedOthers.length ? ` (${movedOthers.length} moved)` : ''}`)
  const orphans = [...home].filter(([, by]) => by === gone.name).map(([user]) => user)
  t.ok(orphans.every((user) => during.of.get(user) !== gone.name), `${gone.name}'s ${orphans.length} users are served by the others`)
  const to = new Set(orphans.map((user) => during.of.get(user)))
  t.same([...to].sort(), NAMES.filter((n) => n !== gone.name), `spread over both others, not piled on one (${JSON.stringify(shares(new Map(orphans.map((u) => [u, during.of.get(u)!]))))})`)
  const again = await placement(4)
  t.same(again.failed, [], 'still all 200 once nginx has marked it failed')
  t.same(orphans.filter((user) => again.of.get(user) !== during.of.get(user)), [], 'and its users stay where they went meanwhile')

  await startReplica(gone)
  // Past fail_timeout nginx sends a marked replica one request at a time until one succeeds (the
  // others meanwhile go on along the ring): wait for that first answer, from one of its users.
  await sleep(UPSTREAM_DEFAULTS.failTimeoutS * 1000)
  let probe: string | undefined
  for (const until = Date.now() + 5000; probe !== gone.name && Date.now() < until; await sleep(100)) probe = (await call(`/recommend/${orphans[0]}`)).servedBy
  t.equal(probe, gone.name, `${gone.name} answers again, for its own users`)
  const back = await placement(5)
  t.same(back.failed, [])
  const notHome = [...home].filter(([user, by]) => back.of.get(user) !== by)
  t.same(notHome.slice(0, 10), [], `${gone.name} is back: every user is on its first replica again${notHome.length ? ` (${notHome.length} not)` : ''}`)
})
