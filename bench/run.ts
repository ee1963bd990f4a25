// `npm run bench` (issue 12): the service's benchmarks in one command, each scenario measured next
// to a reference (a bare Fastify route serving the same bytes, or the store ceiling) in the same
// run under the same load settings, with each replica's own figures from its /metrics.
//
//   npm run bench -- [--quick] [--only hot] [--url URL] [--replicas N] [--duration S]
//                    [--warmup S] [--connections N] [--out DIR]
//
// Without --url it starts what the scenarios need: its own Redis and MySQL
// (tools/servers/throwaway.ts; REDIS_URL / MYSQL_URL of the environment only where the server binary
// is missing), the fixture (tools/fixture.ts), and the app as `node --import tsx src/server.ts` in the default
// configuration with the app's per-client rate limits off (RATE_LIMIT_ENABLED=false: one load
// generator is one client). Everything started is stopped at the end, on an error and on Ctrl-C.
// Progress on stderr; the Markdown table on stdout; reports in <out>/<timestamp>.{json,md,svg}.
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { loadFixture } from '../tools/fixture.ts'
import { seed } from '../scripts/seed.ts'
import { findBinary, findMysqlBinaries } from '../tools/servers/binaries.ts'
import { startServices, type Services } from '../tools/servers/throwaway.ts'
import { runLoad, stopLoad, type LoadResult } from './lib/load.ts'
import { machine } from './lib/machine.ts'
import { replicaFigures, scrape, totalMix } from './lib/metrics.ts'
import { parseOptions, USAGE, UsageError, type BenchOptions } from './lib/options.ts'
import { ROOT, startNodeServer, stopAll, type NodeServer } from './lib/procs.ts'
import { startReference } from './lib/reference.ts'
import { table } from './report/markdown.ts'
import type { BenchReport, ReferenceResult, ScenarioResult } from './report/types.ts'
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
const APP_ENV: Record<string, string> = {
  RATE_LIMIT_ENABLED: 'false',
  // listen on loopback only; not a performance setting
  HOST: '127.0.0.1'
}

const logDir = mkdtempSync(join(os.tmpdir(), 'recsvc-bench-'))
let services: Services | undefined
let servicesStarting: Promise<{ mysqlUrl: string, redisUrl: string }> | undefined
let appCount = 0
const datasets = new Map<number, Promise<string>>()

const ctx: BenchContext = {
  opts,
  log,
  logDir,
  services () {
    servicesStarting ??= (async () => {
      log('starting Redis and MySQL (tools/servers/throwaway.ts)')
      // Own servers wherever the binaries exist; REDIS_URL / MYSQL_URL only as a fallback.
      services = await startServices({ ownRedis: findBinary('redis-server') !== undefined, ownMysql: findMysqlBinaries() !== undefined })
      if (!services.redis.own || !services.mysql.own) log(`using external ${[services.redis.own ? '' : 'Redis (REDIS_URL)', services.mysql.own ? '' : 'MySQL (MYSQL_URL)'].filter(Boolean).join(' and ')}: no binary found`)
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
    const started: NodeServer[] = []
    try {
      for (let i = 0; i < replicas; i++) {
        const n = ++appCount
        const s = await startNodeServer({
          name: `${label} replica ${i + 1}`,
          script: 'src/server.ts',
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

const latencyOf = (l: LoadResult) => ({ ...l.latency })

async function load (what: string, urls: string[], paths: () => string, seconds: number): Promise<LoadResult> {
  if (aborting) throw new Error('aborted')
  log(`${what}: ${seconds} s, ${opts.connections} connections → ${urls.join(', ')}`)
  const r = await runLoad({ urls, paths, connections: opts.connections, seconds })
  log(`${what}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, errors ${r.errors}, non-2xx ${r.non2xx}`)
  return r
}

async function runScenario (s: Scenario): Promise<ScenarioResult> {
  const result: ScenarioResult = { name: s.name, description: s.description, replicas: [], notes: [] }
  log(`scenario ${s.name}: ${s.description}`)
  let target: Target | undefined
  try {
    target = await s.setup(ctx)
    result.notes.push(...(target.notes ?? []))
    // One real answer: the baseline serves its bytes.
    const res = await fetch(target.urls[0] + target.samplePath, { signal: AbortSignal.timeout(10_000) })
    const body = await res.text()
    result.sample = { path: target.samplePath, status: res.status, bytes: Buffer.byteLength(body), xCache: res.headers.get('x-cache') ?? undefined }
    if (res.status !== 200) throw new Error(`the sample request ${target.samplePath} answered ${res.status}: ${body.slice(0, 200)}`)
    log(`sample ${target.samplePath}: ${res.status}, ${result.sample.bytes} bytes, x-cache ${result.sample.xCache ?? '-'}`)

    // The reference, under the same settings (and as many processes as the target has replicas).
    const kind = s.reference ?? 'baseline'
    const ref = await startReference(kind, ctx, body, target.urls.length, target.referenceMysqlUrl)
    try {
      const refUrls = ref.servers.map((x) => x.url)
      const refPaths = target.referencePaths ?? target.paths
      if (opts.warmup > 0) await load(`${s.name}: ${kind} warm-up`, refUrls, refPaths, opts.warmup)
      const r = await load(`${s.name}: ${kind}`, refUrls, refPaths, opts.duration)
      const b: ReferenceResult = { kind, label: ref.label, reqPerSec: r.reqPerSec, latency: latencyOf(r), errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx, load: r }
      result.baseline = b
    } finally {
      await ref.stop()
    }

    if (opts.warmup > 0) await load(`${s.name}: warm-up`, target.urls, target.paths, opts.warmup)
    const before = await Promise.all(target.metricsUrls.map((u) => scrape(u)))
    const r = await load(s.name, target.urls, target.paths, opts.duration)
    const after = await Promise.all(target.metricsUrls.map((u) => scrape(u)))
    result.load = r
    result.reqPerSec = r.reqPerSec
    result.latency = latencyOf(r)
    result.errors = r.errors
    result.timeouts = r.timeouts
    result.non2xx = r.non2xx
    if (result.baseline !== undefined && result.baseline.reqPerSec > 0) result.ratio = r.reqPerSec / result.baseline.reqPerSec
    result.replicas = target.metricsUrls.map((u, i) => replicaFigures(u, before[i], after[i]))
    const scraped = result.replicas.filter((x) => x.scraped)
    if (scraped.length < result.replicas.length) result.notes.push(`/metrics could not be read on ${result.replicas.length - scraped.length} of ${result.replicas.length} targets (behind nginx, /metrics is internal only): no replica figures from those`)
    if (scraped.some((x) => x.restarted)) result.notes.push('a replica restarted during the run')
    result.tierMix = totalMix(scraped)
    const els = scraped.flatMap((x) => x.eventLoopP99Ms === undefined ? [] : [x.eventLoopP99Ms])
    if (els.length > 0) result.eventLoopP99Ms = Math.max(...els)
    const cpus = scraped.flatMap((x) => x.cpu === undefined ? [] : [x.cpu])
    if (cpus.length > 0) result.cpu = cpus.reduce((a, x) => a + x, 0)
    const rss = scraped.flatMap((x) => x.rssBytes === undefined ? [] : [x.rssBytes])
    if (rss.length > 0) result.rssBytes = Math.max(...rss)
    if (r.instances > 1) result.notes.push(`load split over ${r.instances} autocannon instances (one per replica, no balancer): req/s summed, latency percentiles are the worst instance's`)
  } catch (err) {
    result.error = (err as Error).stack ?? String(err)
    log(`scenario ${s.name} failed: ${(err as Error).message}`)
  } finally {
    if (target !== undefined) await target.teardown().catch((err) => log(`teardown of ${s.name}: ${(err as Error).message}`))
  }
  return result
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
        target: `${opts.replicas} app replica(s), node --import tsx src/server.ts, own Redis and MySQL with the fixture (tools/fixture.ts)`,
        env: { ...APP_ENV },
        notes: [
          'app in its default configuration (LOG_LEVEL info, NODE_ENV development, default pools and caches; .env.example variables of this shell not passed on)',
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
const files = writeReport(report, resolve(opts.out))
console.log(`\n${table(report)}\n`)
log(`reports: ${files.json}, ${files.md}, ${files.svg}`)
process.exit(failed ? 1 : 0)
