// startStack(): the order in which the parts start and stop. Each part lives in its own module.

import { randomBytes } from 'node:crypto'
import { mkdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { balanceFromEnv, NginxConfigError, rateLimitFromEnv } from '../nginx-config.ts'
import { loadConfig } from '../../src/config.ts'
import { describeRateLimits } from '../../src/plugins/rate-limit.ts'
import { apiPorts, createReplicas } from './api.ts'
import { findBinaries } from './binaries.ts'
import type { StackContext, WaitFor } from './context.ts'
import { StackError } from './errors.ts'
import { secs } from './format.ts'
import { prepareMysql, stopMysql, type MysqlState } from './mysql.ts'
import { nginxPorts, startNginx, stopNginx, type Nginx } from './nginx.ts'
import { DEFAULTS, type StackOptions } from './options.ts'
import { ReadyError, waitReady } from '../servers/supervisor.ts'
import { Runner, settleAll, type Kind, type Proc } from './processes.ts'
import { startRedis, stopRedis, type RedisState } from './redis.ts'
import { repoRoot } from './repo.ts'
import { readPid, stopLeftovers, takeLock, wipeStateDir } from './state-dir.ts'

export interface StackProcess { name: string, pid: number, running: boolean }

export interface Stack {
  apiUrls: string[]
  /** nginx's URL when nginx runs (the one URL clients use), otherwise undefined. */
  frontUrl: string | undefined
  /** nginx's stub_status (127.0.0.1 only) when nginx runs. */
  nginxStatusUrl: string | undefined
  /** The nginx config rendered for this stack, and its JSON access log, when nginx runs. */
  nginxConfigFile: string | undefined
  nginxAccessLog: string | undefined
  redisUrl: string
  mysqlUrl: string
  adminToken: string
  stateDir: string
  /** Every process the stack started that is still part of it (APIs, nginx, Redis, MySQL). */
  processes (): StackProcess[]
  /** Sends `signal` (default SIGKILL) to replica `i` (0-based, as in apiUrls) and waits until it has
   *  exited; SIGKILL follows after apiStopTimeoutMs. The replica stays down until startReplica. */
  killReplica (i: number, signal?: NodeJS.Signals): Promise<void>
  /** Starts replica `i` again on its port and waits for its /health/ready. */
  startReplica (i: number): Promise<void>
  /** One step of a rolling restart: SIGTERM (the app drains), wait for exit, start, wait for ready. */
  restartReplica (i: number): Promise<void>
  /** Stops what the stack started: APIs (SIGTERM, then SIGKILL), then MySQL and Redis. Idempotent. */
  stop (): Promise<void>
}

export async function startStack (options: StackOptions = {}): Promise<Stack> {
  const t0 = Date.now()
  const root = repoRoot()
  const stateDir = resolve(options.stateDir ?? join(root, '.stack'))
  const replicas = options.replicas ?? DEFAULTS.replicas
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 64) throw new StackError(`--replicas must be 1..64, got ${replicas}`)
  const users = options.users ?? DEFAULTS.users
  const out = options.log ?? ((line: string) => console.log(line))
  const color = options.log === undefined && process.stdout.isTTY && !process.env.NO_COLOR
  const baseEnv = options.env ?? process.env
  const withNginx = options.nginx ?? false
  const rateLimit = options.rateLimit ?? rateLimitFromEnv(baseEnv)
  let balance: 'least_conn' | 'hash'
  try {
    balance = options.balance ?? balanceFromEnv(baseEnv)
  } catch (err) {
    throw err instanceof NginxConfigError ? new StackError(err.message) : err
  }
  const runner = new Runner(out, color, stateDir, baseEnv)
  const log = (msg: string) => runner.log('stack', msg)

  const adminToken = options.adminToken ?? randomBytes(24).toString('base64url')
  if (adminToken.length < 16) throw new StackError('ADMIN_TOKEN must be at least 16 characters')

  const redis: RedisState = { port: 0 }
  const mysql: MysqlState = {}
  let nginx: Nginx | undefined
  const apis: Proc[] = []
  const pidFiles: string[] = []
  const lockFile = join(stateDir, 'stack.pid')

  // ---- stop (also used when start-up fails or is aborted)
  let stopPromise: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopPromise ??= (async () => {
      runner.stopping = true
      const order: Kind[] = ['nginx', 'api', 'tool', 'mysql', 'redis']
      const alive = runner.procs.filter((p) => !p.exited).sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind))
      if (alive.length) log(`stopping ${alive.map((p) => p.name).join(', ')}`)
      const ts = Date.now()
      // 0. nginx first, so no new request reaches a replica that is going away
      await stopNginx(runner)
      // 1. API replicas and any tool still running (build, seed, install-db)
      await Promise.all(runner.procs.filter((p) => p.kind === 'api' || p.kind === 'tool')
        .map((p) => runner.terminate(p, 'SIGTERM', p.kind === 'api' ? options.apiStopTimeoutMs ?? 15_000 : 5_000)))
      // 2. then the data stores, in parallel
      await Promise.all([stopMysql(runner, mysql), stopRedis(runner, redis)])
      for (const f of pidFiles) await rm(f, { force: true })
      if (await readPid(lockFile) === process.pid) await rm(lockFile, { force: true })
      if (alive.length) log(`stopped in ${secs(Date.now() - ts)}`)
    })()
    return stopPromise
  }

  const abortError = () => new StackError('aborted')
  const checkAbort = () => {
    if (options.signal?.aborted || runner.stopping) throw abortError()
  }
  const onAbort = () => { void stop() }
  options.signal?.addEventListener('abort', onAbort, { once: true })

  const waitFor: WaitFor = async (what, probe, timeoutMs, proc) => {
    try {
      await waitReady(what, probe, {
        timeoutMs,
        intervalMs: 150,
        proc: proc?.process,
        abort: checkAbort,
        describeExit: ({ code, signal }) => `${proc?.name ?? what} exited (${signal ?? `code ${code}`}) while waiting for ${what}\n${proc?.tail.slice(-15).join('\n') ?? ''}`
      })
    } catch (err) {
      throw err instanceof ReadyError ? new StackError(err.message) : err
    }
  }
  const ctx: StackContext = { runner, stateDir, pidFiles, log, checkAbort, waitFor }

  try {
    await mkdir(stateDir, { recursive: true })
    await takeLock(lockFile)
    await stopLeftovers(stateDir, log)
    if (options.fresh) await wipeStateDir(stateDir, root, log)
    const runDir = join(stateDir, 'run')
    await mkdir(runDir, { recursive: true })

    // API ports first: a clash should fail before anything is started or built.
    const ports = await apiPorts(options.apiBasePort ?? DEFAULTS.apiBasePort, replicas)
    // nginx's ports likewise
    let frontPort = 0
    let statusPort = 0
    if (withNginx) ({ frontPort, statusPort } = await nginxPorts(ports, options.port ?? DEFAULTS.port, options.nginxStatusPort))

    const { redisBin, mysqlBins, nginxBin, reuseRedis, reuseMysql } = await findBinaries(runner, log, { redisUrl: options.redisUrl, mysqlUrl: options.mysqlUrl, withNginx, install: options.install, baseEnv })

    // ---- build (CPU-bound; overlaps with the data stores starting)
    const build = (async () => {
      if (options.build === false || options.fromSource) return
      const tb = Date.now()
      log('building: npm run build')
      await runner.run('build', process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', '--silent', 'build'], { cwd: root })
      log(`build done in ${secs(Date.now() - tb)}`)
    })()
    build.catch(() => {}) // awaited below

    // ---- Redis
    const redisReady = startRedis(ctx, redis, { redisUrl: options.redisUrl, reuseRedis, redisBin, redisPort: options.redisPort })
    redisReady.catch(() => {})

    // ---- MySQL/MariaDB, database, migrations, seed
    const mysqlReady = prepareMysql(ctx, mysql, { mysqlUrl: options.mysqlUrl, reuseMysql, mysqlBins, mysqlPort: options.mysqlPort, root, users })
    mysqlReady.catch(() => {})

    const [redisUrl, mysqlUrl] = await settleAll([redisReady, mysqlReady, build] as const)
    checkAbort()

    // ---- API replicas
    // Without nginx's per-IP limits (the benchmark switch: one load generator is one client) the
    // app's per-client limits are off too; otherwise the replicas get RATE_LIMIT_* from the env.
    const replicaEnv = rateLimit ? baseEnv : { ...baseEnv, RATE_LIMIT_ENABLED: 'false' }
    const { apiUrls, spawnReplica, waitReady, killReplica, startReplica, restartReplica } = createReplicas(ctx, apis, {
      options, root, runDir, ports, replicas, withNginx, baseEnv: replicaEnv, redisUrl, mysqlUrl, adminToken
    })

    const ta = Date.now()
    ports.forEach((_port, i) => spawnReplica(i))
    await settleAll(ports.map((_port, i) => waitReady(i)))
    let appLimits: string
    try { appLimits = describeRateLimits(loadConfig(replicaEnv)) } catch { appLimits = 'see the replicas\' logs' }
    log(`${replicas} replica(s) ready in ${secs(Date.now() - ta)}, app rate limits: ${appLimits}`)

    if (withNginx) {
      // Ports picked at random (port 0, as the tests do) were free when probed, seconds ago; another
      // process may have bound one since. Pick again and retry rather than fail the whole stack.
      const auto = (options.port ?? DEFAULTS.port) === 0 && options.nginxStatusPort === undefined
      for (let attempt = 1; ; attempt++) {
        if (auto && attempt > 1) ({ frontPort, statusPort } = await nginxPorts(ports, 0, undefined))
        try {
          nginx = await startNginx(ctx, { nginxBin: nginxBin!, runDir, ports, frontPort, statusPort, rateLimit, balance })
          break
        } catch (err) {
          if (!auto || attempt >= 3 || !/Address already in use/.test(String((err as Error).message))) throw err
          log(`nginx could not bind port ${frontPort} or ${statusPort} (taken meanwhile); trying other ports`)
        }
      }
    }
    log(`stack up in ${secs(Date.now() - t0)}`)

    return {
      apiUrls,
      frontUrl: nginx?.frontUrl,
      nginxStatusUrl: nginx?.nginxStatusUrl,
      nginxConfigFile: nginx?.nginxConfigFile,
      nginxAccessLog: nginx?.nginxAccessLog,
      redisUrl,
      mysqlUrl,
      adminToken,
      stateDir,
      processes: () => [...apis, ...(nginx ? [nginx.proc] : []), ...(redis.proc ? [redis.proc] : []), ...(mysql.proc ? [mysql.proc] : [])]
        .map((p) => ({ name: p.name, pid: p.pid, running: !p.exited })),
      killReplica,
      startReplica,
      restartReplica,
      stop
    }
  } catch (err) {
    await stop()
    if (options.signal?.aborted) throw abortError()
    throw err
  }
}
