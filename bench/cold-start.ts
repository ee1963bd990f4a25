// Issue 7: cold start at 1000 connections. Every run starts from empty caches (fresh replicas, so
// an empty LRU, and no recsvc keys in Redis), in the service's default configuration (LOG_LEVEL
// included); the load comes from autocannon in this process, over 127.0.0.1 only.
//
//   zipf-nginx   `startStack` of the checkout under test: 2 replicas behind the real nginx (per-IP
//                limits off), 1000 connections for --duration s, GET /recommend/:id with ids drawn
//                from Zipf(s = 1.1) over the seeded users. Statuses, errors, latency, the X-Cache
//                mix, the share of personalised answers (whole run and last 10 s) and each
//                replica's event-loop delay p99 (its own /metrics, scraped before and after).
//   cold-single  1 replica, no nginx, 100 connections for --cold-duration s, every id drawn once
//                (a seeded permutation of the users), so nearly every request is a miss; against
//                the store ceiling (bench/store-ceiling-server.ts: the same SQL, no scoring, no
//                cache) in the same run.
//   cold-batch   1 replica: GET /batch-recommend with 20 distinct cold ids per request at 100
//                connections (ids/s against single cold req/s, measured in the same run), then one
//                request at a time: a batch of 100 cold ids against one cold id (p50 latency).
//
//   npx tsx bench/cold-start.ts [--runs 3] [--duration 30] [--cold-duration 10]
//       [--only zipf-nginx,cold-single,cold-batch] [--app-dir DIR] [--users 100000] [--fresh]
//       [--build] [--state-dir DIR] [--port 18080] [--api-base-port 13001] [--json FILE]
//
// --app-dir runs the same scenarios against another checkout of the project (with node_modules and
// a built dist/, or pass --build), e.g. a worktree of the code before a change. The stack code
// (tools/stack/start.ts) and the server are that checkout's; the load generator, the samplers and
// the store ceiling are this one's. The state directory (databases) is per checkout under
// /tmp/recsvc-bench-state/; the first start seeds --users users (--fresh wipes it first).
// Results: Markdown tables on stdout, progress on stderr, JSON in bench/results/.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { freePort } from '../tools/servers/ports.ts'
import { availableParallelism, loadavg } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import type { Stack, StackOptions } from '../tools/stack.ts'
import { permutation, zipf, zipfHeadShare } from './zipf.ts'

// ---------------------------------------------------------------- arguments

const SCENARIOS = ['zipf-nginx', 'cold-single', 'cold-batch'] as const
type ScenarioName = typeof SCENARIOS[number]

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '30' },
    'cold-duration': { type: 'string', default: '10' },
    only: { type: 'string', default: SCENARIOS.join(',') },
    'app-dir': { type: 'string' },
    users: { type: 'string', default: '100000' },
    'zipf-s': { type: 'string', default: '1.1' },
    connections: { type: 'string', default: '1000' },
    'cold-connections': { type: 'string', default: '100' },
    sequential: { type: 'string', default: '20' },
    'state-dir': { type: 'string' },
    fresh: { type: 'boolean', default: false },
    build: { type: 'boolean', default: false },
    port: { type: 'string', default: '18080' },
    'api-base-port': { type: 'string', default: '13001' },
    json: { type: 'string' },
    'max-minutes': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false }
  }
})
if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0]!.replace(/^\/\/ ?/gm, ''))
  process.exit(0)
}
const num = (name: string, v: string, min: number, max: number, integer = true): number => {
  const n = Number(v)
  if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    console.error(`--${name} must be ${integer ? 'an integer' : 'a number'} ${min}..${max}, got ${JSON.stringify(v)}`)
    process.exit(2)
  }
  return n
}
const runs = num('runs', args.runs, 1, 50)
const duration = num('duration', args.duration, 1, 3600)
const coldDuration = num('cold-duration', args['cold-duration'], 1, 3600)
const users = num('users', args.users, 1000, 10_000_000)
const zipfS = num('zipf-s', args['zipf-s'], 0, 10, false)
const connections = num('connections', args.connections, 1, 20_000)
const coldConnections = num('cold-connections', args['cold-connections'], 1, 20_000)
const sequentialN = num('sequential', args.sequential, 1, 1000)
const frontPort = num('port', args.port, 1, 65535)
const apiBasePort = num('api-base-port', args['api-base-port'], 1, 65000)
const only = new Set(args.only.split(',').map((s) => s.trim()).filter(Boolean))
for (const s of only) {
  if (!(SCENARIOS as readonly string[]).includes(s)) {
    console.error(`--only: unknown scenario ${JSON.stringify(s)}; known: ${SCENARIOS.join(', ')}`)
    process.exit(2)
  }
}
const wants = (s: ScenarioName) => only.has(s)

const benchDir = fileURLToPath(new URL('.', import.meta.url))
const thisRoot = resolve(benchDir, '..')
const appDir = resolve(args['app-dir'] ?? thisRoot)
const slug = `${basename(appDir).replace(/[^A-Za-z0-9._-]/g, '_')}-${createHash('sha1').update(appDir).digest('hex').slice(0, 8)}`
const stateDir = resolve(args['state-dir'] ?? join('/tmp/recsvc-bench-state', slug))
const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '')
const jsonFile = resolve(args.json ?? join(benchDir, 'results', `cold-start-${stamp}.json`))
// next to the state dir, not in it: --fresh wipes the state dir
const logFile = `${stateDir}-bench-${stamp}.log`
const REDIS_PREFIX = 'recsvc:' // REDIS_KEY_PREFIX's default; the env that would change it is stripped below

// Upper bound on the whole invocation: stack start-ups (seeding 100k users included) plus every
// load phase, with a wide margin. Past it everything started is stopped and the process exits 1.
const estimateS = 240 + runs * ((wants('zipf-nginx') ? duration + 40 : 0) + (wants('cold-single') ? 2 * coldDuration + 30 : 0) +
  (wants('cold-batch') ? 2 * coldDuration + 60 + sequentialN * 4 : 0))
const maxMs = 60_000 * (args['max-minutes'] ? num('max-minutes', args['max-minutes'], 1, 24 * 60) : Math.ceil(3 * estimateS / 60) + 10)

// ---------------------------------------------------------------- small helpers

const t0All = Date.now()
const since = () => `${((Date.now() - t0All) / 1000).toFixed(0).padStart(4)} s`
const log = (msg: string) => { console.error(`[bench ${since()}] ${msg}`) }
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const median = (xs: number[]): number => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const m = v.length >> 1
  return v.length % 2 ? v[m] as number : ((v[m - 1] as number) + (v[m] as number)) / 2
}
/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] as number
}
const round = (x: number, d = 1) => Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x
const inc = (o: Record<string, number>, k: string, by = 1) => { o[k] = (o[k] ?? 0) + by }
const sum = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0)


// ---------------------------------------------------------------- cleanup: whatever happens

const cleanups: Array<() => Promise<void>> = []
let activeCannon: autocannon.Instance | undefined
const abort = new AbortController()
let cleaning: Promise<void> | undefined
function cleanupAll (): Promise<void> {
  cleaning ??= (async () => {
    abort.abort()
    try { activeCannon?.stop() } catch {}
    for (const c of cleanups.splice(0).reverse()) {
      try { await c() } catch (err) { log(`cleanup failed: ${(err as Error).message}`) }
    }
  })()
  return cleaning
}
let signalled = 0
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (signalled++ > 0) return
    log(`${sig}: stopping everything this benchmark started…`)
    void cleanupAll().finally(() => process.exit(130))
  })
}
const watchdog = setTimeout(() => {
  log(`still running after ${maxMs / 60_000} min (--max-minutes): stopping everything`)
  void cleanupAll().finally(() => process.exit(1))
}, maxMs)
watchdog.unref()

// ---------------------------------------------------------------- the checkout under test

function gitInfo (dir: string): { commit: string, dirty: boolean, describe: string } {
  const git = (...a: string[]) => spawnSync('git', ['-C', dir, ...a], { encoding: 'utf8' }).stdout?.trim() ?? ''
  return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain', '--untracked-files=no') !== '', describe: git('log', '-1', '--format=%h %s') }
}

function newestMtime (dir: string): number {
  let newest = 0
  if (!existsSync(dir)) return 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/\.(ts|js)$/.test(e.name)) continue
    newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs)
  }
  return newest
}

/** The environment of the stack and its replicas: this one without the service's own variables
 *  (those listed in the checkout's .env.example, the URLs, NODE_OPTIONS), so the replicas run in
 *  their default configuration and the stack starts its own Redis and MariaDB. */
function cleanEnv (): { env: NodeJS.ProcessEnv, stripped: string[] } {
  const names = new Set(['REDIS_URL', 'MYSQL_URL', 'NODE_OPTIONS', 'STACK_NODE_ARGS', 'NGINX_RATE_LIMIT', 'ADMIN_TOKEN', 'LOG_LEVEL', 'NODE_ENV'])
  try {
    for (const m of readFileSync(join(appDir, '.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)) names.add(m[1] as string)
  } catch {}
  const env: NodeJS.ProcessEnv = {}
  const stripped: string[] = []
  for (const [k, v] of Object.entries(process.env)) {
    if (names.has(k)) stripped.push(k)
    else env[k] = v
  }
  return { env, stripped }
}

type StartStack = (options: StackOptions) => Promise<Stack>
async function loadStartStack (): Promise<StartStack> {
  // tools/stack/ since the toolkit split; older checkouts keep it under scripts/stack/
  const file = [join(appDir, 'tools', 'stack', 'start.ts'), join(appDir, 'scripts', 'stack', 'start.ts')].find((f) => existsSync(f)) ?? join(appDir, 'tools', 'stack', 'start.ts')
  if (!existsSync(file)) throw new Error(`${file} not found: --app-dir must be a checkout of this project`)
  const mod = await import(pathToFileURL(file).href) as { startStack?: StartStack }
  if (typeof mod.startStack !== 'function') throw new Error(`${file} exports no startStack`)
  return mod.startStack
}

// ---------------------------------------------------------------- the stack

let freshPending = args.fresh
const stackLog = (() => {
  mkdirSync(stateDir, { recursive: true })
  const out = createWriteStream(logFile, { flags: 'a' })
  cleanups.unshift(async () => { await new Promise<void>((resolve) => out.end(resolve)) })
  return (line: string) => {
    out.write(line + '\n')
    // the stack's own progress lines (not the replicas', Redis' or MariaDB's) go to the terminal too
    if (line.startsWith('[stack]') || line.startsWith('[seed]')) log(line)
  }
})()

async function startBenchStack (startStack: StartStack, env: NodeJS.ProcessEnv, replicas: number, withNginx: boolean): Promise<{ stack: Stack, startS: number, stop: () => Promise<void> }> {
  const t = Date.now()
  log(`starting the stack of ${appDir}: ${replicas} replica(s)${withNginx ? ' behind nginx (nginx per-IP and app rate limits off)' : ', no nginx, app rate limits off'}, state ${stateDir}${freshPending ? ' (--fresh)' : ''}`)
  const fresh = freshPending
  freshPending = false
  // nginx's JSON access log grows by ~100 MB per 30 s at 1000 connections; keep one stack's worth
  const accessLog = join(stateDir, 'nginx', 'access.log')
  if (existsSync(accessLog)) truncateSync(accessLog)
  const stack = await startStack({
    replicas,
    apiBasePort,
    nginx: withNginx,
    port: frontPort,
    rateLimit: false,
    users,
    fresh,
    stateDir,
    redisPort: 0,
    mysqlPort: 0,
    build: false,
    install: false,
    env,
    log: stackLog,
    signal: abort.signal
  })
  let stopped: Promise<void> | undefined
  const stop = () => { stopped ??= stack.stop(); return stopped }
  cleanups.push(stop)
  const startS = (Date.now() - t) / 1000
  log(`stack up in ${startS.toFixed(1)} s: ${withNginx ? `nginx ${stack.frontUrl}, ` : ''}${stack.apiUrls.join(', ')}; log ${logFile}`)
  const redisOurs = stack.processes().some((p) => p.name === 'redis')
  if (!redisOurs) throw new Error(`the stack reuses a Redis it did not start (${stack.redisUrl}); this benchmark deletes ${REDIS_PREFIX}* keys between runs and refuses to do that to a shared Redis`)
  // The database must hold exactly the users the ids are drawn from.
  const conn = await mysql.createConnection({ uri: stack.mysqlUrl, connectTimeout: 5000 })
  try {
    const [rows] = await conn.query('SELECT COUNT(*) AS n, MIN(id) AS lo, MAX(id) AS hi FROM users') as unknown as [Array<{ n: number, lo: number, hi: number }>]
    const r = rows[0]
    if (!r || Number(r.n) !== users || Number(r.lo) !== 1 || Number(r.hi) !== users) {
      throw new Error(`the database in ${stateDir} has ${r?.n} users (ids ${r?.lo}..${r?.hi}), not 1..${users}: pass --fresh to reseed it`)
    }
  } finally {
    await conn.end()
  }
  return { stack, startS, stop }
}

/** recsvc:* keys in Redis: counted, and deleted when `del`. */
async function redisPrefixKeys (redisUrl: string, del: boolean): Promise<number> {
  const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 })
  r.on('error', () => {})
  try {
    await r.connect()
    let n = 0
    let cursor = '0'
    const until = Date.now() + 60_000
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${REDIS_PREFIX}*`, 'COUNT', 1000)
      cursor = next
      n += keys.length
      if (del && keys.length) await r.unlink(...keys)
      if (Date.now() > until) throw new Error('Redis SCAN took over 60 s')
    } while (cursor !== '0')
    return n
  } finally {
    r.disconnect()
  }
}

/** Empty caches: every replica stopped (SIGTERM, drained), recsvc:* deleted from Redis, the
 *  replicas started again (empty LRU) and ready. */
async function resetCaches (stack: Stack, replicas: number): Promise<{ seconds: number, redisKeysDeleted: number }> {
  const t = Date.now()
  const idx = Array.from({ length: replicas }, (_, i) => i)
  await Promise.all(idx.map((i) => stack.killReplica(i, 'SIGTERM')))
  const redisKeysDeleted = await redisPrefixKeys(stack.redisUrl, true)
  await Promise.all(idx.map((i) => stack.startReplica(i)))
  const left = await redisPrefixKeys(stack.redisUrl, false)
  const seconds = (Date.now() - t) / 1000
  log(`caches emptied in ${seconds.toFixed(1)} s (replicas restarted, ${redisKeysDeleted} ${REDIS_PREFIX}* keys deleted, ${left} written at start-up)`)
  return { seconds, redisKeysDeleted }
}

// ---------------------------------------------------------------- /metrics

async function scrape (apiUrl: string): Promise<string> {
  const res = await fetch(`${apiUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${apiUrl}/metrics: HTTP ${res.status}`)
  return text
}

function metricValue (text: string, name: string, labels = ''): number | undefined {
  const re = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : '(?:\\{\\})?'} (\\S+)`, 'm')
  const m = text.match(re)
  return m ? Number(m[1]) : undefined
}

function histogramBuckets (text: string, name: string): Map<number, number> | undefined {
  const out = new Map<number, number>()
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{(?:[^}]*,)?le="([^"]+)"[^}]*\\} (\\S+)`, 'gm'))) {
    const le = m[1] === '+Inf' ? Infinity : Number(m[1])
    out.set(le, (out.get(le) ?? 0) + Number(m[2]))
  }
  return out.size ? out : undefined
}

interface EldReading { replica: string, p99Ms: number, source: 'histogram' | 'gauge' | 'none', samples?: number, gaugeP99Ms?: number }

/** Event-loop delay p99 over the interval between two scrapes: from the histogram
 *  recsvc_event_loop_delay_seconds when the checkout has one (bucket deltas, linear interpolation
 *  inside the bucket, as histogram_quantile), else from the gauge recsvc_event_loop_delay_p99_seconds
 *  (p99 since the previous scrape, so the `after` scrape alone carries it). */
function eventLoopP99 (replica: string, before: string, after: string): EldReading {
  const gauge = metricValue(after, 'recsvc_event_loop_delay_p99_seconds')
  const gaugeP99Ms = gauge === undefined ? undefined : round(gauge * 1000, 2)
  const b0 = histogramBuckets(before, 'recsvc_event_loop_delay_seconds')
  const b1 = histogramBuckets(after, 'recsvc_event_loop_delay_seconds')
  if (b1) {
    const les = [...b1.keys()].sort((a, b) => a - b)
    const cum = les.map((le) => (b1.get(le) ?? 0) - (b0?.get(le) ?? 0))
    const total = cum[cum.length - 1] ?? 0
    if (total > 0) {
      const rank = 0.99 * total
      let i = cum.findIndex((c) => c >= rank)
      if (i < 0) i = cum.length - 1
      const hi = les[i] as number
      const lo = i === 0 ? 0 : les[i - 1] as number
      const cLo = i === 0 ? 0 : cum[i - 1] as number
      const cHi = cum[i] as number
      const q = hi === Infinity ? lo : lo + (hi - lo) * (cHi === cLo ? 1 : (rank - cLo) / (cHi - cLo))
      return { replica, p99Ms: round(q * 1000, 2), source: 'histogram', samples: total, gaugeP99Ms }
    }
  }
  if (gaugeP99Ms !== undefined) return { replica, p99Ms: gaugeP99Ms, source: 'gauge' }
  return { replica, p99Ms: NaN, source: 'none' }
}

function answersByTier (text: string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^recsvc_answers_total\{tier="([^"]+)"\} (\S+)/gm)) out[m[1] as string] = Number(m[2])
  return out
}

// ---------------------------------------------------------------- load

interface Latency { p50: number, p97_5: number, p99: number, max: number, mean: number }
interface LoadResult {
  url: string
  connections: number
  seconds: number
  /** responses received, whatever their status */
  responses: number
  ok: number
  non2xx: number
  /** by status, and by status and the `code` of the JSON error body */
  statuses: Record<string, number>
  non2xxByCode: Record<string, number>
  /** autocannon's errors (timeouts included) and timeouts; errors by code */
  errors: number
  timeouts: number
  errorsByCode: Record<string, number>
  rps: number
  okRps: number
  /** all responses (autocannon's own figures) and 2xx only */
  latency: Latency
  latency2xx: Latency
  /** X-Cache of 2xx answers ('none' when absent) */
  tiers: Record<string, number>
  /** 2xx answers whose body says degraded: true */
  degraded2xx: number
  /** personalised = 2xx and X-Cache not FALLBACK; shares of 2xx and of everything sent */
  personalised: number
  personalisedShare: number
  personalisedOfAll: number
  last10s: { fromS: number, responses: number, ok: number, non2xx: number, errors: number, tiers: Record<string, number>, personalisedShare: number, personalisedOfAll: number }
  /** per second since the start: responses, 2xx, personalised 2xx, FALLBACK, non-2xx, errors */
  timeline: Array<{ s: number, responses: number, ok: number, personalised: number, fallback: number, non2xx: number, errors: number }>
  extra?: Record<string, unknown>
}

const latencyOf = (sorted: Float64Array | number[]): Latency => {
  let total = 0
  for (let i = 0; i < sorted.length; i++) total += sorted[i] as number
  return {
    p50: round(percentile(sorted, 50)),
    p97_5: round(percentile(sorted, 97.5)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? sorted[sorted.length - 1] as number : NaN),
    mean: round(sorted.length ? total / sorted.length : NaN)
  }
}

function header (headers: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!headers) return undefined
  const v = headers[name] ?? headers[name.toUpperCase()] ?? Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1]
  return v === undefined ? undefined : String(Array.isArray(v) ? v[0] : v)
}

// What each response (or error) was, by the time it arrived: codes for the post-hoc windows.
const TIER_CODES = ['HIT-L1', 'HIT-L2', 'MISS', 'STALE', 'FALLBACK', 'none'] as const
const NON2XX = 6
const ERROR = 7

async function load (opts: { url: string, connections: number, seconds: number, path: () => string, onBody?: (status: number, body: string) => void }): Promise<LoadResult> {
  if (abort.signal.aborted) throw new Error('aborted')
  const statuses: Record<string, number> = {}
  const non2xxByCode: Record<string, number> = {}
  const errorsByCode: Record<string, number> = {}
  const tiers: Record<string, number> = {}
  const lat2xx: number[] = []
  // arrival time (ms since start) and code of every response and error
  const at: number[] = []
  const code: number[] = []
  let degraded2xx = 0
  const start = performance.now()
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const inst = autocannon({
      url: opts.url,
      connections: opts.connections,
      duration: opts.seconds,
      timeout: 10,
      requests: [{
        setupRequest: (req) => ({ ...req, path: opts.path() }),
        onResponse: (status, body, _context, headers) => {
          at.push(performance.now() - start)
          inc(statuses, String(status))
          if (status >= 200 && status < 300) {
            const tier = header(headers as Record<string, unknown> | undefined, 'x-cache') ?? 'none'
            inc(tiers, tier)
            const c = TIER_CODES.indexOf(tier as typeof TIER_CODES[number])
            code.push(c < 0 ? 5 : c)
            if (body.includes('"degraded":true')) degraded2xx++
          } else {
            code.push(NON2XX)
            inc(non2xxByCode, `${status} ${/"code":"([^"]+)"/.exec(body)?.[1] ?? '-'}`)
          }
          opts.onBody?.(status, body)
        }
      }]
    }, (err, res) => { if (err) reject(err); else resolve(res) })
    activeCannon = inst
    inst.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) lat2xx.push(responseTime)
    })
    inst.on('reqError', (err: { code?: string, message?: string }) => {
      at.push(performance.now() - start)
      code.push(ERROR)
      inc(errorsByCode, err?.code ?? err?.message ?? 'unknown')
    })
  }).finally(() => { activeCannon = undefined })
  if (abort.signal.aborted) throw new Error('aborted')
  // autocannon stops at its first 1 s tick after `duration`, so a run lasts up to a second longer
  // than asked; rates use the measured length, and "the last 10 s" end where the run ended.
  const seconds = result.duration || opts.seconds
  const responses = sum(statuses)
  const ok = Object.entries(statuses).filter(([s]) => s.startsWith('2')).reduce((a, [, n]) => a + n, 0)
  const personalised = ok - (tiers.FALLBACK ?? 0)
  const sent = responses + result.errors
  const fromS = Math.max(0, seconds - 10)
  const late = { responses: 0, ok: 0, non2xx: 0, errors: 0, personalised: 0 }
  const lateTiers: Record<string, number> = {}
  const timeline: LoadResult['timeline'] = []
  for (let i = 0; i < at.length; i++) {
    const t = at[i] as number
    const c = code[i] as number
    const sec = Math.floor(t / 1000)
    for (let j = timeline.length; j <= sec; j++) timeline.push({ s: j, responses: 0, ok: 0, personalised: 0, fallback: 0, non2xx: 0, errors: 0 })
    const b = timeline[sec]!
    const isLate = t >= fromS * 1000
    if (c === ERROR) {
      b.errors++
      if (isLate) late.errors++
      continue
    }
    b.responses++
    if (isLate) late.responses++
    if (c === NON2XX) {
      b.non2xx++
      if (isLate) late.non2xx++
      continue
    }
    b.ok++
    if (c === 4) b.fallback++
    else b.personalised++
    if (isLate) {
      late.ok++
      if (c !== 4) late.personalised++
      inc(lateTiers, TIER_CODES[c] as string)
    }
  }
  const lateSent = late.responses + late.errors
  const sorted2xx = Float64Array.from(lat2xx).sort()
  return {
    url: opts.url,
    connections: opts.connections,
    seconds,
    responses,
    ok,
    non2xx: responses - ok,
    statuses,
    non2xxByCode,
    errors: result.errors,
    timeouts: result.timeouts,
    errorsByCode,
    rps: responses / seconds,
    okRps: ok / seconds,
    latency: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99, max: result.latency.max, mean: round(result.latency.mean) },
    latency2xx: latencyOf(sorted2xx),
    tiers,
    degraded2xx,
    personalised,
    personalisedShare: ok ? personalised / ok : NaN,
    personalisedOfAll: sent ? personalised / sent : NaN,
    last10s: {
      fromS: round(fromS, 2),
      ...late,
      tiers: lateTiers,
      personalisedShare: late.ok ? late.personalised / late.ok : NaN,
      personalisedOfAll: lateSent ? late.personalised / lateSent : NaN
    },
    timeline
  }
}

/** One request at a time; the wall time of each in ms. */
async function timeOne (url: string): Promise<{ ms: number, status: number, body: string }> {
  const t = performance.now()
  const res = await fetch(url, { signal: AbortSignal.timeout(30_000) })
  const body = await res.text()
  return { ms: performance.now() - t, status: res.status, body }
}

// ---------------------------------------------------------------- the store ceiling

async function startCeiling (mysqlUrl: string): Promise<{ url: string, stop: () => Promise<void> }> {
  const port = await freePort()
  const env = { ...cleanEnv().env, MYSQL_URL: mysqlUrl, PORT: String(port), EXIT_WITH_STDIN: '1' }
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(benchDir, 'store-ceiling-server.ts')], { cwd: thisRoot, env, stdio: ['pipe', 'ignore', 'inherit'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    })()
    return stopped
  }
  cleanups.push(stop)
  const url = `http://127.0.0.1:${port}`
  const until = Date.now() + 30_000
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error('store-ceiling-server exited at start')
    try {
      const res = await fetch(`${url}/recommend/1`, { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      if (res.ok) return { url, stop }
    } catch {}
    await sleep(150)
  }
  await stop()
  throw new Error('store-ceiling-server did not answer within 30 s')
}

// ---------------------------------------------------------------- scenarios

interface ZipfRun {
  run: number
  loadAvgAtStart: number[]
  resetS: number
  l1EntriesAtStart: number[]
  load: LoadResult
  eventLoop: EldReading[]
  answersByReplica: Array<Record<string, number>>
}

async function zipfNginx (startStack: StartStack, env: NodeJS.ProcessEnv): Promise<{ runs: ZipfRun[], stackStartS: number, seconds: number }> {
  const t = Date.now()
  const { stack, startS, stop } = await startBenchStack(startStack, env, 2, true)
  const out: ZipfRun[] = []
  try {
    for (let run = 0; run < runs; run++) {
      // The first run follows a fresh start-up (empty Redis, new replicas); later ones restart.
      const resetS = run === 0 ? 0 : (await resetCaches(stack, 2)).seconds
      if (run > 0) await sleep(2500) // nginx's passive fail_timeout (2 s) of the previous run is over
      const before = await Promise.all(stack.apiUrls.map(scrape))
      const l1EntriesAtStart = before.map((m) => metricValue(m, 'recsvc_l1_entries') ?? NaN)
      const next = zipf(users, zipfS, 1000 + run)
      const loadAvgAtStart = loadavg().map((x) => round(x, 2))
      log(`zipf-nginx run ${run + 1}/${runs}: ${connections} connections × ${duration} s through ${stack.frontUrl} (load average ${loadAvgAtStart.join(' ')})`)
      const r = await load({ url: stack.frontUrl!, connections, seconds: duration, path: () => `/recommend/${next()}` })
      const after = await Promise.all(stack.apiUrls.map(scrape))
      const eventLoop = stack.apiUrls.map((u, i) => eventLoopP99(`api-${i + 1}`, before[i]!, after[i]!))
      const answersByReplica = after.map((m, i) => {
        const a = answersByTier(m)
        const b = answersByTier(before[i]!)
        return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)]))
      })
      out.push({ run: run + 1, loadAvgAtStart, resetS, l1EntriesAtStart, load: r, eventLoop, answersByReplica })
      log(`  ${r.responses} responses, ${r.ok} 2xx, non-2xx ${JSON.stringify(r.statuses)}, errors ${r.errors}; personalised ${(100 * r.personalisedShare).toFixed(1)} % of 2xx (last 10 s ${(100 * r.last10s.personalisedShare).toFixed(1)} %); ELD p99 ${eventLoop.map((e) => `${e.p99Ms} ms`).join(', ')}`)
    }
  } finally {
    await stop()
  }
  return { runs: out, stackStartS: startS, seconds: (Date.now() - t) / 1000 }
}

interface ColdRun {
  run: number
  loadAvgAtStart: number[]
  order: string
  ceiling: LoadResult
  cold: LoadResult
  missShare: number
  rpsRatio: number
  p99Ratio: number
  eventLoop: EldReading[]
}

interface BatchRun {
  run: number
  loadAvgAtStart: number[]
  single: LoadResult
  batch20: LoadResult & { ids: number, idsRepeated: number, idsOk: number, idsFailed: number, idsDegraded: number, idsPerS: number, personalisedIdsPerS: number }
  idsRatio: number
  personalisedIdsRatio: number
  sequential: { n: number, oneColdP50Ms: number, oneColdP90Ms: number, batch100P50Ms: number, batch100P90Ms: number, p50Ratio: number, oneStatuses: Record<string, number>, batchStatuses: Record<string, number>, oneTiers: Record<string, number>, batchDegraded: number, batchIds: number }
  idsDrawn: number
  idsWrapped: boolean
}

async function coldScenarios (startStack: StartStack, env: NodeJS.ProcessEnv): Promise<{ single: ColdRun[], batch: BatchRun[], stackStartS: number, seconds: { single: number, batch: number, total: number } }> {
  const t = Date.now()
  const { stack, startS, stop } = await startBenchStack(startStack, env, 1, false)
  const api = stack.apiUrls[0]!
  const single: ColdRun[] = []
  const batch: BatchRun[] = []
  let singleS = 0
  let batchS = 0
  let justStarted = true
  const fresh = async () => {
    if (justStarted) { justStarted = false; return }
    await resetCaches(stack, 1)
  }
  try {
    if (wants('cold-single')) {
      const ts = Date.now()
      const ceiling = await startCeiling(stack.mysqlUrl)
      try {
        for (let run = 0; run < runs; run++) {
          const loadAvgAtStart = loadavg().map((x) => round(x, 2))
          // Alternate the order, so neither side always runs second (warmer InnoDB, busier machine).
          const ceilingFirst = run % 2 === 0
          const ceilingIds = permutation(users, 3000 + run)
          const coldIds = permutation(users, 4000 + run)
          let ceilingR: LoadResult | undefined
          let coldR: LoadResult | undefined
          let eventLoop: EldReading[] = []
          const runCeiling = async () => {
            log(`cold-single run ${run + 1}/${runs}: store ceiling, ${coldConnections} connections × ${coldDuration} s`)
            ceilingR = await load({ url: ceiling.url, connections: coldConnections, seconds: coldDuration, path: () => `/recommend/${ceilingIds()}` })
          }
          const runCold = async () => {
            await fresh()
            const before = await scrape(api)
            log(`cold-single run ${run + 1}/${runs}: replica, ${coldConnections} connections × ${coldDuration} s, every id once (load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`)
            coldR = await load({ url: api, connections: coldConnections, seconds: coldDuration, path: () => `/recommend/${coldIds()}` })
            eventLoop = [eventLoopP99('api-1', before, await scrape(api))]
            justStarted = false
          }
          if (ceilingFirst) { await runCeiling(); await runCold() } else { await runCold(); await runCeiling() }
          const c = ceilingR!
          const r = coldR!
          const missShare = r.ok ? (r.tiers.MISS ?? 0) / r.ok : NaN
          single.push({
            run: run + 1,
            loadAvgAtStart,
            order: ceilingFirst ? 'ceiling, then cold' : 'cold, then ceiling',
            ceiling: c,
            cold: r,
            missShare,
            rpsRatio: r.okRps / c.okRps,
            p99Ratio: r.latency2xx.p99 / c.latency2xx.p99,
            eventLoop
          })
          log(`  cold ${r.okRps.toFixed(0)} 2xx/s (MISS ${(100 * missShare).toFixed(1)} %, tiers ${JSON.stringify(r.tiers)}, p99 ${r.latency2xx.p99} ms) vs ceiling ${c.okRps.toFixed(0)} req/s (p99 ${c.latency2xx.p99} ms): ratio ${(r.okRps / c.okRps).toFixed(2)}`)
        }
      } finally {
        await ceiling.stop()
      }
      singleS = (Date.now() - ts) / 1000
    }
    if (wants('cold-batch')) {
      const ts = Date.now()
      for (let run = 0; run < runs; run++) {
        const loadAvgAtStart = loadavg().map((x) => round(x, 2))
        // 1. single cold requests, from empty caches
        await fresh()
        const singleIds = permutation(users, 5000 + run)
        log(`cold-batch run ${run + 1}/${runs}: single cold requests, ${coldConnections} connections × ${coldDuration} s`)
        const s = await load({ url: api, connections: coldConnections, seconds: coldDuration, path: () => `/recommend/${singleIds()}` })
        // 2. batches of 20 distinct cold ids, from empty caches
        await resetCaches(stack, 1)
        const batchIds = permutation(users, 6000 + run)
        let ids = 0
        let idsOk = 0
        let idsFailed = 0
        let idsDegraded = 0
        log(`cold-batch run ${run + 1}/${runs}: batches of 20 cold ids, ${coldConnections} connections × ${coldDuration} s`)
        const b = await load({
          url: api,
          connections: coldConnections,
          seconds: coldDuration,
          path: () => { ids += 20; return `/batch-recommend?user_ids=${Array.from({ length: 20 }, batchIds).join(',')}` },
          onBody: (status, body) => {
            if (status < 200 || status >= 300) return
            const m = /"successful":(\d+),"failed":(\d+)/.exec(body)
            if (m) { idsOk += Number(m[1]); idsFailed += Number(m[2]) }
            idsDegraded += body.split('"degraded":true').length - 1
          }
        })
        const idsPerS = idsOk / b.seconds
        const personalisedIdsPerS = (idsOk - idsDegraded) / b.seconds
        // 3. one at a time, interleaved: one cold id, a batch of 100 cold ids (after 2 of each unmeasured)
        await resetCaches(stack, 1)
        const seqIds = permutation(users, 7000 + run)
        const one: number[] = []
        const hundred: number[] = []
        const oneStatuses: Record<string, number> = {}
        const batchStatuses: Record<string, number> = {}
        const oneTiers: Record<string, number> = {}
        let batchDegraded = 0
        log(`cold-batch run ${run + 1}/${runs}: ${sequentialN} × (one cold id, a batch of 100 cold ids), one request at a time`)
        for (let i = -2; i < sequentialN; i++) {
          const a = await timeOne(`${api}/recommend/${seqIds()}`)
          const c = await timeOne(`${api}/batch-recommend?user_ids=${Array.from({ length: 100 }, seqIds).join(',')}`)
          if (i < 0) continue
          one.push(a.ms)
          hundred.push(c.ms)
          inc(oneStatuses, String(a.status))
          inc(batchStatuses, String(c.status))
          const tier = /"degraded":true/.test(a.body) ? 'FALLBACK(degraded)' : a.status === 200 ? 'personalised' : String(a.status)
          inc(oneTiers, tier)
          batchDegraded += c.body.split('"degraded":true').length - 1
        }
        one.sort((x, y) => x - y)
        hundred.sort((x, y) => x - y)
        const sequential = {
          n: sequentialN,
          oneColdP50Ms: round(median(one), 1),
          oneColdP90Ms: round(percentile(one, 90), 1),
          batch100P50Ms: round(median(hundred), 1),
          batch100P90Ms: round(percentile(hundred, 90), 1),
          p50Ratio: median(hundred) / median(one),
          oneStatuses,
          batchStatuses,
          oneTiers,
          batchDegraded,
          batchIds: 100 * sequentialN
        }
        const idsDrawn = Math.max(singleIds.drawn, batchIds.drawn, seqIds.drawn)
        batch.push({
          run: run + 1,
          loadAvgAtStart,
          single: s,
          batch20: { ...b, ids, idsRepeated: Math.max(0, batchIds.drawn - users), idsOk, idsFailed, idsDegraded, idsPerS, personalisedIdsPerS },
          idsRatio: idsPerS / s.okRps,
          personalisedIdsRatio: personalisedIdsPerS / Math.max(1e-9, s.personalised / s.seconds),
          sequential,
          idsDrawn,
          idsWrapped: idsDrawn > users
        })
        log(`  single ${s.okRps.toFixed(0)} 2xx/s; batch-20 ${b.okRps.toFixed(0)} batches/s = ${idsPerS.toFixed(0)} ids/s (${idsDegraded} degraded): ${(idsPerS / s.okRps).toFixed(2)}x; one cold p50 ${sequential.oneColdP50Ms} ms, batch of 100 p50 ${sequential.batch100P50Ms} ms: ${sequential.p50Ratio.toFixed(1)}x`)
      }
      batchS = (Date.now() - ts) / 1000
    }
  } finally {
    await stop()
  }
  return { single, batch, stackStartS: startS, seconds: { single: singleS, batch: batchS, total: (Date.now() - t) / 1000 } }
}

// ---------------------------------------------------------------- Markdown

type Metric<R> = [label: string, values: (r: R) => number[], fmt: (xs: number[]) => string]
const f0 = (x: number) => Number.isFinite(x) ? x.toFixed(0) : 'n/a'
const f1 = (x: number) => Number.isFinite(x) ? x.toFixed(1) : 'n/a'
const f2 = (x: number) => Number.isFinite(x) ? x.toFixed(2) : 'n/a'
const pc = (x: number) => Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : 'n/a'
const slash = (f: (x: number) => string) => (xs: number[]) => xs.map(f).join(' / ')

/** The keys of `dict` over all runs, as a metric: component-wise medians in the median column. */
function dictMetric<R> (label: string, runs: R[], dict: (r: R) => Record<string, number>, fmt: (x: number) => string, order: string[] = [], denom?: (r: R) => number): Metric<R> {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(dict(r))))].sort((a, b) => {
    const ia = order.indexOf(a)
    const ib = order.indexOf(b)
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b)
  })
  return [label, (r) => keys.map((k) => (dict(r)[k] ?? 0) / (denom ? denom(r) : 1)), (xs) => keys.length ? keys.map((k, i) => `${k}: ${fmt(xs[i] as number)}`).join(' · ') : 'none']
}

function table<R> (rows: R[], metrics: Array<Metric<R>>): string {
  const head = `| metric | median of ${rows.length} | ${rows.map((_, i) => `run ${i + 1}`).join(' | ')} |`
  const sep = `| --- | --- | ${rows.map(() => '---').join(' | ')} |`
  const lines = metrics.map(([label, values, fmt]) => {
    const per = rows.map(values)
    const med = (per[0] ?? []).map((_, i) => median(per.map((v) => v[i] as number)))
    return `| ${label} | ${fmt(med)} | ${per.map(fmt).join(' | ')} |`
  })
  return [head, sep, ...lines].join('\n')
}

const TIERS = ['HIT-L1', 'HIT-L2', 'MISS', 'STALE', 'FALLBACK', 'none']
const lat = (l: Latency) => [l.p50, l.p97_5, l.p99, l.max]

function zipfTable (rs: ZipfRun[]): string {
  return table(rs, [
    ['load average at start (1 min)', (r) => [r.loadAvgAtStart[0] ?? NaN], slash(f2)],
    ['measured length s (autocannon runs to its next 1 s tick)', (r) => [r.load.seconds], slash(f1)],
    ['requests answered (responses)', (r) => [r.load.responses], slash(f0)],
    ['req/s (all responses)', (r) => [r.load.rps], slash(f0)],
    ['2xx', (r) => [r.load.ok], slash(f0)],
    dictMetric('non-2xx by status', rs, (r) => Object.fromEntries(Object.entries(r.load.statuses).filter(([s]) => !s.startsWith('2'))), f0),
    dictMetric('non-2xx by status and code', rs, (r) => r.load.non2xxByCode, f0),
    ['errors (timeouts)', (r) => [r.load.errors, r.load.timeouts], (xs) => `${f0(xs[0]!)} (${f0(xs[1]!)})`],
    dictMetric('errors by code', rs, (r) => r.load.errorsByCode, f0),
    ['latency, all responses: p50 / p97.5 / p99 / max ms', (r) => lat(r.load.latency), slash(f0)],
    ['latency, 2xx: p50 / p97.5 / p99 / max ms', (r) => lat(r.load.latency2xx), slash(f0)],
    dictMetric('X-Cache mix (% of 2xx)', rs, (r) => r.load.tiers, pc, TIERS, (r) => r.load.ok),
    ['personalised (not FALLBACK) / 2xx, whole run', (r) => [r.load.personalisedShare], slash(pc)],
    ['personalised / 2xx, last 10 s', (r) => [r.load.last10s.personalisedShare], slash(pc)],
    ['personalised / all requests (incl. non-2xx, errors), whole run / last 10 s', (r) => [r.load.personalisedOfAll, r.load.last10s.personalisedOfAll], slash(pc)],
    ['2xx bodies with degraded: true', (r) => [r.load.degraded2xx], slash(f0)],
    ['event-loop delay p99 ms (api-1 / api-2)', (r) => r.eventLoop.map((e) => e.p99Ms), slash(f1)]
  ])
}

function coldTable (rs: ColdRun[]): string {
  return table(rs, [
    ['load average at start (1 min)', (r) => [r.loadAvgAtStart[0] ?? NaN], slash(f2)],
    ['cold: 2xx/s (responses in s)', (r) => [r.cold.okRps, r.cold.responses, r.cold.seconds], (xs) => `${f0(xs[0]!)} (${f0(xs[1]!)} in ${f1(xs[2]!)})`],
    ['cold: MISS share of 2xx', (r) => [r.missShare], slash(pc)],
    dictMetric('cold: X-Cache mix (% of 2xx)', rs, (r) => r.cold.tiers, pc, TIERS, (r) => r.cold.ok),
    ['cold: latency 2xx p50 / p99 / max ms', (r) => [r.cold.latency2xx.p50, r.cold.latency2xx.p99, r.cold.latency2xx.max], slash(f0)],
    dictMetric('cold: non-2xx by status', rs, (r) => Object.fromEntries(Object.entries(r.cold.statuses).filter(([s]) => !s.startsWith('2'))), f0),
    ['cold: errors', (r) => [r.cold.errors], slash(f0)],
    ['ceiling: 2xx/s', (r) => [r.ceiling.okRps], slash(f0)],
    ['ceiling: latency 2xx p50 / p99 / max ms', (r) => [r.ceiling.latency2xx.p50, r.ceiling.latency2xx.p99, r.ceiling.latency2xx.max], slash(f0)],
    ['ceiling: non-2xx + errors', (r) => [r.ceiling.non2xx + r.ceiling.errors], slash(f0)],
    ['ratio cold / ceiling, req/s', (r) => [r.rpsRatio], slash(f2)],
    ['ratio cold / ceiling, p99', (r) => [r.p99Ratio], slash(f2)],
    ['replica event-loop delay p99 ms', (r) => r.eventLoop.map((e) => e.p99Ms), slash(f1)]
  ])
}

function batchTable (rs: BatchRun[]): string {
  return table(rs, [
    ['load average at start (1 min)', (r) => [r.loadAvgAtStart[0] ?? NaN], slash(f2)],
    ['single cold: 2xx/s (MISS share)', (r) => [r.single.okRps, r.single.ok ? (r.single.tiers.MISS ?? 0) / r.single.ok : NaN], (xs) => `${f0(xs[0]!)} (${pc(xs[1]!)})`],
    ['single cold: personalised / 2xx', (r) => [r.single.personalisedShare], slash(pc)],
    ['batch of 20: batches/s (non-2xx + errors)', (r) => [r.batch20.okRps, r.batch20.non2xx + r.batch20.errors], (xs) => `${f0(xs[0]!)} (${f0(xs[1]!)})`],
    ['batch of 20: ids answered/s (degraded share)', (r) => [r.batch20.idsPerS, r.batch20.idsOk ? r.batch20.idsDegraded / r.batch20.idsOk : NaN], (xs) => `${f0(xs[0]!)} (${pc(xs[1]!)})`],
    ['batch of 20: ids asked for (of which repeats: the permutation of all users wrapped)', (r) => [r.batch20.ids, r.batch20.idsRepeated], (xs) => `${f0(xs[0]!)} (${f0(xs[1]!)})`],
    ['batch of 20: latency 2xx p50 / p99 ms', (r) => [r.batch20.latency2xx.p50, r.batch20.latency2xx.p99], slash(f0)],
    ['ids/s ÷ single cold req/s', (r) => [r.idsRatio], slash(f2)],
    ['personalised ids/s ÷ personalised single req/s', (r) => [r.personalisedIdsRatio], slash(f2)],
    ['one at a time: one cold id p50 / p90 ms', (r) => [r.sequential.oneColdP50Ms, r.sequential.oneColdP90Ms], slash(f1)],
    ['one at a time: batch of 100 cold ids p50 / p90 ms', (r) => [r.sequential.batch100P50Ms, r.sequential.batch100P90Ms], slash(f1)],
    ['p50 ratio batch of 100 / one', (r) => [r.sequential.p50Ratio], slash(f2)],
    ['degraded ids in the batches of 100', (r) => [r.sequential.batchDegraded], slash(f0)]
  ])
}

// ---------------------------------------------------------------- main

async function main (): Promise<void> {
  const git = gitInfo(appDir)
  if (args.build) {
    log(`npm run build in ${appDir}`)
    const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: appDir, stdio: 'inherit', timeout: 300_000 })
    if (b.status !== 0) throw new Error(`npm run build failed in ${appDir}`)
  }
  const entry = join(appDir, 'dist', 'src', 'server.js')
  if (!existsSync(entry)) throw new Error(`${entry} not found: build the checkout first (cd ${appDir} && npm run build), or pass --build`)
  const srcNewest = Math.max(newestMtime(join(appDir, 'src')), newestMtime(join(appDir, 'workers')))
  const distNewest = newestMtime(join(appDir, 'dist'))
  const distStale = srcNewest > distNewest
  if (distStale) log(`warning: ${appDir}/src or workers/ is newer than dist/: the replicas run the last build (pass --build to rebuild)`)
  const { env, stripped } = cleanEnv()
  if (stripped.length) log(`not passed to the stack (default configuration): ${stripped.join(', ')}`)
  const startStack = await loadStartStack()
  log(`checkout ${appDir} at ${git.describe}${git.dirty ? ' (uncommitted changes)' : ''}; ${availableParallelism()} cores; Node ${process.version}; bounded to ${maxMs / 60_000} min`)

  const report: Record<string, unknown> = {
    benchmark: 'bench/cold-start.ts',
    startedAt: new Date(t0All).toISOString(),
    appDir,
    git,
    distStale,
    node: process.version,
    cores: availableParallelism(),
    loadAvgAtStart: loadavg(),
    options: { runs, duration, coldDuration, users, zipfS, connections, coldConnections, sequential: sequentialN, only: [...only], stateDir, frontPort, apiBasePort },
    zipfHotShare: { top100: zipfHeadShare(users, zipfS, 100), top1000: zipfHeadShare(users, zipfS, 1000), top10000: zipfHeadShare(users, zipfS, 10_000) },
    envStripped: stripped,
    scenarios: {} as Record<string, unknown>
  }
  const scen = report.scenarios as Record<string, unknown>
  const write = () => {
    mkdirSync(resolve(jsonFile, '..'), { recursive: true })
    writeFileSync(jsonFile, JSON.stringify({ ...report, finishedAt: new Date().toISOString(), totalSeconds: (Date.now() - t0All) / 1000 }, null, 2) + '\n')
  }
  const md: string[] = []
  const out = (s: string) => { md.push(s); console.log(s) }
  const what = `${appDir}${args['app-dir'] ? '' : ' (this checkout)'} at ${git.describe}${git.dirty ? ' (+ uncommitted changes)' : ''}`

  if (wants('zipf-nginx')) {
    const z = await zipfNginx(startStack, env)
    scen['zipf-nginx'] = z
    write()
    out(`\n### zipf-nginx: 2 replicas behind nginx (no per-IP limits), ${connections} connections × ${duration} s, Zipf s = ${zipfS} over ${users} users, from empty caches\n\n${what}; stack start ${z.stackStartS.toFixed(0)} s, scenario ${z.seconds.toFixed(0)} s\n`)
    out(zipfTable(z.runs))
  }
  if (wants('cold-single') || wants('cold-batch')) {
    const c = await coldScenarios(startStack, env)
    if (wants('cold-single')) scen['cold-single'] = { runs: c.single, seconds: c.seconds.single }
    if (wants('cold-batch')) scen['cold-batch'] = { runs: c.batch, seconds: c.seconds.batch }
    scen.coldStack = { stackStartS: c.stackStartS, seconds: c.seconds.total }
    write()
    if (wants('cold-single')) {
      out(`\n### cold-single: 1 replica, no nginx, ${coldConnections} connections × ${coldDuration} s, every id once (seeded permutation of ${users}), against the store ceiling\n\n${what}; stack start ${c.stackStartS.toFixed(0)} s, scenario ${c.seconds.single.toFixed(0)} s\n`)
      out(coldTable(c.single))
    }
    if (wants('cold-batch')) {
      out(`\n### cold-batch: 1 replica, GET /batch-recommend with 20 distinct cold ids at ${coldConnections} connections × ${coldDuration} s; then one request at a time, ${sequentialN} × (1 cold id, 100 cold ids)\n\n${what}; scenario ${c.seconds.batch.toFixed(0)} s\n`)
      out(batchTable(c.batch))
      if (c.batch.some((b) => b.idsWrapped)) out(`\nNote: a phase asked for more than the ${users} users, so some ids came round a second time (see "repeats"); those that were answered personalised the first time are cache hits then.`)
    }
  }
  report.markdown = md.join('\n')
  write()
  log(`done in ${((Date.now() - t0All) / 1000).toFixed(0)} s; JSON: ${jsonFile}; stack log: ${logFile}`)
}

try {
  await main()
} catch (err) {
  log(abort.signal.aborted ? 'aborted' : `failed: ${(err as Error).stack ?? String(err)}`)
  process.exitCode = 1
} finally {
  await cleanupAll()
  clearTimeout(watchdog)
}
