// Clients that give up do not cost a replica new connections: through the real nginx binary (a
// local rendering of nginx/nginx.conf.template) in front of one fake replica that counts the TCP
// connections it accepts. 20 clients abort slow requests; nginx lets those finish and keeps their
// upstream connections, so the next 20 requests reuse them instead of opening 20 more. That
// matters because a busy Node replica accepts one connection per event-loop iteration (libuv
// >= 1.45): under load a burst of new connections waits seconds in its accept queue, those clients
// time out, and closing their upstream connections made the next burst (bench scenario zipf).
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startLocalNginx } from './helpers/nginx.ts'
import { getFreePort } from './helpers/services.ts'

const CLIENTS = 20
const SLOW_MS = 400
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const work = await mkdtemp(join(tmpdir(), 'recsvc-nginx-abort-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

// ---- the fake replica: /slow answers after SLOW_MS, anything else at once
let accepted = 0
let slowAnswered = 0
const replica = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const answer = () => res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'fake' }).end('{}')
    if (req.url?.startsWith('/slow')) setTimeout(() => { slowAnswered++; answer() }, SLOW_MS)
    else answer()
  })
})
replica.on('connection', () => { accepted++ })
const replicaPort = await getFreePort()
await new Promise<void>((resolve, reject) => { replica.once('error', reject); replica.listen(replicaPort, '127.0.0.1', () => resolve()) })
t.teardown(() => { replica.closeAllConnections(); return new Promise((resolve) => replica.close(resolve)) })

// ---- nginx (test/helpers/nginx.ts)
const ng = await startLocalNginx(join(work, 'state'), { upstreams: [replicaPort], rateLimit: false })
t.teardown(() => ng.stop())
const front = ng.front

t.test('clients that abort leave their upstream connections to the next requests', async (t) => {
  // Each client its own connection to nginx, so nginx needs one upstream connection per request.
  const agent = new Agent({ connections: CLIENTS * 2 })
  t.teardown(() => agent.close())

  const aborted = await Promise.allSettled(Array.from({ length: CLIENTS }, async (_, i) => {
    const res = await request(`${front}/slow/${i}`, { dispatcher: agent, signal: AbortSignal.timeout(100), headersTimeout: 5000 })
    await res.body.text()
  }))
  t.equal(aborted.filter((r) => r.status === 'rejected').length, CLIENTS, `all ${CLIENTS} clients gave up before the answer`)
  const afterBurst = accepted
  t.ok(afterBurst >= CLIENTS, `the replica accepted a connection for each of them (${afterBurst})`)

  await sleep(SLOW_MS + 400)
  t.equal(slowAnswered, CLIENTS, 'the replica answered every aborted request (nginx waited for them)')

  const next = await Promise.all(Array.from({ length: CLIENTS }, async (_, i) => {
    const res = await request(`${front}/recommend/${i + 1}`, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 })
    await res.body.text()
    return res.statusCode
  }))
  t.same(next, Array(CLIENTS).fill(200), `the next ${CLIENTS} requests answered 200`)
  t.ok(accepted - afterBurst <= 2, `and reused the aborted requests' upstream connections: ${accepted - afterBurst} new connection(s) accepted (closing them would mean ${CLIENTS})`)
})
