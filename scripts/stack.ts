// `npm run stack`: the whole service on one machine, without Docker.
//
// Starts (or reuses) Redis and MariaDB/MySQL with their state under .stack/, creates the database,
// applies migrations, seeds demo data into an empty database, builds, runs N API replicas on
// consecutive ports, and the real nginx binary in front of them on --port (8080), with a config
// rendered from nginx/nginx.conf.template (scripts/nginx-config.ts, local mode), as in compose.
// Ctrl-C stops everything it started, and nothing else.
//
//   npm run stack -- [--replicas N] [--api-base-port P] [--users N] [--fresh] [--port P]
//                    [--status-port P] [--no-rate-limit] [--no-nginx] [--state-dir DIR]
//                    [--no-build] [--raw-logs]
//
// startStack() is the same thing as a function, for tests (nginx only with `nginx: true` there),
// with killReplica/startReplica/restartReplica for failure and rolling-restart tests.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes, createHash } from 'node:crypto'
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { availableParallelism, homedir, tmpdir } from 'node:os'
import { delimiter, dirname, join, relative, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { Redis } from 'ioredis'
import { migrate } from '../src/lib/migrations.ts'
import { CAPACITY_DEFAULTS, rateLimitFromEnv, renderNginxConfig } from './nginx-config.ts'
import { isMain } from './lib/is-main.ts'

export interface StackOptions {
  /** API processes to run (default 1). */
  replicas?: number
  /** First API port; replica i listens on base + i - 1 (default 3001). 0 = any free ports. */
  apiBasePort?: number
  /** Run nginx in front of the replicas (default false for startStack; `npm run stack` turns it on
   *  unless --no-nginx). */
  nginx?: boolean
  /** nginx's public port on 127.0.0.1 (default 8080). 0 = any free port. */
  port?: number
  /** nginx's stub_status port on 127.0.0.1 (default: port + 1 when free, otherwise any free port). */
  nginxStatusPort?: number
  /** nginx's per-IP limits (default on, unless NGINX_RATE_LIMIT=off in `env`); off for benchmarks. */
  rateLimit?: boolean
  /** Run the replicas from src/ through tsx instead of dist/ (no build needed; slower start). */
  fromSource?: boolean
  /** SHUTDOWN_DRAIN_DELAY_MS for replicas behind nginx, unless `env` sets it (default 500). */
  drainDelayMs?: number
  /** Demo users to seed when the users table is empty (default 10000; 0 = do not seed). */
  users?: number
  /** Wipe the state directory (databases included) before starting. */
  fresh?: boolean
  /** Where Redis/MySQL state, pid files and logs live (default <repo>/.stack). */
  stateDir?: string
  /** Reuse this Redis instead of starting one (the CLI passes $REDIS_URL). */
  redisUrl?: string
  /** Reuse this MySQL instead of starting one (the CLI passes $MYSQL_URL). */
  mysqlUrl?: string
  /** Port for a Redis we start: preferred 6380, or any free one if taken. 0 = any free port. */
  redisPort?: number
  /** Port for a MariaDB/MySQL we start: preferred 3307, or any free one if taken. 0 = any free port. */
  mysqlPort?: number
  /** ADMIN_TOKEN for the replicas (>= 16 chars); generated when absent. */
  adminToken?: string
  /** Run `npm run build` before starting the replicas (default true). */
  build?: boolean
  /** When binaries are missing and we are root, apt-get install them (default false; the CLI sets true). */
  install?: boolean
  /** LOG_LEVEL for the replicas (default $LOG_LEVEL or info). */
  logLevel?: string
  /** Base environment of every child (default process.env); for the replicas the stack sets PORT,
   *  HOST, REPLICA_ID, MYSQL_URL, REDIS_URL and ADMIN_TOKEN on top, and behind nginx TRUST_PROXY and
   *  SHUTDOWN_DRAIN_DELAY_MS unless set here. */
  env?: NodeJS.ProcessEnv
  /** Where the stack's own and its children's (prefixed) log lines go (default console.log). */
  log?: (line: string) => void
  /** Print the replicas' pino JSON lines as they are instead of compacted (default false). */
  rawLogs?: boolean
  /** Aborting stops whatever has been started and makes startStack reject. */
  signal?: AbortSignal
  /** Max wait for each replica's /health/ready (default 60 s). */
  readyTimeoutMs?: number
  /** Grace before an API process that ignores SIGTERM is killed (default 15 s). */
  apiStopTimeoutMs?: number
}

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

export class StackError extends Error {}

const MARKER = 'RECSVC_STACK_DIR'
const DEFAULTS = { replicas: 1, apiBasePort: 3001, port: 8080, users: 10_000, redisPort: 6380, mysqlPort: 3307 }

// ---------------------------------------------------------------------------------------------
// small helpers

export function repoRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }
      if (pkg.name === 'recsvc') return dir
    } catch {}
    dir = dirname(dir)
  }
  throw new Error('recsvc package.json not found above scripts/')
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const secs = (ms: number) => ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** True when the process is one we started for this state dir: it carries our marker in its
 *  environment, or its working directory is the state directory we gave it (redis-server rewrites
 *  its environ area for its process title, so for it only the cwd check works). */
function ownedBy (pid: number, stateDir: string, cwd?: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    if (env.includes(`${MARKER}=${stateDir}`)) return true
  } catch {}
  if (cwd) {
    try {
      return resolve(readlinkSync(`/proc/${pid}/cwd`)) === resolve(cwd)
    } catch {}
  }
  return false
}

async function waitGone (pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (!isAlive(pid)) return true
    await sleep(100)
  }
  return !isAlive(pid)
}

async function readPid (file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

async function portFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address()
      srv.close(() => typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')))
    })
  })
}

/** `preferred` when it is free, otherwise (or for 0) any free port. */
async function pickPort (preferred: number): Promise<number> {
  if (preferred > 0 && await portFree(preferred)) return preferred
  return await freePort()
}

/** One inline Redis command over a plain TCP connection; resolves with the first reply line. */
function redisCommand (port: number, args: string[], timeoutMs = 1000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host })
    let buf = ''
    const done = (err: Error | null, value?: string) => {
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value ?? '')
    }
    const timer = setTimeout(() => done(new Error('redis command timed out')), timeoutMs)
    sock.once('error', (err) => done(err))
    sock.on('data', (d) => {
      buf += d.toString()
      const i = buf.indexOf('\r\n')
      if (i >= 0) done(null, buf.slice(0, i))
    })
    // SHUTDOWN closes the connection without a reply.
    sock.once('close', () => done(null, buf))
    sock.on('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`))
  })
}

async function redisAnswers (url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  r.on('error', () => {})
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

async function mysqlAnswers (url: string): Promise<boolean> {
  const u = new URL(url)
  u.pathname = '/'
  try {
    const c = await mysql.createConnection({ uri: u.toString(), connectTimeout: 1500 })
    await c.end()
    return true
  } catch {
    return false
  }
}

function redactUrl (url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')
}

const SBIN = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/local/bin', '/opt/homebrew/bin', '/opt/homebrew/sbin', '/usr/local/mysql/bin']

function findBin (...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SBIN]
  for (const name of names) {
    for (const dir of dirs) {
      const p = join(dir, name)
      try {
        if (statSync(p).isFile()) return p
      } catch {}
    }
  }
  return undefined
}

interface MysqlBins { server: string, flavor: 'mariadb' | 'mysql', installDb?: string }

function findMysqlBins (): MysqlBins | undefined {
  const mariadbd = findBin('mariadbd')
  if (mariadbd) return { server: mariadbd, flavor: 'mariadb', installDb: findBin('mariadb-install-db', 'mysql_install_db') }
  const mysqld = findBin('mysqld')
  if (!mysqld) return undefined
  const version = spawnSync(mysqld, ['--version'], { encoding: 'utf8' }).stdout ?? ''
  if (/mariadb/i.test(version)) return { server: mysqld, flavor: 'mariadb', installDb: findBin('mariadb-install-db', 'mysql_install_db') }
  return { server: mysqld, flavor: 'mysql' }
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }

/** A pino JSON line shortened to `LEVEL msg {rest}`; other lines unchanged. */
function compactPino (line: string): string {
  if (!line.startsWith('{')) return line
  try {
    const o = JSON.parse(line) as Record<string, unknown>
    const { level, time: _t, pid: _p, hostname: _h, msg, reqId, req, res, responseTime, ...rest } = o
    if (typeof level !== 'number') return line
    // fastify's request lines: `GET /recommend/1 [1a2b3c4d]`, `200 3.1ms [1a2b3c4d]`
    const r = req as { method?: string, url?: string } | undefined
    const s = res as { statusCode?: number } | undefined
    const parts = [
      ...(r?.method ? [`${r.method} ${r.url ?? ''}`] : []),
      ...(s?.statusCode ? [String(s.statusCode)] : []),
      ...(typeof responseTime === 'number' ? [`${responseTime.toFixed(1)}ms`] : []),
      ...(typeof reqId === 'string' ? [`[${reqId.slice(0, 8)}]`] : [])
    ]
    if (parts.length) rest.__ = parts.join(' ')
    const { __: head, ...others } = rest
    const extra = Object.keys(others).length ? ` ${JSON.stringify(others)}` : ''
    return `${LEVELS[level] ?? level} ${String(msg ?? '')}${head ? ` ${String(head)}` : ''}${extra.length > 600 ? `${extra.slice(0, 600)}…` : extra}`
  } catch {
    return line
  }
}

const COLORS = [36, 35, 33, 32, 34, 31]

// ---------------------------------------------------------------------------------------------
// child processes

// Holds a pipe from the stack; when the stack dies without stopping its children (SIGKILL, a test
// runner's timeout) the pipe closes and the watchdog sends the child's group SIGTERM, then SIGKILL.
// Builtins only. Its own process group, so a terminal Ctrl-C does not reach it.
const WATCHDOG = `read -r _
kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
i=0; while kill -0 "$1" 2>/dev/null && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -- "-$1" 2>/dev/null; exit 0`

function startWatchdog (pid: number): ChildProcess {
  const wd = spawn('/bin/sh', ['-c', WATCHDOG, 'recsvc-stack-watchdog', String(pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  wd.on('error', () => {})
  wd.stdin?.on('error', () => {})
  wd.unref()
  ;(wd.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return wd
}

type Kind = 'api' | 'nginx' | 'redis' | 'mysql' | 'tool'

interface Proc {
  name: string
  kind: Kind
  child: ChildProcess
  pid: number
  exited: boolean
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stopping: boolean
  tail: string[]
}

class Runner {
  readonly procs: Proc[] = []
  private colorOf = new Map<string, number>()
  stopping = false
  private readonly onExit = () => {
    // Last resort when this process goes away without stop(): ask every child to shut down.
    for (const p of this.procs) if (!p.exited) this.signal(p, 'SIGTERM')
  }

  constructor (readonly out: (line: string) => void, private readonly color: boolean, private readonly stateDir: string, private readonly baseEnv: NodeJS.ProcessEnv) {
    process.on('exit', this.onExit)
  }

  prefix (name: string): string {
    if (!this.color) return `[${name}]`
    let c = this.colorOf.get(name)
    if (c === undefined) {
      c = name === 'stack' ? 1 : COLORS[this.colorOf.size % COLORS.length] ?? 36
      this.colorOf.set(name, c)
    }
    return `\x1b[${c}m[${name}]\x1b[0m`
  }

  log (name: string, msg: string): void {
    for (const line of msg.split('\n')) this.out(`${this.prefix(name)} ${line}`)
  }

  /** Spawns in its own process group, so a terminal Ctrl-C reaches only the stack, which then
   *  stops the children in order. Output is prefixed line by line; the last lines are kept. */
  spawn (name: string, kind: Kind, cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, format?: (line: string) => string, quiet?: boolean }): Proc {
    if (this.stopping) throw new StackError('stack is stopping')
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...(opts.env ?? this.baseEnv), [MARKER]: this.stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    })
    const tail: string[] = []
    const proc: Proc = {
      name,
      kind,
      child,
      pid: child.pid ?? -1,
      exited: false,
      stopping: false,
      tail,
      exit: new Promise((resolve) => {
        child.once('error', (err) => {
          tail.push(String(err))
          proc.exited = true
          resolve({ code: 127, signal: null })
        })
        child.once('exit', (code, signal) => {
          proc.exited = true
          resolve({ code, signal })
        })
      })
    }
    const onLine = (line: string) => {
      tail.push(line)
      if (tail.length > 40) tail.shift()
      if (!opts.quiet) this.log(name, opts.format ? opts.format(line) : line)
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine)
    }
    if (kind !== 'tool' && proc.pid > 0) {
      const wd = startWatchdog(proc.pid)
      void proc.exit.then(() => { try { wd.kill('SIGKILL') } catch {} })
    }
    this.procs.push(proc)
    return proc
  }

  /** Runs a command to completion; throws with its last output lines when it fails. */
  async run (name: string, cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, quiet?: boolean } = {}): Promise<void> {
    const p = this.spawn(name, 'tool', cmd, args, opts)
    const { code, signal } = await p.exit
    if (code !== 0) {
      if (this.stopping) throw new StackError('stack is stopping')
      const output = opts.quiet ? `\n${p.tail.slice(-15).join('\n')}` : ' (output above)'
      throw new StackError(`${name} failed (${signal ?? `exit code ${code}`}): ${cmd} ${args.join(' ')}${output}`)
    }
  }

  signal (p: Proc, sig: NodeJS.Signals): void {
    if (p.exited || p.pid <= 0) return
    try {
      process.kill(-p.pid, sig) // the whole group: npm -> sh -> tsc, mariadb-install-db -> mariadbd
    } catch {
      try { process.kill(p.pid, sig) } catch {}
    }
  }

  /** sig, then SIGKILL after timeoutMs. */
  async terminate (p: Proc, sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (p.exited) return
    p.stopping = true
    this.signal(p, sig)
    const t = setTimeout(() => {
      if (!p.exited) {
        this.log('stack', `${p.name} (pid ${p.pid}) still running after ${secs(timeoutMs)}; SIGKILL`)
        this.signal(p, 'SIGKILL')
      }
    }, timeoutMs)
    await p.exit
    clearTimeout(t)
  }

  detachExitHook (): void {
    process.off('exit', this.onExit)
  }
}

// ---------------------------------------------------------------------------------------------
// the stack

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
  const runner = new Runner(out, color, stateDir, baseEnv)
  const log = (msg: string) => runner.log('stack', msg)
  const rel = (p: string) => {
    const r = relative(process.cwd(), p)
    return r === '' ? '.' : r.startsWith('..') ? p : r
  }

  const adminToken = options.adminToken ?? randomBytes(24).toString('base64url')
  if (adminToken.length < 16) throw new StackError('ADMIN_TOKEN must be at least 16 characters')

  let redisProc: Proc | undefined
  let redisPort = 0
  let mysqlProc: Proc | undefined
  let nginxProc: Proc | undefined
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
      // 0. nginx first, so no new request reaches a replica that is going away; SIGQUIT is its
      //    graceful shutdown (requests in flight are finished)
      await Promise.all(runner.procs.filter((p) => p.kind === 'nginx').map((p) => runner.terminate(p, 'SIGQUIT', 10_000)))
      // 1. API replicas and any tool still running (build, seed, install-db)
      await Promise.all(runner.procs.filter((p) => p.kind === 'api' || p.kind === 'tool')
        .map((p) => runner.terminate(p, 'SIGTERM', p.kind === 'api' ? options.apiStopTimeoutMs ?? 15_000 : 5_000)))
      // 2. then the data stores, in parallel
      await Promise.all([
        (async () => {
          if (!mysqlProc || mysqlProc.exited) return
          await runner.terminate(mysqlProc, 'SIGTERM', 60_000) // mariadbd flushes InnoDB and exits
        })(),
        (async () => {
          if (!redisProc || redisProc.exited) return
          redisProc.stopping = true
          await redisCommand(redisPort, ['SHUTDOWN', 'NOSAVE']).catch(() => {})
          const gone = await Promise.race([redisProc.exit.then(() => true), sleep(3000).then(() => false)])
          if (!gone) await runner.terminate(redisProc, 'SIGTERM', 5000)
        })()
      ])
      for (const f of pidFiles) await rm(f, { force: true })
      if (await readPid(lockFile) === process.pid) await rm(lockFile, { force: true })
      runner.detachExitHook()
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

  /** Waits for `probe` to succeed, failing early when `proc` exits or the stack is stopped. */
  const waitFor = async (what: string, probe: () => Promise<boolean>, timeoutMs: number, proc?: Proc) => {
    const until = Date.now() + timeoutMs
    for (;;) {
      checkAbort()
      if (proc?.exited) {
        const { code, signal } = await proc.exit
        throw new StackError(`${proc.name} exited (${signal ?? `code ${code}`}) while waiting for ${what}\n${proc.tail.slice(-15).join('\n')}`)
      }
      if (await probe()) return
      if (Date.now() > until) throw new StackError(`timed out after ${secs(timeoutMs)} waiting for ${what}`)
      await sleep(150)
    }
  }

  try {
    await mkdir(stateDir, { recursive: true })
    await takeLock(lockFile)
    await stopLeftovers(stateDir, log)
    if (options.fresh) {
      if ([root, '/', homedir(), tmpdir()].map((d) => resolve(d)).includes(stateDir)) throw new StackError(`refusing to wipe ${stateDir} (--fresh); pick a dedicated --state-dir`)
      log(`--fresh: wiping ${rel(stateDir)}`)
      for (const name of await readdir(stateDir)) if (name !== 'stack.pid') await rm(join(stateDir, name), { recursive: true, force: true })
    }
    const runDir = join(stateDir, 'run')
    await mkdir(runDir, { recursive: true })

    // API ports first: a clash should fail before anything is started or built.
    const basePort = options.apiBasePort ?? DEFAULTS.apiBasePort
    const ports: number[] = []
    for (let i = 0; i < replicas; i++) {
      if (basePort === 0) {
        ports.push(await freePort())
      } else {
        const port = basePort + i
        if (!await portFree(port)) throw new StackError(`port ${port} (api-${i + 1}) is in use; pass --api-base-port to use other ports`)
        ports.push(port)
      }
    }
    // nginx's ports likewise
    let frontPort = 0
    let statusPort = 0
    if (withNginx) {
      const wanted = options.port ?? DEFAULTS.port
      if (wanted === 0) {
        do frontPort = await freePort(); while (ports.includes(frontPort))
      } else {
        if (ports.includes(wanted) || !await portFree(wanted)) throw new StackError(`port ${wanted} (nginx) is in use; pass --port to use another one`)
        frontPort = wanted
      }
      if (options.nginxStatusPort) {
        statusPort = options.nginxStatusPort
        if ([...ports, frontPort].includes(statusPort) || !await portFree(statusPort)) throw new StackError(`port ${statusPort} (nginx status) is in use; pass --status-port to use another one`)
      } else {
        statusPort = frontPort < 65535 ? await pickPort(frontPort + 1) : await freePort()
        while ([...ports, frontPort].includes(statusPort)) statusPort = await freePort()
      }
    }

    // ---- binaries
    const wantRedis = !options.redisUrl
    const wantMysql = !options.mysqlUrl
    let redisBin = wantRedis ? findBin('redis-server') : undefined
    let mysqlBins = wantMysql ? findMysqlBins() : undefined
    let reuseRedis: string | undefined
    let reuseMysql: string | undefined
    if (wantRedis && !redisBin && await redisAnswers('redis://127.0.0.1:6379')) {
      reuseRedis = 'redis://127.0.0.1:6379'
      log('redis-server not installed, but a Redis answers on 127.0.0.1:6379: reusing it (the stack will not stop it)')
    }
    if (wantMysql && (!mysqlBins || (mysqlBins.flavor === 'mariadb' && !mysqlBins.installDb)) && await mysqlAnswers('mysql://root@127.0.0.1:3306/')) {
      reuseMysql = 'mysql://root@127.0.0.1:3306/recsvc'
      log('mariadbd/mysqld not installed, but a MySQL answers on 127.0.0.1:3306 as root: reusing it (the stack will not stop it)')
    }
    let nginxBin = withNginx ? findBin('nginx') : undefined
    const missing: string[] = []
    if (wantRedis && !redisBin && !reuseRedis) missing.push('redis-server')
    if (wantMysql && !reuseMysql && (!mysqlBins || (mysqlBins.flavor === 'mariadb' && !mysqlBins.installDb))) missing.push('mariadb-server')
    if (withNginx && !nginxBin) missing.push('nginx-light')
    if (missing.length) {
      const isRoot = process.getuid?.() === 0
      if (options.install && isRoot && findBin('apt-get')) {
        // nginx-light (core modules only) where the distribution still has it, nginx elsewhere.
        const pkgs = missing.map((m) => m === 'nginx-light' && spawnSync('apt-cache', ['show', 'nginx-light'], { stdio: 'ignore' }).status !== 0 ? 'nginx' : m)
        const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`
        log(`missing ${missing.join(', ')}; installing: ${cmd}`)
        await runner.run('apt', 'sh', ['-c', cmd], { env: { ...baseEnv, DEBIAN_FRONTEND: 'noninteractive' } })
        redisBin = wantRedis && !reuseRedis ? findBin('redis-server') : undefined
        mysqlBins = wantMysql && !reuseMysql ? findMysqlBins() : undefined
        nginxBin = withNginx ? findBin('nginx') : undefined
      } else {
        const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`
        throw new StackError([
          `missing: ${missing.join(', ')} (needed to run ${missing.map((m) => m.replace(/-.*/, '')).join(', ')} locally). Install them, then run again:`,
          `  Debian/Ubuntu: sudo ${cmd}`,
          `  macOS:         brew install ${missing.map((m) => m.replace(/-.*/, '')).join(' ')}`,
          ...(missing.some((m) => m !== 'nginx-light') ? ['or point the stack at running servers: REDIS_URL=redis://host:6379 MYSQL_URL=mysql://user:pass@host:3306/recsvc npm run stack'] : []),
          ...(withNginx && !nginxBin ? ['or run the replicas without nginx in front: npm run stack -- --no-nginx'] : [])
        ].join('\n'))
      }
    }

    const startMysql = async (): Promise<string> => {
      const bins = mysqlBins!
      const dir = join(stateDir, 'mysql')
      const dataDir = join(dir, 'data')
      await mkdir(dir, { recursive: true })
      const asRoot = process.getuid?.() === 0 ? ['--user=root'] : []
      // MariaDB's default 96 MB redo log is most of a demo datadir; MariaDB resizes it on start.
      const innodb = bins.flavor === 'mariadb' ? ['--innodb-log-file-size=32M'] : []
      if (!existsSync(join(dataDir, 'mysql'))) {
        // Initialise into a temporary directory and rename, so an interrupted init is not mistaken
        // for a datadir on the next run.
        const tmp = join(dir, 'data.init')
        await rm(tmp, { recursive: true, force: true })
        await rm(dataDir, { recursive: true, force: true })
        const ti = Date.now()
        log(`initialising ${bins.flavor} datadir ${rel(dataDir)} (once)`)
        if (bins.flavor === 'mariadb') {
          await runner.run('mysql-init', bins.installDb!, ['--no-defaults', '--auth-root-authentication-method=normal', '--skip-test-db', `--datadir=${tmp}`, ...innodb, ...asRoot], { quiet: true })
        } else {
          await mkdir(tmp)
          await runner.run('mysql-init', bins.server, ['--no-defaults', '--initialize-insecure', `--datadir=${tmp}`, ...asRoot], { quiet: true })
        }
        await rename(tmp, dataDir)
        log(`datadir initialised in ${secs(Date.now() - ti)}`)
      }
      const sock = socketPath(join(dir, 'mysqld.sock'))
      const pidFile = join(dir, 'mysqld.pid')
      const errorLog = join(dir, 'error.log')
      for (let attempt = 1; ; attempt++) {
        const tm = Date.now()
        const port = await pickPort(attempt === 1 ? options.mysqlPort ?? DEFAULTS.mysqlPort : 0)
        checkAbort()
        const before = await fileSize(errorLog)
        mysqlProc = runner.spawn('mysql', 'mysql', bins.server, [
          '--no-defaults', `--datadir=${dataDir}`, `--socket=${sock}`, `--pid-file=${pidFile}`, `--port=${port}`,
          '--bind-address=127.0.0.1', `--log-error=${errorLog}`, ...asRoot, '--skip-log-bin',
          // N replicas x MYSQL_POOL_SIZE (20) connections plus seeding exceed the default 151.
          '--max-connections=1000',
          '--performance-schema=OFF', '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
          // A local demo database: faster seeding, at most ~1 s of commits lost on a crash.
          '--innodb-flush-log-at-trx-commit=2', ...innodb,
          ...(bins.flavor === 'mysql' ? ['--mysqlx=OFF'] : [])
        ], { cwd: dataDir })
        pidFiles.push(pidFile)
        const url = `mysql://root@127.0.0.1:${port}/recsvc`
        try {
          const proc = mysqlProc
          await waitFor(`${bins.flavor} on port ${port}`, () => mysqlAnswers(url), 120_000, proc)
          log(`${bins.flavor} ready on 127.0.0.1:${port} in ${secs(Date.now() - tm)} (pid ${proc.pid}, log ${rel(errorLog)})`)
          return url
        } catch (err) {
          const newLog = await readFile(errorLog, 'utf8').then((s) => s.slice(before)).catch(() => '')
          if (attempt < 3 && mysqlProc.exited && /already in use|Can't start server: Bind/i.test(newLog)) {
            log(`port ${port} was taken meanwhile; retrying on another port`)
            continue
          }
          if (err instanceof StackError && newLog) err.message += `\n--- ${rel(errorLog)} (last lines) ---\n${newLog.trim().split('\n').slice(-15).join('\n')}`
          throw err
        }
      }
    }

    const createDatabase = async (url: string) => {
      const u = new URL(url)
      const db = decodeURIComponent(u.pathname.replace(/^\//, ''))
      if (!db) throw new StackError(`MYSQL_URL ${redactUrl(url)} names no database`)
      u.pathname = '/'
      const conn = await mysql.createConnection({ uri: u.toString(), connectTimeout: 5000 })
      try {
        const [rows] = await conn.query('SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?', [db]) as unknown as [unknown[]]
        if (rows.length === 0) {
          await conn.query(`CREATE DATABASE \`${db.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
          log(`created database ${db}`)
        }
      } finally {
        await conn.end()
      }
    }

    const seedIfEmpty = async (url: string) => {
      const conn = await mysql.createConnection({ uri: url, connectTimeout: 5000 })
      let empty: boolean
      let partial: boolean
      try {
        const [rows] = await conn.query('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM items) + (SELECT COUNT(*) FROM categories) AS other') as unknown as [Array<{ users: number, other: number }>]
        empty = Number(rows[0]?.users) === 0
        partial = empty && Number(rows[0]?.other) > 0
      } finally {
        await conn.end()
      }
      if (!empty) {
        log('database has users; not seeding (use --fresh to start over)')
        return
      }
      if (users <= 0) {
        log('database is empty and --users 0: not seeding')
        return
      }
      // Categories/items without users: a seed that was interrupted. Start it over, but only in a
      // database the stack owns; elsewhere seed.ts refuses and says why.
      const reset = partial && !options.mysqlUrl && !reuseMysql
      const ts = Date.now()
      log(`database ${reset ? 'has a partial seed (no users)' : 'is empty'}: seeding ${users} demo users${reset ? ' with --reset' : ''} (scripts/seed.ts)`)
      await runSeed(runner, root, url, users, reset)
      log(`seeded ${users} users in ${secs(Date.now() - ts)}`)
    }

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
    const redisReady = (async (): Promise<string> => {
      if (options.redisUrl) {
        if (!await redisAnswers(options.redisUrl)) throw new StackError(`REDIS_URL=${redactUrl(options.redisUrl)} does not answer`)
        log(`using Redis at ${redactUrl(options.redisUrl)} (REDIS_URL; not started by the stack)`)
        return options.redisUrl
      }
      if (reuseRedis) return reuseRedis
      const dir = join(stateDir, 'redis')
      await mkdir(dir, { recursive: true })
      for (let attempt = 1; ; attempt++) {
        const tr = Date.now()
        redisPort = await pickPort(attempt === 1 ? options.redisPort ?? DEFAULTS.redisPort : 0)
        checkAbort()
        // A cache: nothing is persisted, so a restart starts empty and SHUTDOWN NOSAVE is instant.
        redisProc = runner.spawn('redis', 'redis', redisBin!, [
          '--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir,
          '--pidfile', join(dir, 'redis.pid'), '--save', '', '--appendonly', 'no',
          '--daemonize', 'no', '--loglevel', 'warning', '--maxmemory', '512mb', '--maxmemory-policy', 'allkeys-lru'
        ], { cwd: dir })
        pidFiles.push(join(dir, 'redis.pid'))
        try {
          const proc = redisProc
          await waitFor(`Redis on port ${redisPort}`, async () => (await redisCommand(redisPort, ['PING'], 500).catch(() => '')) === '+PONG', 15_000, proc)
          log(`Redis ready on 127.0.0.1:${redisPort} in ${secs(Date.now() - tr)} (pid ${proc.pid}, state ${rel(dir)})`)
          return `redis://127.0.0.1:${redisPort}`
        } catch (err) {
          if (attempt < 3 && redisProc.exited && /address already in use/i.test(redisProc.tail.join('\n'))) {
            log(`port ${redisPort} was taken meanwhile; retrying on another port`)
            continue
          }
          throw err
        }
      }
    })()
    redisReady.catch(() => {})

    // ---- MySQL/MariaDB, database, migrations, seed
    const mysqlReady = (async (): Promise<string> => {
      let url: string
      if (options.mysqlUrl) {
        url = options.mysqlUrl
        if (!await mysqlAnswers(url)) throw new StackError(`MYSQL_URL=${redactUrl(url)} does not answer`)
        log(`using MySQL at ${redactUrl(url)} (MYSQL_URL; not started by the stack)`)
      } else if (reuseMysql) {
        url = reuseMysql
      } else {
        url = await startMysql()
      }
      checkAbort()
      await createDatabase(url)
      const tm = Date.now()
      const applied = await migrate(url, { log: (m) => log(`migrate: ${m}`) })
      log(applied.length ? `applied ${applied.length} migration(s) in ${secs(Date.now() - tm)}` : 'schema up to date')
      checkAbort()
      await seedIfEmpty(url)
      return url
    })()
    mysqlReady.catch(() => {})

    const [redisUrl, mysqlUrl] = await settleAll([redisReady, mysqlReady, build] as const)
    checkAbort()

    // ---- API replicas
    const cores = availableParallelism()
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      NODE_ENV: baseEnv.NODE_ENV ?? 'production',
      HOST: baseEnv.HOST ?? '127.0.0.1',
      MYSQL_URL: mysqlUrl,
      REDIS_URL: redisUrl,
      ADMIN_TOKEN: adminToken,
      LOG_LEVEL: options.logLevel ?? baseEnv.LOG_LEVEL ?? 'info',
      // N replicas share the cores; the default (cores - 1 threads each) would oversubscribe them.
      SCORER_THREADS: baseEnv.SCORER_THREADS ?? String(Math.max(1, Math.floor(Math.max(1, cores - 1) / replicas))),
      // Behind nginx: X-Forwarded-* are trusted from nginx only. Open-source nginx never polls
      // /health/ready (no active health checks): a replica that stops is routed around passively
      // (connection refused or 503 -> the next replica, max_fails/fail_timeout), so a long drain
      // delay would only slow restarts down; a short one keeps "readiness fails first" observable.
      ...(withNginx
        ? {
            TRUST_PROXY: baseEnv.TRUST_PROXY || '127.0.0.1',
            SHUTDOWN_DRAIN_DELAY_MS: baseEnv.SHUTDOWN_DRAIN_DELAY_MS || String(options.drainDelayMs ?? 500)
          }
        : {})
    }
    const serverArgs = options.fromSource
      ? ['--import', 'tsx', join(root, 'src', 'server.ts')]
      : [join(root, 'dist', 'src', 'server.js')]
    const entry = serverArgs[serverArgs.length - 1]!
    if (!existsSync(entry)) throw new StackError(`${rel(entry)} not found; run npm run build`)
    const apiUrls = ports.map((p) => `http://127.0.0.1:${p}`)

    const spawnReplica = (i: number): Proc => {
      const name = `api-${i + 1}`
      const p = runner.spawn(name, 'api', process.execPath, serverArgs, {
        cwd: root,
        env: { ...env, PORT: String(ports[i]), REPLICA_ID: name },
        format: options.rawLogs ? undefined : compactPino
      })
      apis[i] = p
      const pidFile = join(runDir, `${name}.pid`)
      if (!pidFiles.includes(pidFile)) pidFiles.push(pidFile)
      void writeFile(pidFile, `${p.pid}\n`).catch(() => {})
      void p.exit.then(({ code, signal }) => {
        if (p.stopping || runner.stopping) return
        const left = apis.filter((a) => !a.exited).length
        log(`${name} (pid ${p.pid}) exited unexpectedly (${signal ?? `code ${code}`}); ${left} replica(s) still running`)
      })
      return p
    }
    const waitReady = (i: number) => waitFor(`api-${i + 1} /health/ready`, async () => {
      try {
        const res = await fetch(`${apiUrls[i]}/health/ready`, { signal: AbortSignal.timeout(2000) })
        await res.arrayBuffer()
        return res.status === 200
      } catch {
        return false
      }
    }, options.readyTimeoutMs ?? 60_000, apis[i])

    const ta = Date.now()
    ports.forEach((_port, i) => spawnReplica(i))
    await settleAll(ports.map((_port, i) => waitReady(i)))
    log(`${replicas} replica(s) ready in ${secs(Date.now() - ta)}`)

    // ---- nginx in front, from the same template as compose (local mode)
    let frontUrl: string | undefined
    let nginxStatusUrl: string | undefined
    let nginxConfigFile: string | undefined
    let nginxAccessLog: string | undefined
    if (withNginx) {
      const tn = Date.now()
      const dir = join(stateDir, 'nginx')
      await mkdir(dir, { recursive: true })
      nginxConfigFile = join(dir, 'nginx.conf')
      nginxAccessLog = join(dir, 'access.log')
      // nginx sets the descriptor limit of its workers (worker_rlimit_nofile); above the hard limit
      // that fails unless privileged, so stay within it here (compose containers allow far more).
      const hard = hardNofileLimit()
      const rlimit = Math.min(CAPACITY_DEFAULTS.workerRlimitNofile, hard)
      await writeFile(nginxConfigFile, renderNginxConfig({
        mode: 'local',
        upstreams: ports,
        port: frontPort,
        statusPort,
        stateDir,
        accessLog: nginxAccessLog,
        rateLimit,
        workerRlimitNofile: rlimit,
        workerConnections: Math.min(CAPACITY_DEFAULTS.workerConnections, Math.floor(rlimit / 2))
      }))
      const args = ['-e', 'stderr', '-p', `${dir}/`, '-c', nginxConfigFile]
      await runner.run('nginx-test', nginxBin!, [...args, '-t', '-q'], { cwd: dir, quiet: true })
      const proc = nginxProc = runner.spawn('nginx', 'nginx', nginxBin!, [...args, '-g', 'daemon off;'], {
        cwd: dir,
        format: (line) => line.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')
      })
      pidFiles.push(join(runDir, 'nginx.pid'))
      void proc.exit.then(({ code, signal }) => {
        if (!proc.stopping && !runner.stopping) log(`nginx (pid ${proc.pid}) exited unexpectedly (${signal ?? `code ${code}`}); the replicas are still reachable directly`)
      })
      frontUrl = `http://127.0.0.1:${frontPort}`
      nginxStatusUrl = `http://127.0.0.1:${statusPort}/nginx_status`
      const answers = async (url: string) => {
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
          await res.arrayBuffer()
          return res.status === 200
        } catch {
          return false
        }
      }
      await waitFor(`nginx on port ${frontPort}`, async () => await answers(nginxStatusUrl!) && await answers(`${frontUrl}/health/ready`), 15_000, proc)
      log(`nginx ready on ${frontUrl} in ${secs(Date.now() - tn)} (pid ${proc.pid}, least_conn over ${replicas} replica(s), per-IP limits ${rateLimit ? 'on' : 'OFF'}, config ${rel(nginxConfigFile)}, access log ${rel(nginxAccessLog)})`)
    }
    log(`stack up in ${secs(Date.now() - t0)}`)

    const replica = (i: number): Proc => {
      const p = Number.isInteger(i) ? apis[i] : undefined
      if (!p) throw new StackError(`no replica ${i}; replicas are 0..${replicas - 1}`)
      return p
    }
    const killReplica = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
      const p = replica(i)
      if (p.exited) return
      log(`${p.name} (pid ${p.pid}): ${signal}`)
      await runner.terminate(p, signal, options.apiStopTimeoutMs ?? 15_000)
    }
    const startReplica = async (i: number): Promise<void> => {
      const old = replica(i)
      if (!old.exited) throw new StackError(`${old.name} is still running (pid ${old.pid})`)
      const tr = Date.now()
      const p = spawnReplica(i)
      await waitReady(i)
      log(`${p.name} (pid ${p.pid}) ready in ${secs(Date.now() - tr)}`)
    }
    const restartReplica = async (i: number): Promise<void> => {
      await killReplica(i, 'SIGTERM')
      await startReplica(i)
    }

    return {
      apiUrls,
      frontUrl,
      nginxStatusUrl,
      nginxConfigFile,
      nginxAccessLog,
      redisUrl,
      mysqlUrl,
      adminToken,
      stateDir,
      processes: () => [...apis, ...(nginxProc ? [nginxProc] : []), ...(redisProc ? [redisProc] : []), ...(mysqlProc ? [mysqlProc] : [])]
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

/** Like Promise.all, but waits for every promise to settle before rejecting with the first error,
 *  so nothing is still starting while the stack is being torn down. */
async function settleAll<T extends readonly unknown[]> (ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(ps)
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed) {
    // Prefer a real error over the 'stack is stopping' noise of the processes it interrupted.
    const real = results.find((r) => r.status === 'rejected' && !/stack is stopping|^aborted$/.test(String((r.reason as Error)?.message))) as PromiseRejectedResult | undefined
    throw (real ?? failed).reason
  }
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}

/** The hard limit on open files of this process (and so of its children), Infinity if unlimited. */
function hardNofileLimit (): number {
  const out = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  const n = Number(out)
  return Number.isInteger(n) && n > 0 ? n : Infinity
}

async function fileSize (file: string): Promise<number> {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** Unix socket paths are limited to ~107 bytes; deep state dirs (temp dirs) get one under /tmp. */
function socketPath (wanted: string): string {
  if (Buffer.byteLength(wanted) < 100) return wanted
  return join(tmpdir(), `recsvc-mysqld-${createHash('sha1').update(wanted).digest('hex').slice(0, 12)}.sock`)
}

async function takeLock (lockFile: string): Promise<void> {
  const pid = await readPid(lockFile)
  if (pid && pid !== process.pid && isAlive(pid)) {
    let cmd = ''
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch {}
    if (cmd === '' || /node|tsx/.test(cmd)) {
      throw new StackError(`another stack is running with state dir ${dirname(lockFile)} (pid ${pid}); stop it first (kill -INT ${pid})`)
    }
  }
  await writeFile(lockFile, `${process.pid}\n`)
}

/** A previous run that was killed (SIGKILL, closed terminal) may have left its children running;
 *  they would hold the ports and the InnoDB lock. Stop those that are provably ours. */
async function stopLeftovers (stateDir: string, log: (m: string) => void): Promise<void> {
  const candidates: Array<{ file: string, cwd?: string }> = [
    { file: join(stateDir, 'redis', 'redis.pid'), cwd: join(stateDir, 'redis') },
    { file: join(stateDir, 'mysql', 'mysqld.pid'), cwd: join(stateDir, 'mysql', 'data') }
  ]
  try {
    for (const name of await readdir(join(stateDir, 'run'))) if (name.endsWith('.pid') && name !== 'nginx.pid') candidates.unshift({ file: join(stateDir, 'run', name) })
  } catch {}
  // nginx (like redis-server) overwrites its environment with its process title: check its cwd.
  // Stopped before the replicas, as in stop().
  candidates.unshift({ file: join(stateDir, 'run', 'nginx.pid'), cwd: join(stateDir, 'nginx') })
  for (const { file, cwd } of candidates) {
    const pid = await readPid(file)
    if (pid && isAlive(pid) && ownedBy(pid, stateDir, cwd)) {
      log(`stopping leftover process from a previous run: pid ${pid} (${relative(stateDir, file)})`)
      try { process.kill(pid, 'SIGTERM') } catch {}
      if (!await waitGone(pid, 60_000)) {
        try { process.kill(pid, 'SIGKILL') } catch {}
        await waitGone(pid, 5000)
      }
    }
    if (pid && !isAlive(pid)) await rm(file, { force: true })
  }
}

/** Seeds demo data with scripts/seed.ts, run as its own process so its progress output is
 *  prefixed and its memory is returned when it ends. */
async function runSeed (runner: Runner, root: string, mysqlUrl: string, users: number, reset: boolean): Promise<void> {
  const script = join(root, 'scripts', 'seed.ts')
  if (!existsSync(script)) throw new StackError('scripts/seed.ts not found; cannot seed demo data (pass --users 0 to skip)')
  await runner.run('seed', process.execPath, ['--import', 'tsx', script, '--users', String(users), '--mysql-url', mysqlUrl, ...(reset ? ['--reset'] : [])], { cwd: root })
}

// ---------------------------------------------------------------------------------------------
// CLI

function banner (s: Stack, opts: { redisStarted: boolean, mysqlStarted: boolean, rateLimit: boolean }): string {
  const first = (s.frontUrl ?? s.apiUrls[0]!).replace('http://127.0.0.1', 'localhost')
  return [
    '',
    'recsvc stack is up',
    ...(s.frontUrl
      ? [
          `  nginx:       ${s.frontUrl}   <- use this one (least_conn over ${s.apiUrls.length} replica(s), per-IP limits ${opts.rateLimit ? 'on' : 'OFF'})`,
          `  stub_status: ${s.nginxStatusUrl} (127.0.0.1 only)`,
          `  access log:  ${s.nginxAccessLog} (JSON)`
        ]
      : []),
    ...s.apiUrls.map((u, i) => `  api-${i + 1}:       ${u}`),
    `  Redis:       ${redactUrl(s.redisUrl)}${opts.redisStarted ? '' : ' (not started by the stack)'}`,
    `  MySQL:       ${redactUrl(s.mysqlUrl)}${opts.mysqlStarted ? '' : ' (not started by the stack)'}`,
    `  ADMIN_TOKEN: ${s.adminToken}`,
    '',
    'Try:',
    `  curl -i ${first}/recommend/123`,
    `  curl -s '${first}/batch-recommend?user_ids=1,2,3&limit=5'`,
    `  curl -s -X POST ${first}/batch-recommend -H 'content-type: application/json' -d '{"user_ids":[1,2,3]}'`,
    `  curl -i -X POST ${first}/invalidate-cache/123 -H 'authorization: Bearer ${s.adminToken}'`,
    `  curl -s ${first}/health/ready`,
    ...(s.nginxStatusUrl ? [`  curl -s ${s.nginxStatusUrl}`] : []),
    '',
    'Ctrl-C stops everything the stack started.',
    ''
  ].join('\n')
}

const USAGE = `usage: npm run stack -- [options]

  --replicas N         API processes (default 1)
  --api-base-port P    first API port; replicas listen on P..P+N-1 (default 3001)
  --port P             nginx's port, the one clients use (default 8080)
  --status-port P      nginx's stub_status port on 127.0.0.1 (default: --port + 1 when free)
  --no-rate-limit      nginx without its per-IP limits (for benchmarks; or NGINX_RATE_LIMIT=off)
  --no-nginx           only the replicas, no nginx in front
  --users N            demo users to seed when the database is empty (default 10000)
  --fresh              wipe the state directory (.stack/, databases included) first
  --state-dir DIR      state directory (default .stack)
  --no-build           do not run npm run build first
  --raw-logs           print the replicas' JSON logs unchanged
  -h, --help

Environment: REDIS_URL / MYSQL_URL reuse running servers instead of starting them;
ADMIN_TOKEN (>= 16 chars) is used instead of a generated one; LOG_LEVEL, SCORER_THREADS and the
other service variables are passed to the replicas (behind nginx, TRUST_PROXY defaults to 127.0.0.1
and SHUTDOWN_DRAIN_DELAY_MS to 500).`

async function main (): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        replicas: { type: 'string' },
        'api-base-port': { type: 'string' },
        port: { type: 'string' },
        'status-port': { type: 'string' },
        'no-rate-limit': { type: 'boolean' },
        'no-nginx': { type: 'boolean' },
        users: { type: 'string' },
        fresh: { type: 'boolean' },
        'state-dir': { type: 'string' },
        'no-build': { type: 'boolean' },
        'raw-logs': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(USAGE)
    return
  }
  const int = (name: string, v: string | undefined, def: number, min: number, max: number): number => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`--${name} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`)
      process.exit(2)
    }
    return n
  }
  const replicas = int('replicas', values.replicas, DEFAULTS.replicas, 1, 64)
  const port = int('port', values.port, DEFAULTS.port, 1, 65535)
  const statusPort = values['status-port'] === undefined ? undefined : int('status-port', values['status-port'], 0, 1, 65535)
  const rateLimit = values['no-rate-limit'] ? false : rateLimitFromEnv(process.env)
  const apiBasePort = int('api-base-port', values['api-base-port'], DEFAULTS.apiBasePort, 0, 65535 - replicas)
  const users = int('users', values.users, DEFAULTS.users, 0, 100_000_000)
  const env = process.env
  if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== '' && env.ADMIN_TOKEN.length < 16) {
    console.error('ADMIN_TOKEN must be at least 16 characters')
    process.exit(2)
  }

  const controller = new AbortController()
  let stack: Stack | undefined
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    // npm and tsx forward the terminal's signal too, so one Ctrl-C can arrive more than once.
    if (signals === 1) console.log(`\n[stack] ${sig}: stopping everything the stack started…`)
    if (stack) void stack.stop().then(() => process.exit(0))
    else controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)

  try {
    stack = await startStack({
      replicas,
      apiBasePort,
      nginx: !values['no-nginx'],
      port,
      nginxStatusPort: statusPort,
      rateLimit,
      users,
      fresh: values.fresh ?? false,
      stateDir: values['state-dir'],
      redisUrl: env.REDIS_URL || undefined,
      mysqlUrl: env.MYSQL_URL || undefined,
      adminToken: env.ADMIN_TOKEN || undefined,
      build: !values['no-build'],
      rawLogs: values['raw-logs'] ?? false,
      install: true,
      signal: controller.signal
    })
  } catch (err) {
    if (controller.signal.aborted) process.exit(130)
    console.error(`[stack] ${err instanceof StackError ? err.message : (err as Error).stack ?? String(err)}`)
    process.exit(1)
  }
  console.log(banner(stack, { redisStarted: !env.REDIS_URL && stack.processes().some((p) => p.name === 'redis'), mysqlStarted: !env.MYSQL_URL && stack.processes().some((p) => p.name === 'mysql'), rateLimit }))
  if (signals > 0) await stack.stop().then(() => process.exit(0))
}

if (isMain(import.meta.url)) {
  await main()
}
