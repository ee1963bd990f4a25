// `npm run bench` (issue 12): the service's benchmarks in one command, each scenario measured next
// to a reference (a bare Fastify route serving the same bytes, or the store ceiling) in the same
// run under the same load settings, with each replica's own figures from its /metrics.
//
//   npm run bench -- [--quick] [--only hot] [--url URL] [--replicas N] [--duration S]
//                    [--warmup S] [--connections N] [--out DIR]
//
// Without --url it starts what the scenarios need: its own Redis and MySQL
// (tools/servers/throwaway.ts; REDIS_URL / MYSQL_URL of the environment only where the server binary
// is missing), the fixture (tools/fixture.ts), and the app as `node dist/src/server.js` in the default
// configuration with the app's per-client rate limits off (RATE_LIMIT_ENABLED=false: one load
// generator is one client). The app runs from dist/ (built first when stale). Everything started is stopped at the end, on an error and on Ctrl-C.
// Progress on stderr; the Markdown table on stdout; reports in <out>/<timestamp>.{json,md,svg}.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import mysql from 'mysql2/promise'
import { loadFixture } from '../tools/fixture.ts'
import { seed } from '../scripts/seed.ts'
import { findBinary, findMysqlBinaries } from '../tools/servers/binaries.ts'
import { startServices, type Services } from '../tools/servers/throwaway.ts'
import { runLoad, stopLoad, type LoadResult, type NextRequest } from './lib/load.ts'
import { machine } from './lib/machine.ts'
import { replicaFigures, scrape, totalMix } from './lib/metrics.ts'
import { parseOptions, USAGE, UsageError, type BenchOptions } from './lib/options.ts'
import { APP_ENTRY, ensureBuilt, ROOT, startNodeServer, stopAll, type NodeServer } from './lib/procs.ts'
import { startReference, type StartedReference } from './lib/reference.ts'
import { table } from './report/markdown.ts'
import type { BenchReport, Latency, ReferenceRun, RunResult, ScenarioResult } from './report/types.ts'
import { checkTargets, targetsTable } from './report/targets.ts'
import { writeReport } from './report/write.ts'
import { SCENARIOS } from './scenarios/index.ts'
import type { BenchContext, Scenario, Target } from './scenarios/types.ts'

const t0 = Date.now()
const log = (msg: string) => { process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`) }

let opts: BenchOptions
try {
  opts = parseOptions(process.argv.slice(2), SCENARIOS.map((s) => s.name))
} catch (err) {
  if (!(err instanceof UsageError)) throw err
  console.error(`${err.message}\n\n${USAGE}`)
  process.exit(2)
}
if (opts.help) {
  console.log(`${USAGE}\n\nscenarios:\n${SCENARIOS.map((s) => `  ${s.name.padEnd(12)} ${s.description}`).join('\n')}`)
  process.exit(0)
}

// ------------------------------------------------------------------ what is started, and stopping it

/** Variables of the service's configuration (.env.example) are not passed on from this
 *  environment: the app runs in its default configuration plus what the bench sets. */
const configNames = new Set<string>(['NODE_OPTIONS'])
for (const m of readFileSync(join(ROOT, '.env.example'), 'utf8').matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)) configNames.add(m[1]!)
const inheritedEnv: Record<string, string> = {}
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !configNames.has(k)) inheritedEnv[k] = v

/** What the bench sets on top of the defaults (MYSQL_URL / REDIS_URL / PORT added per start). */
const ADMIN_TOKEN = randomBytes(24).toString('hex')
const APP_ENV: Record<string, string> = {
  RATE_LIMIT_ENABLED: 'false',
  // the admin routes (POST /events in zipf, /invalidate-cache in the storm); not a performance setting
  ADMIN_TOKEN,
  // listen on loopback only; not a performance setting
  HOST: '127.0.0.1'
}

const logDir = mkdtempSync(join(os.tmpdir(), 'recsvc-bench-'))
let services: Services | undefined
let servicesStarting: Promise<{ mysqlUrl: string, redisUrl: string }> | undefined
let appCount = 0
let built = false
const datasets = new Map<number, Promise<string>>()

const ctx: BenchContext = {
  opts,
  log,
  logDir,
  adminToken: ADMIN_TOKEN,
  services () {
    servicesStarting ??= (async () => {
      log('starting Redis and MySQL (tools/servers/throwaway.ts)')
      // Own servers wherever the binaries exist; REDIS_URL / MYSQL_URL only as a fallback.
      services = await startServices({ ownRedis: findBinary('redis-server') !== undefined, ownMysql: findMysqlBinaries() !== undefined })
      if (!services.redis.own || !services.mysql.own) log(`using external ${[services.redis.own ? '' : 'Redis (REDIS_URL)', services.mysql.own ? '' : 'MySQL (MYSQL_URL)'].filter(Boolean).join(' and ')}: no binary found`)
      if (services.mysql.own) await sizeBufferPool(services.mysql.serverUrl)
      log(`loading the fixture into ${services.mysql.database}`)
      await loadFixture(services.mysql.url)
      return { mysqlUrl: services.mysql.url, redisUrl: services.redis.url }
    })()
    return servicesStarting
  },
  dataset (users) {
    let made = datasets.get(users)
    if (made === undefined) {
      made = (async () => {
        await ctx.services()
        if (services === undefined || !services.mysql.own) throw new Error('seeded scenarios need a MySQL of their own (mariadbd or mysqld installed)')
        const u = new URL(services.mysql.serverUrl)
        u.pathname = `/recsvc_bench_u${users}`
        const t = Date.now()
        log(`seeding ${users} users into ${u.pathname.slice(1)} (scripts/seed.ts)`)
        await seed({ mysqlUrl: u.toString(), users, progress: false, log: () => {} })
        log(`seeded in ${((Date.now() - t) / 1000).toFixed(1)} s`)
        return u.toString()
      })()
      datasets.set(users, made)
    }
    return made
  },
  async startApp ({ replicas, env = {}, label = 'app' }) {
    const { mysqlUrl, redisUrl } = await ctx.services()
    if (!built) { ensureBuilt(log); built = true }
    const started: NodeServer[] = []
    try {
      for (let i = 0; i < replicas; i++) {
        const n = ++appCount
        const s = await startNodeServer({
          name: `${label} replica ${i + 1}`,
          script: APP_ENTRY,
          nodeArgs: opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(logDir, 'cpu-prof')}`] : undefined,
          env: { ...inheritedEnv, ...APP_ENV, MYSQL_URL: mysqlUrl, REDIS_URL: redisUrl, REPLICA_ID: `bench-${n}`, ...env },
          logFile: join(logDir, `app-${n}.log`)
        })
        started.push(s)
        log(`${s.name} up on ${s.url} (pid ${s.pid})`)
      }
    } catch (err) {
      await Promise.allSettled(started.map((s) => s.stop()))
      throw err
    }
    return started
  }
}

/** The throwaway server starts with the tests' 64 MB InnoDB buffer pool; a production server is
 *  sized to hold its data set (1,000,000 seeded users are about 2 GB). With 64 MB the 1M-user
 *  scenarios measured InnoDB reading pages from the OS cache, not the service. */
const BUFFER_POOL_BYTES = 3 * 1024 * 1024 * 1024

async function sizeBufferPool (serverUrl: string): Promise<void> {
  const db = await mysql.createConnection({ uri: serverUrl, connectTimeout: 10_000 })
  try {
    await db.query('SET GLOBAL innodb_buffer_pool_size = ?', [BUFFER_POOL_BYTES])
    // The resize runs in the background; wait until it has taken effect (bounded).
    for (let i = 0; i < 100; i++) {
      const [rows] = await db.query('SELECT @@innodb_buffer_pool_size AS b') as unknown as [Array<{ b: number | string }>]
      if (Number(rows[0]!.b) >= 0.95 * BUFFER_POOL_BYTES) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    log(`MySQL innodb_buffer_pool_size set to ${BUFFER_POOL_BYTES / 1024 ** 3} GiB (the test servers' default is 64 MB)`)
  } finally {
    await db.end()
  }
}

let cleaning: Promise<void> | undefined
let aborting = false
function cleanup (): Promise<void> {
  cleaning ??= (async () => {
    stopLoad()
    await stopAll()
    if (services !== undefined) await services.stop().catch((err) => log(`stopping Redis/MySQL: ${(err as Error).message}`))
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping everything started`)
    aborting = true
    const hard = setTimeout(() => process.exit(130), 20_000)
    hard.unref()
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143))
  })
}

// ------------------------------------------------------------------ one scenario

const median = (xs: readonly number[]): number => {
  const v = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

function medianLatency (ls: readonly Latency[]): Latency {
  return { p50: median(ls.map((l) => l.p50)), p97_5: median(ls.map((l) => l.p97_5)), p99: median(ls.map((l) => l.p99)), max: Math.max(...ls.map((l) => l.max)), mean: median(ls.map((l) => l.mean)) }
}

async function load (what: string, urls: string[], paths: () => NextRequest, seconds: number, o: { connections?: number, amount?: number } = {}): Promise<LoadResult> {
  if (aborting) throw new Error('aborted')
  const connections = o.connections ?? opts.connections
  log(`${what}: ${o.amount !== undefined ? `${o.amount} requests` : `${seconds} s`}, ${connections} connections → ${urls.join(', ')}`)
  const r = await runLoad({ urls, paths, connections, seconds, amount: o.amount })
  log(`${what}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors}, non-2xx ${r.non2xx}`)
  return r
}

/** One measured run of the target: scrapes around it, and whatever runs alongside (`during`). */
async function measureTarget (s: Scenario, target: Target, label: string, seconds: number): Promise<RunResult> {
  const before = await Promise.all(target.metricsUrls.map((u) => scrape(u)))
  const ac = new AbortController()
  const during = target.during?.(ac.signal)
  let r: LoadResult
  try {
    r = await load(label, target.urls, target.paths, seconds, { connections: s.connections, amount: target.amount })
  } finally {
    ac.abort()
  }
  const alongside = during === undefined ? undefined : await during
  const after = await Promise.all(target.metricsUrls.map((u) => scrape(u)))
  const replicas = target.metricsUrls.map((u, i) => replicaFigures(u, before[i], after[i]))
  const scraped = replicas.filter((x) => x.scraped)
  const els = scraped.flatMap((x) => x.eventLoopP99Ms === undefined ? [] : [x.eventLoopP99Ms])
  const cpus = scraped.flatMap((x) => x.cpu === undefined ? [] : [x.cpu])
  const rss = scraped.flatMap((x) => x.rssBytes === undefined ? [] : [x.rssBytes])
  return {
    reqPerSec: r.reqPerSec,
    latency: { ...r.latency },
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    load: r,
    replicas,
    tierMix: totalMix(scraped),
    eventLoopP99Ms: els.length > 0 ? Math.max(...els) : undefined,
    cpu: cpus.length > 0 ? cpus.reduce((a, x) => a + x, 0) : undefined,
    rssBytes: rss.length > 0 ? Math.max(...rss) : undefined,
    alongside
  }
}

async function measureReference (s: Scenario, ref: StartedReference, paths: () => NextRequest, seconds: number, amount: number | undefined): Promise<ReferenceRun> {
  const r = await load(`${s.name}: ${ref.kind}`, ref.urls, paths, seconds, { connections: s.connections, amount })
  return { reqPerSec: r.reqPerSec, latency: { ...r.latency }, errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, load: r }
}

async function fetchSample (target: Target, result: ScenarioResult): Promise<string> {
  const res = await fetch(target.urls[0] + target.samplePath, { signal: AbortSignal.timeout(10_000) })
  const body = await res.text()
  result.sample = { path: target.samplePath, status: res.status, bytes: Buffer.byteLength(body), xCache: res.headers.get('x-cache') ?? undefined }
  if (res.status !== 200) throw new Error(`the sample request ${target.samplePath} answered ${res.status}: ${body.slice(0, 200)}`)
  log(`sample ${target.samplePath}: ${res.status}, ${result.sample.bytes} bytes, x-cache ${result.sample.xCache ?? '-'}`)
  return body
}

/** Runs `opts.runs` measured runs, each paired with a run of the reference in alternating order
 *  (reference first, then target first, ...), so drift on a shared machine hits both alike; the
 *  figures reported are the medians, the ratio the median of the per-run ratios. A `fresh`
 *  scenario is set up anew for every run (from empty caches, no warm-up); the others are set up
 *  once and warmed up once. */
async function runScenario (s: Scenario): Promise<ScenarioResult> {
  const result: ScenarioResult = { name: s.name, description: s.description, replicas: [], notes: [], runs: [] }
  log(`scenario ${s.name}: ${s.description}`)
  if (s.custom !== undefined) {
    try {
      const c = await s.custom(ctx)
      result.custom = c
      result.notes.push(...c.notes)
    } catch (err) {
      result.error = (err as Error).stack ?? String(err)
      log(`scenario ${s.name} failed: ${(err as Error).message}`)
    }
    return result
  }
  const seconds = s.duration?.(opts) ?? opts.duration
  const runs = s.runs?.(opts) ?? opts.runs
  const refSeconds = s.referenceDuration?.(opts) ?? seconds
  const kind = s.reference ?? 'baseline'
  let target: Target | undefined
  let ref: StartedReference | undefined
  const refRuns: ReferenceRun[] = []
  try {
    for (let i = 0; i < runs; i++) {
      if (target === undefined) {
        target = await s.setup(ctx)
        if (i === 0) result.notes.push(...(target.notes ?? []))
      }
      if (ref === undefined) {
        const body = await fetchSample(target, result)
        ref = await (s.startReference ?? startReference)(kind, ctx, body, target.urls.length, target.referenceMysqlUrl)
        const refPaths = target.referencePaths ?? target.paths
        if (opts.warmup > 0) await load(`${s.name}: ${kind} warm-up`, ref.urls, refPaths, opts.warmup, { connections: s.connections, amount: target.warmupAmount })
        if (opts.warmup > 0 && s.fresh !== true) await load(`${s.name}: warm-up`, target.urls, target.paths, opts.warmup, { connections: s.connections, amount: target.warmupAmount })
      }
      const refPaths = target.referencePaths ?? target.paths
      const tag = runs > 1 ? ` (run ${i + 1}/${runs})` : ''
      let run: RunResult
      if (i % 2 === 0) {
        refRuns.push(await measureReference(s, ref, refPaths, refSeconds, target.amount))
        run = await measureTarget(s, target, `${s.name}${tag}`, seconds)
      } else {
        run = await measureTarget(s, target, `${s.name}${tag}`, seconds)
        refRuns.push(await measureReference(s, ref, refPaths, refSeconds, target.amount))
      }
      const refRun = refRuns[refRuns.length - 1]!
      if (refRun.reqPerSec > 0) run.ratio = run.reqPerSec / refRun.reqPerSec
      result.runs.push(run)
      if (s.fresh === true) {
        const t = target
        target = undefined
        await t.teardown()
      }
    }
    summarize(s, result, refRuns, ref)
  } catch (err) {
    result.error = (err as Error).stack ?? String(err)
    log(`scenario ${s.name} failed: ${(err as Error).message}`)
    if (result.runs.length > 0) summarize(s, result, refRuns, ref)
  } finally {
    if (ref !== undefined) await ref.stop().catch((err) => log(`stopping the reference of ${s.name}: ${(err as Error).message}`))
    if (target !== undefined) await target.teardown().catch((err) => log(`teardown of ${s.name}: ${(err as Error).message}`))
  }
  return result
}

function summarize (s: Scenario, result: ScenarioResult, refRuns: ReferenceRun[], ref: StartedReference | undefined): void {
  const rs = result.runs
  if (ref !== undefined && refRuns.length > 0) {
    result.baseline = {
      kind: ref.kind,
      label: ref.label,
      reqPerSec: median(refRuns.map((r) => r.reqPerSec)),
      latency: medianLatency(refRuns.map((r) => r.latency)),
      errors: refRuns.reduce((a, r) => a + r.errors, 0),
      timeouts: refRuns.reduce((a, r) => a + r.timeouts, 0),
      non2xx: refRuns.reduce((a, r) => a + r.non2xx, 0),
      runs: refRuns
    }
  }
  result.reqPerSec = median(rs.map((r) => r.reqPerSec))
  result.latency = medianLatency(rs.map((r) => r.latency))
  result.errors = rs.reduce((a, r) => a + r.errors, 0)
  result.timeouts = rs.reduce((a, r) => a + r.timeouts, 0)
  result.non2xx = rs.reduce((a, r) => a + r.non2xx, 0)
  const ratios = rs.flatMap((r) => r.ratio === undefined ? [] : [r.ratio])
  if (ratios.length > 0) result.ratio = median(ratios)
  // The replicas' figures of the run whose ratio (or rate) is the median one.
  const key = (r: RunResult) => r.ratio ?? r.reqPerSec
  const mid = [...rs].sort((a, b) => key(a) - key(b))[Math.floor((rs.length - 1) / 2)]!
  result.replicas = mid.replicas
  const scraped = rs.flatMap((r) => r.replicas.filter((x) => x.scraped))
  if (rs.some((r) => r.replicas.length > 0 && r.replicas.some((x) => !x.scraped))) result.notes.push('/metrics could not be read on some targets (behind nginx, /metrics is internal only): no replica figures from those')
  if (scraped.some((x) => x.restarted)) result.notes.push('a replica restarted during a run')
  result.tierMix = totalMix(scraped)
  const els = rs.flatMap((r) => r.eventLoopP99Ms === undefined ? [] : [r.eventLoopP99Ms])
  if (els.length > 0) result.eventLoopP99Ms = median(els)
  const cpus = rs.flatMap((r) => r.cpu === undefined ? [] : [r.cpu])
  if (cpus.length > 0) result.cpu = median(cpus)
  const rss = rs.flatMap((r) => r.rssBytes === undefined ? [] : [r.rssBytes])
  if (rss.length > 0) result.rssBytes = Math.max(...rss)
  const instances = rs[0]?.load.instances ?? 1
  if (instances > 1) result.notes.push(`load split over ${instances} autocannon instances (one per replica, no balancer): req/s summed, latency percentiles are the worst instance's`)
  if (rs.length > 1) result.notes.push(`medians of ${rs.length} runs (each paired with a reference run, order alternating); errors, timeouts and non-2xx summed over the runs; RSS the largest seen; EL p99 the median of each run's worst replica`)
  if (s.fresh === true) result.notes.push('set up afresh for every run: new replicas, empty LRUs and an unused Redis key prefix; no warm-up')
}

// ------------------------------------------------------------------ the run

const started = new Date()
const report: BenchReport = {
  tool: 'recsvc npm run bench',
  version: 1,
  startedAt: started.toISOString(),
  options: opts,
  config: opts.url !== undefined
    ? { target: `the running deployment at ${opts.url} (its own configuration; nothing started but the reference)`, env: {}, notes: ['the deployment\'s own configuration: rate limits as it has them'] }
    : {
        target: `${opts.replicas} app replica(s), node dist/src/server.js (npm start), own Redis and MySQL with the fixture (tools/fixture.ts)`,
        env: { ...APP_ENV },
        notes: [
          'app in its default configuration (LOG_LEVEL info, NODE_ENV development, default pools and caches; .env.example variables of this shell not passed on)',
          `the bench's own MySQL (the tests' throwaway server) with innodb_buffer_pool_size ${BUFFER_POOL_BYTES / 1024 ** 3} GiB, sized to hold the 1,000,000-user data set as a production server would`,
          'the app\'s per-client rate limits are OFF (RATE_LIMIT_ENABLED=false): one load generator is one client',
          `app processes listen on 127.0.0.1 (HOST=127.0.0.1); the baseline is bench/baseline-server.ts, one per replica`
        ]
      },
  machine: machine(),
  scenarios: []
}
const chosen = SCENARIOS.filter((s) => opts.only === undefined || opts.only.includes(s.name))
log(`${chosen.length} scenario(s): ${chosen.map((s) => s.name).join(', ')}; ${opts.warmup} s warm-up, ${opts.duration} s each, ${opts.connections} connections; logs in ${logDir}`)

let failed = false
try {
  for (const s of chosen) {
    const r = await runScenario(s)
    if (r.error !== undefined) failed = true
    report.scenarios.push(r)
  }
} finally {
  log('stopping everything started')
  await cleanup()
}
report.finishedAt = new Date().toISOString()
report.machine.loadAvgAfter = os.loadavg()
report.targets = checkTargets(report).filter((c) => c.met !== undefined || opts.only === undefined)
const files = writeReport(report, resolve(opts.out))
console.log(`\n${table(report)}\n`)
if (report.targets.length > 0) console.log(`${targetsTable(report.targets)}\n`)
log(`reports: ${files.json}, ${files.md}, ${files.svg}`)
process.exit(failed ? 1 : 0)
