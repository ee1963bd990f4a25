// What nginx does with our configuration (its files are checked in test/deploy/nginx-files.test.ts):
// the real nginx runs a local rendering of nginx/nginx.conf.template in front of two fake upstreams
// to prove the behaviour: retries on connection errors for GET but never for POST, an
// app's 503/502 reaching the client once (never retried, never marking a busy replica down), a
// refused replica skipped, upstream keep-alive under 1000 client connections, request ids,
// forwarded headers, the JSON access log, internal-only stub_status, the internal routes
// (/metrics, /health*, admin) proxied only for the internal networks, and the per-IP limits (on,
// off, and the connection cap). Also nginx/dns-reload.sh: a changed DNS answer for the compose
// service reloads nginx.
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { chmodSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { networkInterfaces, tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import {
  CAPACITY_DEFAULTS, RATE_LIMIT_DEFAULTS, UPSTREAM_DEFAULTS, renderNginxConfig, templatePath, type NginxConfigOptions
} from '../tools/nginx-config.ts'
import { findBinary } from '../tools/servers/binaries.ts'
import { getFreePort } from './helpers/services.ts'
import { GUARD, startLocalNginx, type LocalNginxOptions, type RunningNginx } from './helpers/nginx.ts'

const NGINX = findBinary('nginx')
if (!NGINX) throw new Error('nginx not found (Debian: apt-get install nginx-light)')
const nginx = NGINX

const work = await mkdtemp(join(tmpdir(), 'recsvc-nginx-config-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// the real nginx in front of two fake upstreams

interface Seen { server: string, method: string, url: string, headers: IncomingMessage['headers'], socket: string }

const seen: Seen[] = []
const firstContact = new Set<string>()

/** The body a fake upstream answers with for an app error: the client must get exactly this. */
const appError = (status: number, name: string) =>
  `{"statusCode":${status},"code":"REC_ERR_OVERLOADED","error":"from the app","served_by":"${name}"}`

/** Paths: /fail-first/reset and /fail-first/503 (also under another prefix, e.g.
 *  /health/fail-first/reset) fail the first attempt of a request id (the socket is destroyed, or a
 *  503); /always-503 and /always-502 are the app's own error on every replica; /busy/NAME is a 503
 *  from replica NAME only (a busy replica shedding load); /app-403 is the app's own 403; /slow
 *  takes 400 ms; anything else is a 200 echoing the request headers. */
function fakeUpstream (name: string): Server {
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    const rid = String(req.headers['x-request-id'] ?? '')
    const url = req.url ?? ''
    seen.push({ server: name, method: req.method ?? '', url, headers: req.headers, socket: `${name}:${req.socket.remotePort}` })
    req.resume()
    req.on('end', () => {
      const fail = /^(\/[a-z-]+)?\/fail-first\//.test(url) && !firstContact.has(rid)
      if (fail) firstContact.add(rid)
      if (fail && url.endsWith('/reset')) {
        req.socket.destroy() // the replica dies with the request in flight
        return
      }
      const appStatus = (fail && url.endsWith('/503')) || url.startsWith('/always-503') || url === `/busy/${name}`
        ? 503
        : url.startsWith('/always-502') ? 502 : 0
      if (url.startsWith('/app-403')) {
        res.writeHead(403, { 'content-type': 'application/json', 'x-served-by': name }).end(appError(403, name))
        return
      }
      if (appStatus) {
        res.writeHead(appStatus, { 'content-type': 'application/json', 'x-served-by': name, 'retry-after': '1' }).end(appError(appStatus, name))
        return
      }
      const delay = req.url?.startsWith('/slow') ? 400 : 0
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name, 'x-cache': 'HIT-L1' })
        res.end(JSON.stringify({ server: name, headers: req.headers }))
      }, delay)
    })
  })
}

async function listen (srv: Server): Promise<number> {
  const port = await getFreePort()
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject)
    srv.listen(port, '127.0.0.1', () => resolve())
  })
  return port
}

const running = new Set<ChildProcess>()
process.on('exit', () => { for (const c of running) try { c.kill('SIGKILL') } catch {} })

function startNginx (name: string, options: LocalNginxOptions): Promise<RunningNginx> {
  return startLocalNginx(join(work, `run-${name}`), options)
}

const a = fakeUpstream('fake-a')
const b = fakeUpstream('fake-b')
const ports = [await listen(a), await listen(b)]
t.teardown(async () => {
  a.closeAllConnections()
  b.closeAllConnections()
  await Promise.all([new Promise((r) => a.close(r)), new Promise((r) => b.close(r))])
})

const ng = await startNginx('proxy', { upstreams: ports, rateLimit: false })
t.teardown(() => ng.stop())

async function call (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(`${ng.front}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  let body: { server?: string, headers?: Record<string, string>, code?: string, request_id?: string } = {}
  try { body = JSON.parse(text) } catch {}
  return { status: res.status, headers: res.headers, body, text }
}

const attempts = (rid: string) => seen.filter((s) => s.headers['x-request-id'] === rid).map((s) => s.server)

t.test('GET is retried on another upstream when one dies mid-request; POST never is', async (t) => {
  const g1 = await call('/fail-first/reset', { headers: { 'x-request-id': 'get-reset-1' } })
  t.equal(g1.status, 200, 'GET whose first upstream reset the connection: 200 from the other')
  t.equal(new Set(attempts('get-reset-1')).size, 2, `tried on both upstreams (${attempts('get-reset-1').join(', ')})`)

  const p1 = await call('/fail-first/reset', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'post-reset-1' } })
  t.equal(attempts('post-reset-1').length, 1, 'POST whose upstream died mid-request was sent exactly once')
  t.equal(p1.status, 503, 'and the client gets an error')
  t.equal(p1.body.code, 'REC_ERR_NO_UPSTREAM', 'in the API\'s JSON error shape')
  t.equal(p1.body.request_id, 'post-reset-1')

  const p2 = await call('/fail-first/503', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'post-503-1' } })
  t.equal(attempts('post-503-1').length, 1, 'POST answered 503 was sent exactly once')
  t.equal(p2.status, 503, 'the upstream\'s 503 reaches the client')

  await sleep(2100) // let the failure marks (fail_timeout) expire for the next tests
})

t.test('an app 503 or 502 to a GET reaches the client once: never retried on the other upstream', async (t) => {
  for (const status of [503, 502]) {
    const rid = `get-app-${status}`
    const res = await call(`/always-${status}`, { headers: { 'x-request-id': rid } })
    const tried = attempts(rid)
    t.equal(tried.length, 1, `${status}: exactly one upstream saw the request, the other none (${tried.join(', ')})`)
    t.equal(res.status, status, `${status}: the client gets the app's ${status}`)
    t.equal(res.text, appError(status, tried[0] ?? '?'), `${status}: with the app's own body, not nginx's`)
    t.equal(res.headers.get('x-served-by'), tried[0], `${status}: and its X-Served-By`)
    t.equal(res.headers.get('retry-after'), '1', `${status}: and its Retry-After`)
  }
  // The first attempt that answers 503 is final, even when the next replica would answer 200.
  const rid = 'get-fail-first-503'
  const res = await call('/fail-first/503', { headers: { 'x-request-id': rid } })
  t.equal(attempts(rid).length, 1, 'a GET answered 503 by the first upstream is not sent to the second')
  t.equal(res.status, 503)
  t.equal(res.text, appError(503, attempts(rid)[0] ?? '?'))
})

t.test('app 503s do not mark a replica down: after 20 of them it still gets traffic', async (t) => {
  // A fresh nginx, so its failure marks are only this test's.
  const busy = await startNginx('busy', { upstreams: ports, rateLimit: false })
  t.teardown(() => busy.stop())
  const get = async (path: string, rid: string) => {
    const res = await fetch(`${busy.front}${path}`, { headers: { 'x-request-id': rid }, signal: AbortSignal.timeout(10_000) })
    return { status: res.status, servedBy: res.headers.get('x-served-by'), text: await res.text(), tried: attempts(rid) }
  }

  // fake-a sheds load (503), fake-b is fine: well within fail_timeout, fake-a answers 20 times.
  const t0 = Date.now()
  const shed: Awaited<ReturnType<typeof get>>[] = []
  for (let i = 0; i < 100 && shed.filter((r) => r.servedBy === 'fake-a').length < 20; i++) shed.push(await get('/busy/fake-a', `busy-a-${i}`))
  const elapsed = Date.now() - t0
  const fromA = shed.filter((r) => r.servedBy === 'fake-a')
  t.equal(fromA.length, 20, `fake-a answered 20 of ${shed.length} requests with its 503 (it kept getting traffic)`)
  t.ok(elapsed < UPSTREAM_DEFAULTS.failTimeoutS * 1000, `within fail_timeout (${elapsed} ms < ${UPSTREAM_DEFAULTS.failTimeoutS} s)`)
  t.ok(fromA.every((r) => r.status === 503 && r.text === appError(503, 'fake-a')), 'every one of them reached the client as the app\'s 503')
  t.ok(shed.every((r) => r.tried.length === 1), 'no request was tried twice')
  t.ok(shed.filter((r) => r.servedBy === 'fake-b').every((r) => r.status === 200), 'fake-b answered 200')

  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => get('/ok', `busy-after-${i}`)))
  t.same(after.filter((r) => r.status !== 200), [], 'then 20 GETs are all answered 200')
  t.ok(after.filter((r) => r.servedBy === 'fake-a').length > 0, `fake-a still gets traffic (${after.filter((r) => r.servedBy === 'fake-a').length} of 20): not marked down`)

  // The case: every replica busy. Their 503s reach the client; nobody is marked down.
  const storm = []
  for (let i = 0; i < 40; i++) storm.push(await get('/always-503', `busy-all-${i}`))
  t.ok(storm.every((r) => r.status === 503 && r.text === appError(503, r.servedBy ?? '?')), '40 GETs answered 503 by both replicas: each client got the app\'s 503')
  t.ok(storm.every((r) => r.tried.length === 1), 'each sent once')
  t.same([...new Set(storm.map((r) => r.servedBy))].sort(), ['fake-a', 'fake-b'], 'from both replicas')
  const recovered = await Promise.all(Array.from({ length: 20 }, (_, i) => get('/ok', `busy-recovered-${i}`)))
  t.same(recovered.filter((r) => r.status !== 200).map((r) => r.text), [], 'right after, no "no live upstreams": all 200')
  t.same([...new Set(recovered.map((r) => r.servedBy))].sort(), ['fake-a', 'fake-b'], 'from both replicas')
})

t.test('a refused replica: GETs and POSTs move to the other one, and it is skipped after max_fails', async (t) => {
  const dead = await getFreePort() // nothing listens there: connection refused
  const half = await startNginx('refused', { upstreams: [dead, ports[0]!], rateLimit: false })
  t.teardown(() => half.stop())
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) {
    const res = await fetch(`${half.front}/ok`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json', 'x-request-id': `refused-post-${i}` } })
    await res.text()
    statuses.push(res.status)
  }
  for (let i = 0; i < 40; i++) {
    const res = await fetch(`${half.front}/ok`, { headers: { 'x-request-id': `refused-get-${i}` } })
    await res.text()
    statuses.push(res.status)
  }
  t.same(statuses.filter((s) => s !== 200), [], '4 POSTs and 40 GETs all answered 200 (a refused connect sent nothing, so a POST moves on too)')
  await sleep(100)
  const entries = (await readFile(half.accessLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>)
    .filter((e) => String(e.request_id).startsWith('refused-'))
  t.equal(entries.length, 44, 'all in the access log')
  const viaDead = entries.filter((e) => String(e.upstream_addr).includes(`127.0.0.1:${dead}`))
  t.ok(viaDead.length >= 1, `the dead replica was tried (${viaDead.length} times)`)
  t.ok(viaDead.length <= UPSTREAM_DEFAULTS.maxFails, `at most max_fails (${UPSTREAM_DEFAULTS.maxFails}) times, then skipped`)
  t.ok(viaDead.every((e) => e.upstream_addr === `127.0.0.1:${dead}, 127.0.0.1:${ports[0]}` && e.upstream_status === '502, 200'), 'each time refused, then answered by the live one')
  t.same(entries.slice(-10).filter((e) => e.upstream_addr !== `127.0.0.1:${ports[0]}`), [], 'the last 10 went straight to the live one')
  t.ok(viaDead.some((e) => e.method === 'POST'), 'a POST was among the requests moved')
})

t.test('upstream keep-alive: 1000 concurrent client connections reuse the upstream connections', async (t) => {
  // Fresh upstreams, to count the connections nginx opens to them.
  const conns = { n: 0 }
  const c = fakeUpstream('fake-c')
  const d = fakeUpstream('fake-d')
  for (const srv of [c, d]) srv.on('connection', () => { conns.n++ })
  const kaPorts = [await listen(c), await listen(d)]
  t.teardown(async () => {
    c.closeAllConnections()
    d.closeAllConnections()
    await Promise.all([new Promise((r) => c.close(r)), new Promise((r) => d.close(r))])
  })
  // One worker: the worst case (one worker holding all client connections); room for 1000 client
  // and 1000 upstream connections. The keepalive size is the default.
  const ka = await startNginx('keepalive', { upstreams: kaPorts, rateLimit: false, workerConnections: 4096, workerRlimitNofile: 8192 })
  t.teardown(() => ka.stop())
  const concurrency = 1000
  const rounds = 3
  const statuses: number[] = []
  const perRound: number[] = []
  for (let r = 0; r < rounds; r++) {
    const before = conns.n
    // /slow takes 400 ms: all 1000 are in flight at once, each on its own upstream connection.
    statuses.push(...await Promise.all(Array.from({ length: concurrency }, () =>
      fetch(`${ka.front}/slow`, { signal: AbortSignal.timeout(20_000) }).then(async (res) => { await res.text(); return res.status }))))
    perRound.push(conns.n - before)
  }
  const requests = concurrency * rounds
  t.equal(statuses.filter((s) => s === 200).length, requests, `${requests} requests in ${rounds} rounds of ${concurrency} concurrent, all 200`)
  t.comment(`new upstream connections per round: ${perRound.join(', ')} (keepalive ${CAPACITY_DEFAULTS.upstreamKeepalive})`)
  t.ok(conns.n <= concurrency * 1.2, `${conns.n} upstream connections for ${requests} requests: about one per concurrent request, not one per request`)
  t.ok(perRound.slice(1).every((n) => n <= concurrency * 0.1), `later rounds reuse the kept-alive connections (${perRound.slice(1).join(', ')} new)`)
})

t.test('request id, forwarded headers, upstream keep-alive and response headers', async (t) => {
  const before = seen.length
  const own = await call('/ok', { headers: { 'x-request-id': 'client-req-42', 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https' } })
  t.equal(own.status, 200)
  t.equal(own.headers.get('x-request-id'), 'client-req-42', 'a sane client X-Request-Id comes back')
  t.equal(own.body.headers?.['x-request-id'], 'client-req-42', 'and reaches the app')
  t.equal(own.body.headers?.['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is the client address, not the spoofed one')
  t.equal(own.body.headers?.['x-forwarded-proto'], 'http', 'X-Forwarded-Proto is the real scheme')
  t.equal(own.body.headers?.connection, undefined, 'no Connection header to the upstream (keep-alive)')
  t.match(own.headers.get('x-served-by') ?? '', /^fake-[ab]$/, 'X-Served-By reaches the client')
  t.equal(own.headers.get('x-cache'), 'HIT-L1', 'X-Cache reaches the client')

  const generated = await call('/ok')
  t.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, 'generated when missing')
  t.equal(generated.body.headers?.['x-request-id'], generated.headers.get('x-request-id'), 'the same id upstream and downstream')
  const bad = await call('/ok', { headers: { 'x-request-id': 'x'.repeat(300) } })
  t.match(bad.headers.get('x-request-id') ?? '', /^[0-9a-f]{32}$/, 'an oversized client id is replaced')

  for (let i = 0; i < 40; i++) await call('/ok')
  const mine = seen.slice(before)
  const sockets = new Set(mine.map((s) => s.socket))
  t.ok(sockets.size <= 4, `${mine.length} requests over ${sockets.size} upstream connection(s): keep-alive is used`)
  t.same([...new Set(mine.map((s) => s.server))].sort(), ['fake-a', 'fake-b'], 'both upstreams used')
})

t.test('the JSON access log has the upstream address and response time of every attempt', async (t) => {
  await sleep(100)
  const lines = (await readFile(ng.accessLog, 'utf8')).trim().split('\n')
  const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(entries.length >= 40, `${entries.length} JSON lines`)
  const retried = entries.find((e) => e.request_id === 'get-reset-1')
  t.match(String(retried?.upstream_addr), /^127\.0\.0\.1:\d+, 127\.0\.0\.1:\d+$/, 'a retried GET lists both upstreams')
  t.match(String(retried?.upstream_response_time), /^[\d.]+, [\d.]+$/, 'and both response times')
  const ok = entries.find((e) => e.request_id === 'client-req-42')
  t.equal(ok?.status, 200)
  t.match(String(ok?.served_by), /^fake-[ab]$/)
  t.match(String(ok?.upstream_addr), new RegExp(`^127\\.0\\.0\\.1:(${ports.join('|')})$`))
})

t.test('stub_status answers on the internal port only', async (t) => {
  const status = await fetch(ng.status)
  t.equal(status.status, 200)
  t.match(await status.text(), /Active connections: \d+/, 'stub_status on 127.0.0.1')
  const outside = await call('/nginx_status')
  t.equal(outside.status, 404, 'not on the public port')
  t.notMatch(outside.text, /Active connections/)
  const other = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address
  if (other) {
    const refused = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: other, port: ng.statusPort })
      sock.once('connect', () => { sock.destroy(); resolve(false) })
      sock.once('error', () => resolve(true))
    })
    t.ok(refused, `the status port is closed on ${other}`)
  } else {
    t.comment('no non-loopback IPv4 interface to try the status port on')
  }
})

/** A request with its path sent exactly as written (fetch would normalize `..` and the like). */
function rawRequest (front: string, method: string, path: string, rid: string): Promise<{ status: number, text: string, headers: IncomingMessage['headers'] }> {
  const { hostname, port } = new URL(front)
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers: { 'x-request-id': rid, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, timeout: 10_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => { text += d })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }))
    })
    req.once('error', reject)
    req.end(method === 'POST' ? '{}' : undefined)
  })
}

const INTERNAL_ROUTES: Array<[string, string]> = [
  ['GET', '/metrics'], ['GET', '/health'], ['GET', '/health/ready'], ['GET', '/health/live'],
  ['POST', '/invalidate-cache'], ['POST', '/invalidate-cache/1'], ['POST', '/events']
]

t.test('internal routes: outside the internal networks a JSON 403 that never reaches a replica; the public API still proxied', async (t) => {
  // 127.0.0.1 is not in 10.0.0.0/8: to this nginx, the test is an outside client.
  const outside = await startNginx('outside', { upstreams: ports, rateLimit: false, internalNetworks: ['10.0.0.0/8'] })
  t.teardown(() => outside.stop())
  const tricks: Array<[string, string]> = [
    ['GET', '/metrics/'], ['GET', '/metrics?format=json'], ['GET', '//metrics'], ['GET', '/%6detrics'],
    ['GET', '/recommend/../metrics'], ['GET', '/recommend/%2e%2e/health'], ['GET', '/health%2Fready'],
    ['GET', '/health/fail-first/reset'], ['POST', '/invalidate-cache/%31'], ['POST', '/./events']
  ]
  for (const [method, path] of [...INTERNAL_ROUTES, ...tricks]) {
    const rid = `outside-${method}-${path}`.replace(/[^A-Za-z0-9._:-]/g, '_')
    const res = await rawRequest(outside.front, method, path, rid)
    t.equal(res.status, 403, `${method} ${path}: 403`)
    let body: Record<string, unknown> = {}
    try { body = JSON.parse(res.text) } catch {}
    t.same(body, { statusCode: 403, code: 'REC_ERR_FORBIDDEN', error: 'Forbidden', message: 'this route is served to internal networks only', request_id: rid }, `${method} ${path}: the API's JSON error shape`)
    t.match(res.headers['content-type'] ?? '', /^application\/json/, `${method} ${path}: application/json`)
    t.equal(res.headers['x-request-id'], rid, `${method} ${path}: with the request id`)
    t.same(attempts(rid), [], `${method} ${path}: no upstream saw it`)
  }
  for (const [method, path] of [['GET', '/recommend/1'], ['POST', '/batch-recommend'], ['GET', '/docs'], ['GET', '/docs/json'], ['GET', '/healthz-is-not-a-route']] as const) {
    const rid = `outside-public-${method}-${path}`.replace(/[^A-Za-z0-9._:-]/g, '_')
    const res = await rawRequest(outside.front, method, path, rid)
    if (path.startsWith('/healthz')) {
      t.equal(res.status, 403, `${path}: under the /health prefix, internal too`)
      continue
    }
    t.equal(res.status, 200, `${method} ${path}: proxied`)
    t.same(attempts(rid).length, 1, `${method} ${path}: reached an upstream once`)
  }
  const app403 = await rawRequest(outside.front, 'GET', '/app-403', 'outside-app-403')
  t.equal(app403.status, 403, 'an app\'s own 403 is passed on')
  t.match(app403.text, /"error":"from the app"/, 'as the app sent it, not replaced by nginx\'s')
})

t.test('internal routes: from an internal network they are proxied like everything else', async (t) => {
  // ng: the local default (127.0.0.1/32, ::1/128); mixed: an explicit list that includes 127.0.0.1.
  const mixed = await startNginx('mixed', { upstreams: ports, rateLimit: false, internalNetworks: ['10.0.0.0/8', '127.0.0.1/32', 'fd00::/8'] })
  t.teardown(() => mixed.stop())
  for (const [label, front] of [['default', ng.front], ['10.0.0.0/8,127.0.0.1/32,fd00::/8', mixed.front]] as const) {
    for (const [method, path] of INTERNAL_ROUTES) {
      const rid = `inside-${label}-${method}-${path}`.replace(/[^A-Za-z0-9._:-]/g, '_')
      const res = await rawRequest(front, method, path, rid)
      t.equal(res.status, 200, `${label}: ${method} ${path} proxied`)
      t.equal(attempts(rid).length, 1, `${label}: ${method} ${path} reached an upstream once`)
      const echoed = (JSON.parse(res.text) as { headers: Record<string, string> }).headers
      t.equal(echoed['x-forwarded-for'], '127.0.0.1', `${label}: ${method} ${path}: with the forwarded headers`)
      t.equal(echoed.connection, undefined, `${label}: ${method} ${path}: over upstream keep-alive`)
      t.equal(res.headers['x-request-id'], rid, `${label}: ${method} ${path}: request id back`)
    }
  }
  // The retry policy is inherited as well: a GET /health whose replica dies is retried.
  const res = await rawRequest(ng.front, 'GET', '/health/fail-first/reset', 'inside-health-retry')
  t.equal(res.status, 200, 'GET /health/... whose first upstream reset the connection: 200 from the other')
  t.equal(new Set(attempts('inside-health-retry')).size, 2, 'tried on both upstreams')
  const post = await rawRequest(ng.front, 'POST', '/events/fail-first/reset', 'inside-events-no-retry')
  t.equal(attempts('inside-events-no-retry').length, 1, 'a POST /events whose upstream died is still never re-sent')
  t.equal(post.status, 503, 'and the client gets an error')
  await sleep(2100) // let the failure marks expire for the next tests
})

t.test('per-IP limits: 429 past the burst, the connection cap, and nothing when off', async (t) => {
  const burst = async (front: string, n: number) => {
    const codes = await Promise.all(Array.from({ length: n }, () => fetch(`${front}/ok`).then(async (r) => {
      const body = await r.text()
      return { status: r.status, body, retryAfter: r.headers.get('retry-after') }
    })))
    return codes
  }
  const limited = await startNginx('limited', { upstreams: ports })
  t.teardown(() => limited.stop())
  const res = await burst(limited.front, 200)
  const rejected = res.filter((r) => r.status === 429)
  t.ok(rejected.length > 0, `${rejected.length} of 200 simultaneous requests got 429`)
  t.ok(res.filter((r) => r.status === 200).length >= RATE_LIMIT_DEFAULTS.burst, 'the burst is served')
  t.match(JSON.parse(rejected[0]?.body ?? '{}'), { statusCode: 429, code: 'REC_ERR_RATE_LIMITED' }, '429 in the API\'s JSON error shape')
  t.equal(rejected[0]?.retryAfter, '1', 'with Retry-After')

  const open = await burst(ng.front, 200)
  t.equal(open.filter((r) => r.status !== 200).length, 0, 'rendered with rateLimit: false, nothing is limited')

  const capped = await startNginx('capped', { upstreams: ports, rateLimit: { ratePerSecond: 10_000, burst: 10_000, connectionsPerIp: 5 } })
  t.teardown(() => capped.stop())
  const slow = await Promise.all(Array.from({ length: 12 }, () => fetch(`${capped.front}/slow`).then((r) => r.status)))
  t.equal(slow.filter((s) => s === 200).length, 5, 'a connection cap of 5 serves 5 slow requests at once')
  t.equal(slow.filter((s) => s === 429).length, 7, 'and refuses the rest')
})

/** nginx (a local rendering) under nginx/dns-reload.sh, with a stand-in for `getent ahostsv4 api`
 *  that answers from a file the test rewrites; `workers()` lists nginx's worker pids (new ones
 *  after a reload), `log()` what dns-reload.sh printed. */
async function underDnsReload (t: Test, name: string, firstAnswer: string, env: NodeJS.ProcessEnv, options: Partial<Extract<NginxConfigOptions, { mode: 'local' }>> = {}) {
  const script = join(templatePath(), '..', 'dns-reload.sh')
  const dir = join(work, name)
  const bin = join(dir, 'bin')
  await mkdir(join(dir, 'run'), { recursive: true })
  await mkdir(join(dir, 'nginx'), { recursive: true })
  await mkdir(bin, { recursive: true })
  const answers = join(dir, 'addresses')
  await writeFile(join(bin, 'getent'), `#!/bin/sh\n[ "$1" = ahostsv4 ] && [ -s "${answers}" ] || exit 2\nfor ip in $(cat "${answers}"); do echo "$ip STREAM $2"; echo "$ip DGRAM"; done\n`)
  chmodSync(join(bin, 'getent'), 0o755)
  await writeFile(answers, firstAnswer)
  const file = join(dir, 'nginx', 'nginx.conf')
  const statusPort = await getFreePort()
  const port = await getFreePort()
  await writeFile(file, renderNginxConfig({ mode: 'local', upstreams: [ports[0]!], stateDir: dir, port, statusPort, workerProcesses: 1, workerRlimitNofile: 4096, workerConnections: 1024, ...options }))
  const child = spawn('/bin/sh', ['-c', `${GUARD.replace('kill -QUIT', 'kill -TERM')}`, 'dns-guard', '/bin/sh', script, '-e', 'stderr', '-c', file], {
    stdio: ['pipe', 'ignore', 'pipe'],
    cwd: dir,
    env: { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`, NGINX_BIN: nginx, NGINX_DNS_INTERVAL_S: '1', ...env }
  })
  running.add(child)
  let log = ''
  child.stderr?.on('data', (d: Buffer) => { log += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { running.delete(child); resolve(code) }))
  t.teardown(() => { child.stdin?.end(); return exited })
  const workers = async (): Promise<string> => {
    const master = (await readFile(join(dir, 'run', 'nginx.pid'), 'utf8').catch(() => '')).trim()
    return master ? (await readFile(`/proc/${master}/task/${master}/children`, 'utf8').catch(() => '')).trim() : ''
  }
  /** Waits (up to `ms`) until none of the workers in `before` is left: nginx reloaded. */
  const reloadedFrom = async (before: string, ms = 6000): Promise<{ done: boolean, after: string }> => {
    const old = new Set(before.split(/\s+/))
    let after = before
    for (const until = Date.now() + ms; Date.now() < until; await sleep(100)) {
      after = await workers()
      if (after && after.split(/\s+/).every((pid) => !old.has(pid))) return { done: true, after }
    }
    return { done: false, after }
  }
  return { answers, port, statusPort, workers, reloadedFrom, log: () => log }
}

t.test('dns-reload.sh reloads nginx when the compose service\'s addresses change', async (t) => {
  // The fake addresses serve nothing: readiness is the next test's.
  const { answers, statusPort, workers, reloadedFrom, log: logged } = await underDnsReload(t, 'dns', '10.0.0.1\n', { NGINX_READY_PROBE: 'off' })
  let before = ''
  for (let i = 0; i < 100 && !(before = await workers()); i++) await sleep(50)
  t.ok(before, `nginx started under dns-reload.sh (workers ${before})`)
  await sleep(1500)
  t.equal(await workers(), before, 'no reload while the answer is the same')
  await writeFile(answers, '10.0.0.2\n10.0.0.1\n')
  // After a reload the old workers finish gracefully: wait until only new ones are left.
  const { done, after } = await reloadedFrom(before)
  t.ok(done, `a new address: nginx reloaded (workers ${before} -> ${after})`)
  t.match(logged(), /changed: 10\.0\.0\.1 -> 10\.0\.0\.1 10\.0\.0\.2 ; reloading nginx/)
  await writeFile(answers, '')
  await sleep(1500)
  t.equal(await workers(), after, 'an empty answer (DNS hiccup or scaled to 0) keeps the running config')
  t.equal((await fetch(`http://127.0.0.1:${statusPort}/nginx_status`)).status, 200, 'nginx still serving')
})

t.test('dns-reload.sh adds a new address only once it answers /health/ready; the running config serves meanwhile', async (t) => {
  // Two "replicas" on one port of two loopback addresses: 127.0.0.1 is up, 127.0.0.2 boots later.
  const port = await getFreePort()
  const ready = (host: string) => new Promise<Server>((resolve) => {
    const srv = createServer((req, res) => { res.writeHead(req.url === '/health/ready' ? 200 : 404).end() })
    srv.listen(port, host, () => resolve(srv))
  })
  const first = await ready('127.0.0.1')
  t.teardown(() => new Promise((resolve) => first.close(resolve)))
  const { answers, workers, reloadedFrom, log } = await underDnsReload(t, 'dns-ready', '127.0.0.1\n', { NGINX_UPSTREAM_PORT: String(port), NGINX_READY_WAIT_S: '60' })
  let before = ''
  for (let i = 0; i < 100 && !(before = await workers()); i++) await sleep(50)
  t.ok(before, 'nginx started under dns-reload.sh')

  await writeFile(answers, '127.0.0.1\n127.0.0.2\n')
  await sleep(3000)
  t.equal(await workers(), before, 'a replica that does not answer yet is not added: no reload')
  t.match(log(), /waiting until the new addresses are ready/)

  const second = await ready('127.0.0.2')
  t.teardown(() => new Promise((resolve) => second.close(resolve)))
  const added = await reloadedFrom(before)
  t.ok(added.done, `once it answers, nginx reloads (workers ${before} -> ${added.after})`)
  t.match(log(), /changed: 127\.0\.0\.1 -> 127\.0\.0\.1 127\.0\.0\.2 ; reloading nginx/)

  // Losing an address needs no readiness: at once.
  await writeFile(answers, '127.0.0.2\n')
  t.ok((await reloadedFrom(added.after, 4000)).done, 'a removed address reloads at once')
})


t.test('dns-reload.sh with --balance hash: one server line per address, so each user stays on one replica', async (t) => {
  // Three "replicas" on one port of three loopback addresses, as compose's replicas share port 3000.
  const port = await getFreePort()
  const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3']
  const servers = await Promise.all(hosts.map((host) => new Promise<Server>((resolve) => {
    const srv = createServer((req, res) => { res.writeHead(200, { 'x-served-by': host }).end() })
    srv.listen(port, host, () => resolve(srv))
  })))
  t.teardown(() => Promise.all(servers.map((srv) => { srv.closeAllConnections(); return new Promise((resolve) => srv.close(resolve)) })))
  const serversFile = join(work, 'dns-hash', 'nginx', 'servers.conf')
  const { answers, port: front, workers, reloadedFrom } = await underDnsReload(t, 'dns-hash', hosts.join('\n'), { NGINX_UPSTREAM_PORT: String(port) }, { balance: 'hash', serversFile, upstreams: [], rateLimit: false })
  let before = ''
  for (let i = 0; i < 100 && !(before = await workers()); i++) await sleep(50)
  t.ok(before, 'nginx started under dns-reload.sh')
  const { maxFails, failTimeoutS } = UPSTREAM_DEFAULTS
  t.equal(await readFile(serversFile, 'utf8'), hosts.map((h) => `server ${h}:${port} max_fails=${maxFails} fail_timeout=${failTimeoutS}s;\n`).join(''), 'dns-reload.sh wrote one server line per address, with the rendering\'s parameters')
  const place = async () => {
    const of = new Map<number, string>()
    for (let user = 1; user <= 60; user++) {
      const res = await fetch(`http://127.0.0.1:${front}/recommend/${user}?limit=${user % 7 + 1}`)
      of.set(user, res.headers.get('x-served-by') ?? String(res.status))
    }
    return of
  }
  const first = await place()
  const second = await place()
  t.same([...first].filter(([u, by]) => second.get(u) !== by), [], '60 users, asked twice: each on one replica both times')
  t.same([...new Set(first.values())].sort(), hosts, 'spread over all three')

  await writeFile(answers, '127.0.0.1\n127.0.0.3\n') // 127.0.0.2 scaled away
  const { done } = await reloadedFrom(before)
  t.ok(done, 'an address removed: nginx reloaded')
  t.equal((await readFile(serversFile, 'utf8')).split('\n').filter(Boolean).length, 2, 'with two server lines')
  const after = await place()
  t.same([...first].filter(([u, by]) => by !== '127.0.0.2' && after.get(u) !== by), [], 'the users of the remaining replicas kept theirs')
  t.ok([...after.values()].every((by) => by !== '127.0.0.2'), 'the removed replica\'s users moved to the others')
})
