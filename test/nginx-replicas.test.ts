// End to end through the real nginx binary and three real API processes (tools/stack.ts with
// nginx on, config rendered from nginx/nginx.conf.template in local mode), on a Redis and a MySQL of
// the test's own: load balancing, cross-replica invalidation through the proxy, a replica killed
// under load and a rolling restart under load, both with zero failed client requests.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { Agent, request } from 'undici'
import { startTestStack } from './helpers/stack.ts'

const ADMIN_TOKEN = 'nginx-e2e-admin-token-0123456789'
const USERS = 300
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const t0 = Date.now()
const { stack } = await startTestStack({ label: 'nginx-e2e', replicas: 3, users: USERS, adminToken: ADMIN_TOKEN })
t.comment(`stack (Redis, MySQL, seed ${USERS} users, 3 replicas, nginx) up in ${Date.now() - t0} ms`)
const front = stack.frontUrl!
const portOf = (url: string) => new URL(url).port


const agent = new Agent({ connections: 64, keepAliveTimeout: 30_000 })
t.teardown(() => agent.close())

async function get (url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { dispatcher: agent, headers, headersTimeout: 10_000, bodyTimeout: 10_000 })
  const body = await res.body.text()
  const h = (name: string) => { const v = res.headers[name]; return Array.isArray(v) ? v[0] : v }
  return { status: res.statusCode, body, servedBy: h('x-served-by'), cache: h('x-cache'), requestId: h('x-request-id') }
}

interface LogEntry { time: string, status: number, upstream_addr: string, upstream_status: string, upstream_response_time: string }

async function accessLog (): Promise<LogEntry[]> {
  return (await readFile(stack.nginxAccessLog!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as LogEntry)
}

/** Requests nginx passed to more than one replica, after `skip` log lines. */
const retried = (log: LogEntry[], skip: number) => log.slice(skip).filter((e) => e.upstream_addr.includes(','))

interface Failure { at: number, path: string, status?: number, error?: string, body?: string }

/** `concurrency` clients sending GETs through nginx back to back until stop(). */
function startLoad (concurrency = 20) {
  let running = true
  let ok = 0
  const failures: Failure[] = []
  const served: Array<{ at: number, by: string }> = []
  const clients = Array.from({ length: concurrency }, async (_, c) => {
    for (let i = c; running; i += concurrency) {
      const path = `/recommend/${1 + (i % USERS)}`
      try {
        const r = await get(`${front}${path}`)
        if (r.status === 200) {
          ok++
          served.push({ at: Date.now(), by: r.servedBy ?? '?' })
        } else {
          failures.push({ at: Date.now(), path, status: r.status, body: r.body.slice(0, 200) })
        }
      } catch (err) {
        failures.push({ at: Date.now(), path, error: String(err) })
      }
      await sleep(10) // a steady load (~1,500 r/s), not a CPU-saturating one, on a small CI machine
    }
  })
  return {
    failures,
    served,
    get ok () { return ok },
    /** Resolves once `replica` has answered a request that started after `since`. */
    async servedBy (replica: string, since: number, timeoutMs = 10_000): Promise<boolean> {
      const until = Date.now() + timeoutMs
      while (Date.now() < until) {
        if (served.some((s) => s.by === replica && s.at > since)) return true
        await sleep(50)
      }
      return false
    },
    async stop () {
      running = false
      await Promise.all(clients)
    }
  }
}

t.test('300 requests through nginx reach all 3 replicas', async (t) => {
  const counts = new Map<string, number>()
  const ids = new Set<string>()
  for (let i = 0; i < 300; i += 10) {
    const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => get(`${front}/recommend/${1 + ((i + j) % USERS)}`)))
    for (const r of batch) {
      t.equal(r.status, 200, `200 (${r.status === 200 ? 'ok' : r.body.slice(0, 200)})`, { diagnostic: false })
      counts.set(r.servedBy ?? '?', (counts.get(r.servedBy ?? '?') ?? 0) + 1)
      if (r.requestId) ids.add(r.requestId)
      t.match(r.cache ?? '', /^(HIT-L1|HIT-L2|MISS|STALE)$/, 'X-Cache reaches the client', { diagnostic: false })
    }
  }
  t.same([...counts.keys()].sort(), ['api-1', 'api-2', 'api-3'], `distinct X-Served-By: ${JSON.stringify(Object.fromEntries(counts))}`)
  for (const [by, n] of counts) t.ok(n >= 30, `${by} served ${n} of 300 (least_conn spreads the load)`)
  t.equal(ids.size, 300, 'every answer carries its own X-Request-Id')

  const log = await accessLog()
  const upstreams = new Set(log.map((e) => e.upstream_addr.split(':').pop()))
  t.ok(stack.apiUrls.every((u) => upstreams.has(portOf(u))), 'the JSON access log names every replica as upstream_addr')
  t.ok(log.every((e) => e.upstream_response_time !== undefined), 'with upstream_response_time')

  // The replicas trust X-Forwarded-* from nginx only.
  for (const p of stack.processes().filter((p) => p.name.startsWith('api-'))) {
    const environ = (await readFile(`/proc/${p.pid}/environ`, 'utf8').catch(() => '')).split('\0')
    if (environ.length > 1) t.ok(environ.includes('TRUST_PROXY=127.0.0.1'), `${p.name} runs with TRUST_PROXY=127.0.0.1`)
  }
})

t.test('an invalidation through nginx reaches every replica: none serves its old answer', async (t) => {
  const user = 7
  const limits = Array.from({ length: 12 }, (_, i) => i + 1)
  // Every replica holds the user's answer (all limits) in its own L1.
  for (const limit of limits) {
    for (const api of stack.apiUrls) {
      await get(`${api}/recommend/${user}?limit=${limit}`)
      const again = await get(`${api}/recommend/${user}?limit=${limit}`)
      t.equal(again.cache, 'HIT-L1', `warm: ${api} limit ${limit}`, { diagnostic: false })
    }
  }
  const old = JSON.parse((await get(`${stack.apiUrls[0]}/recommend/${user}`)).body).metadata.generated_at as string
  await sleep(5) // generated_at has millisecond resolution
  const inv = await request(`${front}/invalidate-cache/${user}`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  const invBody = await inv.body.json() as { invalidated: number[], replicas?: { acked: number, expected: number } }
  t.equal(inv.statusCode, 200, 'POST /invalidate-cache through nginx')
  t.same(invBody.invalidated, [user])
  if (invBody.replicas) t.equal(invBody.replicas.acked, 3, 'acknowledged by all 3 replicas')

  const after = []
  for (const limit of limits) after.push(await get(`${front}/recommend/${user}?limit=${limit}`))
  t.equal(after[0]!.cache, 'MISS', 'the first read after the invalidation is a MISS')
  t.ok(after.every((r) => JSON.parse(r.body).metadata.generated_at > old), 'every answer after the invalidation is new')
  t.same([...new Set(after.map((r) => r.servedBy))].sort(), ['api-1', 'api-2', 'api-3'], 'from every replica')
  for (const api of stack.apiUrls) {
    const first = await get(`${api}/recommend/${user}?limit=3`)
    t.not(JSON.parse(first.body).metadata.generated_at, old, `${api}: not the answer from before`)
  }
})

t.test('killing a replica (SIGKILL) under load: zero failed client requests', async (t) => {
  const skip = (await accessLog()).length
  const load = startLoad()
  await sleep(1000)
  const killedAt = Date.now()
  await stack.killReplica(1, 'SIGKILL')
  const gone = Date.now()
  await sleep(2500)
  await load.stop()
  t.comment(`${load.ok} requests, ${load.failures.length} failed; api-2 killed ${killedAt - t0} ms into the file`)
  t.same(load.failures, [], 'no client request failed')
  t.ok(load.served.filter((s) => s.at < killedAt && s.by === 'api-2').length > 0, 'api-2 served before the kill')
  t.equal(load.served.filter((s) => s.at > gone + 50 && s.by === 'api-2').length, 0, 'and nothing after it')
  t.ok(load.ok > 200, `the load kept being served (${load.ok} requests)`)
  const dead = `127.0.0.1:${portOf(stack.apiUrls[1]!)}`
  const moved = retried(await accessLog(), skip)
  t.ok(moved.some((e) => e.upstream_addr.startsWith(`${dead},`) && e.status === 200), `nginx passed requests that failed on api-2 to another replica (${moved.length}: ${[...new Set(moved.map((e) => `${e.upstream_addr} [${e.upstream_status}]`))].slice(0, 3).join('; ')})`)

  // back to three for the next test
  const restartAt = Date.now()
  await stack.startReplica(1)
  const probe = startLoad(4)
  t.ok(await probe.servedBy('api-2', restartAt), 'nginx sends requests to api-2 again once it is back')
  await probe.stop()
  t.same(probe.failures, [])
})

t.test('rolling restart under load (SIGTERM, drain, start, one at a time): zero failed client requests', async (t) => {
  const skip = (await accessLog()).length
  const load = startLoad()
  await sleep(500)
  for (let i = 0; i < 3; i++) {
    const name = `api-${i + 1}`
    const ts = Date.now()
    // The replica, asked directly while it drains: readiness fails before its port closes.
    const seen: string[] = []
    let watching = i === 0
    const watcher = (async () => {
      while (watching) {
        try {
          const r = await request(`${stack.apiUrls[i]}/health/ready`, { headersTimeout: 2000, reset: true })
          const body = await r.body.json() as { status?: string }
          seen.push(`${r.statusCode} ${body.status}`)
        } catch {
          seen.push('refused')
        }
        await sleep(50)
      }
    })()
    const restart = stack.restartReplica(i)
    restart.catch(() => {}) // awaited below
    if (i === 0) {
      await (async () => { for (let k = 0; k < 100 && !seen.includes('refused'); k++) await sleep(50) })()
      watching = false
      await watcher
      const firstDown = seen.findIndex((s) => s !== '200 ok')
      t.match(seen[firstDown] ?? '', /^503 shutting_down$/, `${name}: readiness fails first (${[...new Set(seen)].join(' -> ')})`)
      t.ok(seen.includes('refused'), `${name}: then its port closes`)
    }
    await restart
    t.ok(await load.servedBy(name, Date.now()), `${name} restarted in ${Date.now() - ts} ms and serves through nginx again`)
  }
  await sleep(500)
  await load.stop()
  t.comment(`${load.ok} requests during the rolling restart, ${load.failures.length} failed`)
  t.same(load.failures, [], 'no client request failed')
  t.ok(load.ok > 500, `the load kept being served (${load.ok} requests)`)
  const moved = retried(await accessLog(), skip)
  t.comment(`${moved.length} request(s) retried by nginx on another replica: ${[...new Set(moved.map((e) => e.upstream_status))].join(', ')}`)
})

t.test('stop() leaves nothing running', async (t) => {
  const procs = stack.processes()
  t.same(procs.map((p) => p.name).sort(), ['api-1', 'api-2', 'api-3', 'nginx'], 'the stack ran 3 replicas and nginx (Redis and MySQL are the test\'s)')
  await stack.stop()
  t.ok(stack.processes().every((p) => !p.running), 'all stopped')
  const alive = procs.filter((p) => { try { process.kill(p.pid, 0); return true } catch { return false } })
  t.same(alive, [], 'no pid left')
  t.comment(`whole file: ${Date.now() - t0} ms`)
})
