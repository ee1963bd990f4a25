// Benchmarks GET /recommend/:id per cache tier against a bare Fastify baseline measured in the
// same run. Servers run as separate processes (compiled dist/), the load generator (autocannon)
// in this one; everything on 127.0.0.1.
//
//   npm run build && npx tsx bench/recommend-tiers.ts [--runs 3] [--duration 5] [--connections 50]
import { spawn, type ChildProcess } from 'node:child_process'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { freePort } from '../tools/servers/ports.ts'
import { startServices } from '../tools/servers/throwaway.ts'
import { loadFixture, FIXTURE_USERS } from '../tools/fixture.ts'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' }
  }
})
const runs = Number(args.runs)
const duration = Number(args.duration)
const connections = Number(args.connections)
const root = fileURLToPath(new URL('..', import.meta.url))

async function startProcess (cmd: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, cmd, { cwd: root, env: { ...process.env, ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] })
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/recommend/1`)
      await res.arrayBuffer()
      return child
    } catch { await new Promise((resolve) => setTimeout(resolve, 100)) }
  }
  child.kill('SIGKILL')
  throw new Error(`${cmd.join(' ')} did not start`)
}

async function stop (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

async function load (port: number, paths: () => string, seconds: number) {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, path: paths() }) }]
  })
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const services = await startServices()
try {
  await loadFixture(services.mysql.url)
  const baseEnv = {
    MYSQL_URL: services.mysql.url,
    REDIS_URL: services.redis.url,
    REDIS_KEY_PREFIX: `bench${process.pid}:`,
    // The default LOG_LEVEL (info), as users run it: no per-request lines since issue 7.
    LOG_LEVEL: 'info',
    SCORER_THREADS: '1',
    NODE_ENV: 'production',
    // One load generator is one client: the app's per-client rate limits would measure themselves.
    RATE_LIMIT_ENABLED: 'false'
  }
  const sample = await (async () => {
    const port = await freePort()
    const p = await startProcess(['dist/src/server.js'], baseEnv, port)
    const body = await (await fetch(`http://127.0.0.1:${port}/recommend/7`)).text()
    await stop(p)
    return body
  })()

  let n = 0
  const oneUser = () => '/recommend/7'
  const rotating = () => `/recommend/${1 + (n++ % FIXTURE_USERS)}`
  const scenarios = [
    { name: 'baseline (bare Fastify, same bytes)', cmd: ['--import', 'tsx', 'bench/baseline-server.ts'], env: { BASELINE_BODY: sample }, paths: oneUser },
    { name: 'HIT-L1 (one hot user)', cmd: ['dist/src/server.js'], env: baseEnv, paths: oneUser },
    { name: 'HIT-L1 (120 users rotating)', cmd: ['dist/src/server.js'], env: baseEnv, paths: rotating },
    // An L1 TTL of 1 ms makes every read go to Redis.
    { name: 'HIT-L2 (120 users, L1 off)', cmd: ['dist/src/server.js'], env: { ...baseEnv, L1_TTL_MS: '1' }, paths: rotating },
    // Fresh for 1 s with no grace: every user is recomputed from MySQL once a second, so MISS, the
    // lease and the scorer are on the path; reads in between are HIT-L2.
    { name: 'fresh for 1 s (120 users: each recomputed every second, HIT-L2 between)', cmd: ['dist/src/server.js'], env: { ...baseEnv, L1_TTL_MS: '1', L2_TTL_S: '1', CACHE_GRACE_S: '0', LEASE_WAIT_MS: '0' }, paths: rotating }
  ]

  const rows: Array<{ name: string, rps: number, p50: number, p99: number, bad: number }> = []
  for (const s of scenarios) {
    const port = await freePort()
    const child = await startProcess(s.cmd, s.env, port)
    try {
      await load(port, s.paths, 1) // warm-up: fills caches, JIT
      const results = []
      for (let i = 0; i < runs; i++) results.push(await load(port, s.paths, duration))
      rows.push({
        name: s.name,
        rps: median(results.map((r) => r.rps)),
        p50: median(results.map((r) => r.p50)),
        p99: median(results.map((r) => r.p99)),
        bad: results.reduce((a, r) => a + r.non2xx + r.errors, 0)
      })
    } finally {
      await stop(child)
    }
  }
  const base = rows[0]?.rps ?? 1
  console.log(`\n${runs} runs × ${duration} s, ${connections} connections, medians; app rate limits off; ratio = req/s ÷ baseline req/s\n`)
  console.log('| scenario | req/s | ratio | p50 ms | p99 ms | non-2xx + errors |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (const r of rows) console.log(`| ${r.name} | ${Math.round(r.rps)} | ${(r.rps / base).toFixed(2)} | ${r.p50} | ${r.p99} | ${r.bad} |`)
} finally {
  await services.stop()
}
