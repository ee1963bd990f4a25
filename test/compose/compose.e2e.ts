// `docker-compose up --scale api=6`, for real: the compose stack of this checkout on this machine's
// Docker Engine, from images built here (official base images where a registry is reachable,
// else, and by default in CI, the stand-ins of tools/docker/stand-ins.sh).
//
// Not part of `npm test` (it takes minutes and needs root for dockerd): `npm run test:compose`,
// which .ci/run calls after `npm test`. Traffic goes only to 127.0.0.1 and to this project's own
// containers. Everything it does is scoped to its own compose project (`-p recsvce2e<pid>`); it
// starts dockerd only when none is running, and stops what it started.
import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Agent, request } from 'undici'
import { findBinary } from '../../tools/servers/binaries.ts'
import { freePort } from '../../tools/servers/ports.ts'

const execFileP = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const t0 = Date.now()
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`

const dockerBin = findBinary('docker')
const composeBin = findBinary('docker-compose')
if (!dockerBin || !composeBin) throw new Error('docker and docker-compose are needed (apt-get install docker.io docker-compose)')
const docker: string = dockerBin
const compose: string = composeBin

async function run (cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv, timeoutMs?: number, allowFail?: boolean } = {}): Promise<{ stdout: string, stderr: string, code: number }> {
  try {
    const r = await execFileP(cmd, args, { cwd: root, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 })
    return { stdout: r.stdout, stderr: r.stderr, code: 0 }
  } catch (err) {
    const e = err as { stdout?: string, stderr?: string, code?: number | string, message: string }
    if (opts.allowFail) return { stdout: e.stdout ?? '', stderr: e.stderr ?? e.message, code: typeof e.code === 'number' ? e.code : 1 }
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${(e.stderr ?? '').slice(-3000)}`)
  }
}

// ---- Docker Engine: the running one, or one we start and stop
let dockerd: ChildProcess | undefined
if ((await run(docker, ['info'], { allowFail: true, timeoutMs: 20_000 })).code !== 0) {
  const bin = findBinary('dockerd')
  if (!bin) throw new Error('no Docker daemon answers and dockerd is not installed (apt-get install docker.io)')
  t.comment('starting dockerd (it was not running); it is stopped at the end')
  dockerd = spawn(bin, [], { stdio: 'ignore', detached: false })
  const until = Date.now() + 60_000
  while ((await run(docker, ['info'], { allowFail: true, timeoutMs: 10_000 })).code !== 0) {
    if (Date.now() > until || dockerd.exitCode !== null) throw new Error('dockerd did not come up within 60 s')
    await sleep(500)
  }
}
t.teardown(async () => {
  if (dockerd === undefined) return
  dockerd.kill('SIGTERM')
  await new Promise((resolve) => dockerd!.once('exit', resolve))
})

// ---- base images: stand-ins built from Debian's packages unless told to use the official ones
const imageEnv: Record<string, string> = {}
if (process.env.RECSVC_COMPOSE_OFFICIAL_IMAGES !== '1') {
  const ts = Date.now()
  const out = await run('bash', [join(root, 'tools/docker/stand-ins.sh'), '--env'], { timeoutMs: 20 * 60_000 })
  for (const [, k, v] of out.stdout.matchAll(/(RECSVC_\w+_IMAGE)=(\S+)/g)) imageEnv[k!] = v!
  t.comment(`stand-in base images ready in ${((Date.now() - ts) / 1000).toFixed(0)} s: ${Object.values(imageEnv).join(', ')}`)
}

// ---- this test's compose project
const project = `recsvce2e${process.pid}`
const port = await freePort()
const adminToken = randomBytes(18).toString('base64url')
const apiImage = `${project}-api:local`
const work = await mkdtemp(join(tmpdir(), `${project}-`))
const override = join(work, 'test-override.yml')
// Only what the test needs on top of the committed file: an admin token (none is committed), and
// no rate limits (nginx's per IP, the app's per client): the load below comes from one address.
await writeFile(override, [
  'services:',
  '  api:',
  '    environment:',
  `      ADMIN_TOKEN: "${adminToken}"`,
  '      RATE_LIMIT_ENABLED: "false"',
  ''
].join('\n'))
const env = { ...process.env, ...imageEnv, RECSVC_PORT: String(port), RECSVC_API_IMAGE: apiImage, RECSVC_NGINX_CONF: 'nginx.compose.no-rate-limit.conf', COMPOSE_PROJECT_NAME: project }
const dc = (args: string[], timeoutMs = 300_000) => run(compose, ['-p', project, '-f', join(root, 'docker-compose.yml'), '-f', override, ...args], { env, timeoutMs })

t.teardown(async () => {
  const down = await run(compose, ['-p', project, '-f', join(root, 'docker-compose.yml'), '-f', override, 'down', '-v', '--remove-orphans', '--timeout', '10'], { env, allowFail: true, timeoutMs: 180_000 })
  if (down.code !== 0) console.error(`docker-compose down failed:\n${down.stderr}`)
  // The images this project built (compose's down removes containers, networks and volumes only).
  await run(docker, ['image', 'rm', apiImage, `${project}_seed`], { allowFail: true })
  await rm(work, { recursive: true, force: true })
})

const front = `http://127.0.0.1:${port}`
const agent = new Agent({ connections: 64, keepAliveTimeout: 4000 })
t.teardown(() => agent.close())

/** `fresh`: a connection of its own (closed after the response). The load uses it so that a failure
 *  can only be the stack's: a kept-alive client connection that nginx closes while idle (it does on
 *  every reload, as dns-reload.sh triggers on scaling) races with the client's next request, which
 *  HTTP clients retry and which says nothing about the replicas. */
async function get (path: string, fresh = false): Promise<{ status: number, servedBy: string, cache: string, body: string }> {
  const res = await request(`${front}${path}`, { dispatcher: agent, headersTimeout: 15_000, bodyTimeout: 15_000, reset: fresh })
  const body = await res.body.text()
  return { status: res.statusCode, servedBy: String(res.headers['x-served-by'] ?? ''), cache: String(res.headers['x-cache'] ?? ''), body }
}

async function containers (service: string): Promise<Array<{ id: string, name: string, hostname: string, health: string, running: boolean }>> {
  const ids = (await dc(['ps', '-q', service])).stdout.split('\n').filter(Boolean)
  if (ids.length === 0) return []
  const out = (await run(docker, ['inspect', '-f', '{{.Id}} {{.Name}} {{.Config.Hostname}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Running}}', ...ids])).stdout
  return out.trim().split('\n').map((l) => {
    const [id = '', name = '', hostname = '', health = '', running = ''] = l.split(' ')
    return { id, name: name.replace(/^\//, ''), hostname, health, running: running === 'true' }
  })
}

async function waitHealthy (service: string, n: number, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs
  for (;;) {
    const cs = await containers(service)
    if (cs.length === n && cs.every((c) => c.health === 'healthy')) return
    if (Date.now() > until) {
      const sick = cs.filter((c) => c.health !== 'healthy')
      const logs = await Promise.all(sick.map(async (c) => `--- ${c.name} (${c.health}, running ${String(c.running)}) ---\n${(await run(docker, ['logs', '--tail', '30', c.id], { allowFail: true })).stdout}`))
      throw new Error(`${service}: ${cs.length - sick.length}/${n} healthy after ${timeoutMs} ms\n${logs.join('\n')}`)
    }
    await sleep(1000)
  }
}

/** Replica ids are `<hostname>-<pid>`; the hostname is the container's. */
const hostOf = (servedBy: string) => servedBy.replace(/-\d+$/, '')

/** GETs through nginx from `workers` concurrent loops until stopped: what failed and who answered when. */
function load (workers = 16) {
  let stopped = false
  const failures: string[] = []
  const seen = new Map<string, number>() // host -> first time seen
  let ok = 0
  const loops = Array.from({ length: workers }, async (_v, w) => {
    let i = w
    while (!stopped) {
      i = (i * 7919 + 13) % 10_000
      try {
        const r = await get(`/recommend/${1 + i}`, true)
        if (r.status === 200 || r.status === 404) {
          ok++
          const h = hostOf(r.servedBy)
          if (!seen.has(h)) seen.set(h, Date.now())
        } else {
          failures.push(`${r.status} ${r.body.slice(0, 200)}`)
        }
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
  })
  return {
    seen,
    get ok () { return ok },
    failures,
    async stop () { stopped = true; await Promise.all(loops) }
  }
}

// ------------------------------------------------------------------------------------------------

t.test('docker-compose up -d --build --scale api=6: every service healthy, the seeder ran once', async (t) => {
  const ts = Date.now()
  await dc(['build'], 20 * 60_000)
  const buildS = (Date.now() - ts) / 1000
  const tu = Date.now()
  await dc(['up', '-d', '--scale', 'api=6'], 10 * 60_000)
  await waitHealthy('api', 6)
  await waitHealthy('nginx', 1)
  t.comment(`build ${buildS.toFixed(0)} s, up until all healthy ${((Date.now() - tu) / 1000).toFixed(0)} s (at ${elapsed()})`)
  for (const svc of ['mysql', 'redis']) t.same((await containers(svc)).map((c) => c.health), ['healthy'], `${svc} healthy`)
  t.equal((await containers('api')).filter((c) => c.health === 'healthy').length, 6, '6 api replicas healthy (the image HEALTHCHECK passes)')
  const seeds = (await run(docker, ['ps', '-a', '--filter', `label=com.docker.compose.project=${project}`, '--filter', 'label=com.docker.compose.service=seed', '--format', '{{.ID}}'])).stdout.split('\n').filter(Boolean)
  t.equal(seeds.length, 1, 'one seeder container')
  const exit = (await run(docker, ['inspect', '-f', '{{.State.ExitCode}} {{.State.Running}}', seeds[0]!])).stdout.trim()
  t.equal(exit, '0 false', 'the seeder ran and exited 0')
  const logs = (await dc(['logs', '--no-color', 'seed'])).stdout
  t.match(logs, /seeded [\d,]+ rows/, 'it seeded the empty database')
})

t.test('the image: non-root, and its size', async (t) => {
  const [user, size] = (await run(docker, ['image', 'inspect', '-f', '{{.Config.User}} {{.Size}}', apiImage])).stdout.trim().split(' ')
  t.equal(user, 'node', 'runs as the unprivileged node user')
  t.comment(`image ${apiImage}: ${(Number(size) / 1024 / 1024).toFixed(0)} MiB`)
  const id = (await containers('api'))[0]!.id
  t.equal((await run(docker, ['exec', id, 'id', '-u'])).stdout.trim(), '1000', 'the process runs as uid 1000')
})

t.test('through 127.0.0.1: requests spread over all 6 replicas (X-Served-By is the container)', async (t) => {
  const hosts = new Map<string, number>()
  for (let i = 0; i < 120; i++) {
    const r = await get(`/recommend/${1 + i}`)
    t.equal(r.status, 200, `GET /recommend/${1 + i}`)
    hosts.set(hostOf(r.servedBy), (hosts.get(hostOf(r.servedBy)) ?? 0) + 1)
  }
  const api = await containers('api')
  t.same([...hosts.keys()].sort(), api.map((c) => c.hostname).sort(), 'every replica answered, and only replicas of this project')
  t.comment(`per replica: ${[...hosts.values()].join(', ')}`)
})

t.test('an invalidation is acked 6 of 6, and events are read back from every replica', async (t) => {
  const res = await request(`${front}/invalidate-cache`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ user_ids: [1, 2, 3] }) })
  const body = await res.body.json() as { replicas?: { acked: number, expected: number } }
  t.equal(res.statusCode, 200)
  t.same(body.replicas, { acked: 6, expected: 6 }, 'acked by every replica')

  // A seeded user's answer cached on every replica, then a burst of searches in a category it does
  // not lead with: every replica must answer with that category first (its cache entry dropped).
  const user = 42
  const first = await get(`/recommend/${user}`)
  t.equal(first.status, 200, `user ${user} exists`)
  type Answer = { recommendations: { recommended_categories: string[], explore_categories: string[] } }
  const before = (JSON.parse(first.body) as Answer).recommendations
  const api = await containers('api')
  const onReplica = async (c: { id: string }) => {
    const js = `fetch('http://127.0.0.1:3000/recommend/${user}').then(async (r) => console.log(JSON.stringify({ cache: r.headers.get('x-cache'), body: await r.json() })))`
    return JSON.parse((await run(docker, ['exec', c.id, 'node', '-e', js])).stdout) as { cache: string, body: Answer }
  }
  for (const c of api) { await onReplica(c); t.equal((await onReplica(c)).cache, 'HIT-L1', `${c.name}: cached before the event`) }
  const category = before.explore_categories[0] ?? before.recommended_categories.at(-1)!
  t.not(before.recommended_categories[0], category, `${category} is not first before`)
  const searches = Array.from({ length: 100 }, () => ({ type: 'search', user_id: user, category, query: `${category} ideas` }))
  const ev = await request(`${front}/events`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(searches) })
  const evBody = await ev.body.json() as { replicas?: { acked: number, expected: number } }
  t.equal(ev.statusCode, 201, 'POST /events stored')
  t.same(evBody.replicas, { acked: 6, expected: 6 }, 'its invalidation acked by every replica')
  for (const c of api) {
    const a = await onReplica(c)
    t.equal(a.body.recommendations.recommended_categories[0], category, `${c.name}: the searched category comes first (${a.cache})`)
  }
})

t.test('under load: scale 6 -> 3 -> 6, a killed replica, replicas restarted one by one: no failed GET', async (t) => {
  const l = load()
  t.teardown(() => l.stop())
  await sleep(2000)
  await dc(['up', '-d', '--no-recreate', '--scale', 'api=3'])
  await waitHealthy('api', 3)
  await sleep(3000)
  const kept = new Set((await containers('api')).map((c) => c.hostname))
  const up = Date.now()
  await dc(['up', '-d', '--no-recreate', '--scale', 'api=6'])
  const fresh = (await containers('api')).map((c) => c.hostname).filter((h) => !kept.has(h))
  t.equal(fresh.length, 3, '3 new replicas')
  // Each new replica's traffic, counted from the moment it listens (its log's "Server listening"):
  // nginx/dns-reload.sh adds it once it answers /health/ready. Boot time is the replica's own.
  await waitHealthy('api', 6)
  const until = Date.now() + 30_000
  while (!fresh.every((h) => l.seen.has(h)) && Date.now() < until) await sleep(250)
  for (const c of (await containers('api')).filter((x) => fresh.includes(x.hostname))) {
    const logs = (await run(docker, ['logs', c.id])).stdout
    const listening = logs.split('\n').map((line) => { try { return JSON.parse(line) as { msg?: string, time?: number } } catch { return {} } })
      .find((e) => e.msg?.startsWith('Server listening'))?.time
    const seenAt = l.seen.get(c.hostname)
    if (listening === undefined || seenAt === undefined) { t.fail(`${c.name}: listening at ${String(listening)}, first answer at ${String(seenAt)}`); continue }
    t.ok(seenAt - listening <= 10_000, `${c.name} receives traffic ${((seenAt - listening) / 1000).toFixed(1)} s after it listens (<= 10 s; ${((listening - up) / 1000).toFixed(1)} s to boot)`)
  }
  await waitHealthy('api', 6)
  t.same(l.failures.slice(0, 5), [], `scale down and up: 0 failed of ${l.ok} GETs`)

  const victim = (await containers('api'))[2]!
  const before = l.failures.length
  await run(docker, ['kill', victim.id])
  await sleep(5000)
  t.same(l.failures.slice(before, before + 5), [], `docker kill ${victim.name}: 0 failed GETs`)
  // A killed container counts as stopped by hand: its restart policy leaves it down.
  await run(docker, ['start', victim.id])
  await waitHealthy('api', 6)

  const beforeRestart = l.failures.length
  for (const c of await containers('api')) {
    await run(docker, ['restart', '-t', '30', c.id], { timeoutMs: 120_000 })
    await waitHealthy('api', 6)
  }
  t.same(l.failures.slice(beforeRestart, beforeRestart + 5), [], 'each replica restarted in turn (SIGTERM, drain, start): 0 failed GETs')
  await l.stop()
  t.equal(l.failures.length, 0, `${l.ok} GETs, ${l.failures.length} failed`)
  t.comment(`load phase done at ${elapsed()}`)
})

t.test('docker-compose down -v removes everything the project created', async (t) => {
  await dc(['down', '-v', '--remove-orphans', '--timeout', '10'], 180_000)
  const label = `label=com.docker.compose.project=${project}`
  t.equal((await run(docker, ['ps', '-a', '-q', '--filter', label])).stdout.trim(), '', 'no containers')
  t.equal((await run(docker, ['network', 'ls', '-q', '--filter', label])).stdout.trim(), '', 'no networks')
  t.equal((await run(docker, ['volume', 'ls', '-q', '--filter', label])).stdout.trim(), '', 'no volumes')
  t.comment(`compose test total ${elapsed()}`)
})

