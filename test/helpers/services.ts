/**
 * Real Redis and MySQL/MariaDB servers for integration tests.
 *
 * - `REDIS_URL` / `MYSQL_URL` set: those servers are used (unless `ownRedis` / `ownMysql` is forced).
 *   On an external MySQL server a uniquely named database is created and `stop()` drops only that one.
 *   `kill()` / `start()` throw there: outage tests need a server of their own.
 * - Otherwise the harness starts its own `redis-server` / `mariadbd` (or `mysqld`) on free ports in a
 *   temp dir, and stops them (and removes the dir) on `stop()`.
 *
 * Every process started here is killed when the test process exits: by a process 'exit' hook, and,
 * for deaths that skip it (signals, SIGKILL, a tap timeout), by a tiny watchdog shell that holds a pipe
 * from this process and kills the server when the pipe closes.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import mysql from 'mysql2/promise'

const execFileP = promisify(execFile)

export const DEFAULT_TIMEOUT_MS = 30_000

export interface ManagedServer {
  url: string
  port: number
  /** true when the harness started this server itself (kill/start work) */
  readonly own: boolean
  /** the process is up (always true for an external server) */
  readonly running: boolean
  /** server output (own servers only) */
  readonly logFile?: string
  /** pid of the running process (own servers only) */
  readonly pid?: number
  stop(): Promise<void>
  /** Stops the process (SIGKILL by default: an abrupt outage) but keeps port and data for start(). */
  kill(opts?: { signal?: NodeJS.Signals }): Promise<void>
  /** Starts the killed server again on the same port (and, for MySQL, the same datadir). */
  start(): Promise<void>
}

export type RedisServer = ManagedServer

export interface MysqlServer extends ManagedServer {
  /** the server without a database: mysql://root@127.0.0.1:PORT/ */
  serverUrl: string
  /** the fresh database this harness created; `url` points at it */
  database: string
}

export interface ServerOptions {
  /** use this server instead of starting one */
  externalUrl?: string
  /** every wait (start, ready, stop) is bounded by this; default 30 s */
  timeoutMs?: number
}

export interface MysqlOptions extends ServerOptions {
  /** where initialised template datadirs are cached; default os.tmpdir() */
  templateCacheDir?: string
}

/* ----------------------------------------------------------------------------------------------- */
/* process tracking                                                                                 */

const liveChildren = new Set<ChildProcess>()
const liveDirs = new Set<string>()

process.on('exit', () => {
  for (const child of liveChildren) {
    try { child.kill('SIGKILL') } catch {}
  }
  for (const dir of liveDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }) } catch {}
  }
})

// Blocks on a pipe from this process; when this process dies in any way the pipe hits EOF and the
// server is killed and its temp dir removed (once the server is gone or a zombie: init may reap late).
// It blocks in a builtin (read), so killing the shell leaves nothing behind; on a normal stop the
// watchdog is killed first.
const WATCHDOG = `read -r _ ; kill -KILL "$1" 2>/dev/null; i=0
while [ "$i" -lt 50 ] && kill -0 "$1" 2>/dev/null && ! grep -qs '^State:.*Z' "/proc/$1/status"; do sleep 0.1; i=$((i+1)); done
[ -n "$2" ] && rm -rf -- "$2"; exit 0`

function startWatchdog (pid: number, dir: string): ChildProcess {
  const wd = spawn('/bin/sh', ['-c', WATCHDOG, 'recsvc-test-watchdog', String(pid), dir], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: false
  })
  wd.on('error', () => {})
  wd.unref()
  ;(wd.stdin as unknown as net.Socket | null)?.unref?.()
  liveChildren.add(wd)
  wd.once('exit', () => liveChildren.delete(wd))
  return wd
}

/* ----------------------------------------------------------------------------------------------- */
/* small utilities                                                                                  */

const reservedPorts = new Set<number>()

/** A free TCP port on 127.0.0.1 (bind port 0, close, reuse); never one this process already holds. */
export async function getFreePort (): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer()
      srv.unref()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address()
        const p = typeof addr === 'object' && addr !== null ? addr.port : 0
        srv.close(() => resolve(p))
      })
    })
    if (port > 0 && !reservedPorts.has(port)) {
      reservedPorts.add(port)
      return port
    }
  }
  throw new Error('could not find a free TCP port on 127.0.0.1')
}

let prefixCounter = 0
/** A Redis key prefix no other test (in this or another process) uses, e.g. `t4242_1_9f3a2c:`. */
export function uniquePrefix (label = 't'): string {
  return `${label}${process.pid}_${++prefixCounter}_${crypto.randomBytes(3).toString('hex')}:`
}

function uniqueDbName (): string {
  return `recsvc_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** true when `p` settles within `ms`; the timer never outlives the wait (it would hold the process). */
async function settlesWithin (p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p.then(() => true), new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), ms) })])
  } finally {
    clearTimeout(timer)
  }
}

function tail (file: string | undefined, maxBytes = 4000): string {
  if (file === undefined) return ''
  try {
    const buf = fs.readFileSync(file)
    const text = buf.subarray(Math.max(0, buf.length - maxBytes)).toString('utf8')
    return `\n--- last lines of ${file} ---\n${text.trimEnd()}\n---`
  } catch {
    return `\n(no log at ${file})`
  }
}

function findBinary (names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/usr/local/sbin', '/usr/bin', '/usr/local/bin', '/sbin']
  for (const name of names) {
    for (const dir of dirs) {
      if (dir === '') continue
      const candidate = path.join(dir, name)
      try {
        fs.accessSync(candidate, fs.constants.X_OK)
        return candidate
      } catch {}
    }
  }
  return undefined
}

function needsOwn (kind: 'Redis' | 'MySQL', what: string): Error {
  const env = kind === 'Redis' ? 'REDIS_URL' : 'MYSQL_URL'
  const flag = kind === 'Redis' ? 'ownRedis' : 'ownMysql'
  return new Error(`${what} needs own server: this ${kind} is external (${env}); use startServices({ ${flag}: true })`)
}

/* ----------------------------------------------------------------------------------------------- */
/* a supervised server process                                                                      */

class Supervised {
  child: ChildProcess | undefined
  private watchdog: ChildProcess | undefined
  private exitInfo: string | undefined

  constructor (
    readonly name: string,
    readonly bin: string,
    readonly args: string[],
    readonly dir: string,
    readonly logFile: string,
    readonly timeoutMs: number
  ) {}

  get running (): boolean {
    return this.child !== undefined && this.exitInfo === undefined
  }

  /** Spawns the process and waits until `probe` answers true. */
  async start (probe: () => Promise<boolean>): Promise<void> {
    if (this.running) return
    const logFd = fs.openSync(this.logFile, 'a')
    fs.writeSync(logFd, `\n=== ${new Date().toISOString()} ${this.bin} ${this.args.join(' ')}\n`)
    let child: ChildProcess
    try {
      child = spawn(this.bin, this.args, { stdio: ['ignore', logFd, logFd], detached: false, cwd: this.dir })
    } finally {
      fs.closeSync(logFd)
    }
    this.child = child
    this.exitInfo = undefined
    liveChildren.add(child)
    child.unref() // a test that forgets stop() must not hang; the exit hook kills it
    child.on('error', (err) => { this.exitInfo = `could not be spawned: ${err.message}` })
    child.once('exit', (code, signal) => {
      liveChildren.delete(child)
      if (this.child === child) this.exitInfo = signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`
    })
    if (child.pid !== undefined) this.watchdog = startWatchdog(child.pid, this.dir)

    const deadline = Date.now() + this.timeoutMs
    for (;;) {
      if (this.exitInfo !== undefined) {
        const why = this.exitInfo
        this.stopWatchdog()
        throw new Error(`${this.name} ${why} before it was ready${tail(this.logFile)}`)
      }
      if (await probe().catch(() => false)) return
      if (Date.now() > deadline) {
        await this.terminate('SIGKILL').catch(() => {})
        throw new Error(`${this.name} was not ready within ${this.timeoutMs} ms${tail(this.logFile)}`)
      }
      await sleep(50)
    }
  }

  private stopWatchdog (): void {
    const wd = this.watchdog
    this.watchdog = undefined
    if (wd !== undefined) {
      try { wd.kill('SIGKILL') } catch {}
    }
  }

  /** Signals the process and waits for it to exit (SIGKILL after the timeout). */
  async terminate (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    this.stopWatchdog()
    const child = this.child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
      this.child = undefined
      return
    }
    child.ref() // keep the event loop alive while we wait for 'exit'
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    try { child.kill(signal) } catch {}
    if (!await settlesWithin(exited, this.timeoutMs)) {
      try { child.kill('SIGKILL') } catch {}
      if (!await settlesWithin(exited, 5000)) throw new Error(`${this.name} (pid ${String(child.pid)}) did not exit after SIGKILL`)
    }
    liveChildren.delete(child)
    this.child = undefined
    this.exitInfo = `was stopped (${signal})`
  }
}

async function makeTempDir (prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix))
  liveDirs.add(dir)
  return dir
}

async function removeTempDir (dir: string): Promise<void> {
  liveDirs.delete(dir)
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

/** kill/start/stop and live running/pid for a server this harness started. */
function ownServerControls (name: string, proc: Supervised, probe: () => Promise<boolean>, port: number, dir: string) {
  let stopped = false
  return {
    get running () { return proc.running },
    get pid () { return proc.running ? proc.child?.pid : undefined },
    async kill (o: { signal?: NodeJS.Signals } = {}) {
      if (stopped) throw new Error(`${name} server already stopped`)
      await proc.terminate(o.signal ?? 'SIGKILL')
    },
    async start () {
      if (stopped) throw new Error(`${name} server already stopped`)
      await proc.start(probe)
    },
    async stop () {
      if (stopped) return
      stopped = true
      await proc.terminate('SIGTERM')
      reservedPorts.delete(port)
      await removeTempDir(dir)
    }
  }
}

/** Merges keeping the getters live (a spread would copy their values once). */
function withControls<A extends object, B extends object> (a: A, b: B): A & B {
  return Object.defineProperties(a, Object.getOwnPropertyDescriptors(b)) as A & B
}

/* ----------------------------------------------------------------------------------------------- */
/* Redis                                                                                            */

/** Raw RESP PING; true on +PONG. */
export function pingRedis (port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port })
    let buf = ''
    let settled = false
    const done = (ok: boolean): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d: string) => {
      buf += d
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'))
    })
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
  })
}

export async function startRedis (opts: ServerOptions = {}): Promise<RedisServer> {
  if (opts.externalUrl !== undefined && opts.externalUrl !== '') return externalRedis(opts.externalUrl)
  const bin = findBinary(['redis-server'])
  if (bin === undefined) throw new Error('redis-server not found on PATH (apt-get install redis-server), or set REDIS_URL')
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const port = await getFreePort()
  const dir = await makeTempDir('recsvc-redis-')
  const logFile = path.join(dir, 'redis.log')
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--daemonize', 'no', '--protected-mode', 'no', '--logfile', '']
  const proc = new Supervised(`redis-server on port ${port}`, bin, args, dir, logFile, timeoutMs)
  const probe = (): Promise<boolean> => pingRedis(port)
  try {
    await proc.start(probe)
  } catch (err) {
    reservedPorts.delete(port)
    await removeTempDir(dir).catch(() => {})
    throw err
  }
  return withControls({ url: `redis://127.0.0.1:${port}`, port, own: true as const, logFile }, ownServerControls('redis', proc, probe, port, dir))
}

function externalRedis (url: string): RedisServer {
  const parsed = new URL(url)
  return {
    url,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    own: false,
    running: true,
    async kill () { throw needsOwn('Redis', 'kill()') },
    async start () { throw needsOwn('Redis', 'start()') },
    async stop () {}
  }
}

/* ----------------------------------------------------------------------------------------------- */
/* MySQL / MariaDB                                                                                  */

interface MysqlBinaries {
  server: string
  flavor: 'mariadb' | 'mysql'
  version: string
  installDb?: string
}

let binariesPromise: Promise<MysqlBinaries> | undefined

function mysqlBinaries (): Promise<MysqlBinaries> {
  binariesPromise ??= (async () => {
    const server = findBinary(['mariadbd', 'mysqld'])
    if (server === undefined) throw new Error('neither mariadbd nor mysqld found (apt-get install mariadb-server), or set MYSQL_URL')
    const { stdout } = await execFileP(server, ['--no-defaults', '--version'], { timeout: 10_000 })
    const version = stdout.trim()
    if (/mariadb/i.test(version)) {
      const installDb = findBinary(['mariadb-install-db', 'mysql_install_db'])
      if (installDb === undefined) throw new Error(`${server} is MariaDB but mariadb-install-db was not found`)
      return { server, flavor: 'mariadb' as const, version, installDb }
    }
    return { server, flavor: 'mysql' as const, version }
  })()
  return binariesPromise
}

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** Options used both to initialise the template and to run the server, so the files always match. */
function innodbArgs (flavor: MysqlBinaries['flavor']): string[] {
  const args = ['--innodb-buffer-pool-size=64M', '--innodb-flush-log-at-trx-commit=2']
  if (flavor === 'mariadb') args.push('--innodb-log-file-size=16M')
  return args
}

function serverArgs (b: MysqlBinaries, dir: string, datadir: string, port: number): string[] {
  const args = [
    '--no-defaults',
    `--datadir=${datadir}`,
    `--socket=${path.join(dir, 'mysqld.sock')}`,
    `--pid-file=${path.join(dir, 'mysqld.pid')}`,
    `--tmpdir=${path.join(dir, 'tmp')}`,
    `--port=${port}`,
    '--bind-address=127.0.0.1',
    '--skip-log-bin',
    '--performance-schema=OFF',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_unicode_ci',
    '--max-connections=300',
    ...innodbArgs(b.flavor)
  ]
  if (b.flavor === 'mariadb') args.push('--skip-name-resolve') // root@127.0.0.1 exists after install-db
  else args.push('--mysqlx=OFF') // else every server wants port 33060
  if (isRoot) args.push('--user=root')
  return args
}

const TEMPLATE_MARK = '.recsvc-template-ok'

/** An initialised datadir, built once per server version and options and cached under `cacheRoot`. */
async function mysqlTemplate (b: MysqlBinaries, cacheRoot: string, timeoutMs: number): Promise<string> {
  const initArgs = b.flavor === 'mariadb'
    ? ['--no-defaults', '--auth-root-authentication-method=normal', '--skip-test-db', ...innodbArgs(b.flavor), '--skip-log-bin']
    : ['--no-defaults', '--initialize-insecure', ...innodbArgs(b.flavor), '--skip-log-bin', '--mysqlx=OFF']
  if (isRoot) initArgs.push('--user=root')
  const key = crypto.createHash('sha256')
    .update([b.server, b.version, initArgs.join(' '), String(process.getuid?.() ?? '')].join('\n'))
    .digest('hex').slice(0, 16)
  const templateDir = path.join(cacheRoot, `recsvc-${b.flavor}-template-${key}`)
  if (fs.existsSync(path.join(templateDir, TEMPLATE_MARK))) return path.join(templateDir, 'data')
  // A dir without the mark cannot be a build in progress (builds are renamed into place complete).
  await fsp.rm(templateDir, { recursive: true, force: true })

  await fsp.mkdir(cacheRoot, { recursive: true })
  const build = await fsp.mkdtemp(path.join(cacheRoot, `recsvc-${b.flavor}-template-build-`))
  liveDirs.add(build)
  const datadir = path.join(build, 'data')
  const logFile = path.join(build, 'init.log')
  // Its own tmpdir: concurrent bootstraps sharing one (TMPDIR) trip over each other's temp tables.
  const args = [...initArgs, `--datadir=${datadir}`, `--tmpdir=${path.join(build, 'tmp')}`]
  const bin = b.flavor === 'mariadb' ? (b.installDb ?? 'mariadb-install-db') : b.server
  try {
    await fsp.mkdir(path.join(build, 'tmp'))
    const logFd = fs.openSync(logFile, 'a')
    try {
      await new Promise<void>((resolve, reject) => {
        const child = spawn(bin, args, { stdio: ['ignore', logFd, logFd], detached: false, cwd: build })
        liveChildren.add(child)
        const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${bin} did not finish within ${timeoutMs} ms`)) }, timeoutMs)
        child.once('error', (err) => { clearTimeout(timer); liveChildren.delete(child); reject(err) })
        child.once('exit', (code, signal) => {
          clearTimeout(timer)
          liveChildren.delete(child)
          if (code === 0) resolve()
          else reject(new Error(`${bin} failed (${signal ?? `exit code ${String(code)}`})`))
        })
      })
    } finally {
      fs.closeSync(logFd)
    }
    await fsp.writeFile(path.join(build, TEMPLATE_MARK), `${b.version}\n${bin} ${args.join(' ')}\n`)
  } catch (err) {
    const msg = `initialising a ${b.flavor} datadir failed: ${(err as Error).message}${tail(logFile)}`
    liveDirs.delete(build)
    await fsp.rm(build, { recursive: true, force: true }).catch(() => {})
    throw new Error(msg)
  }
  liveDirs.delete(build)
  try {
    await fsp.rename(build, templateDir)
  } catch {
    // Another process won the race; its template is as good as ours.
    await fsp.rm(build, { recursive: true, force: true }).catch(() => {})
    if (!fs.existsSync(path.join(templateDir, TEMPLATE_MARK))) throw new Error(`could not install template datadir at ${templateDir}`)
  }
  return path.join(templateDir, 'data')
}

function connectOptions (url: string, timeoutMs: number): mysql.ConnectionOptions {
  return { uri: url, connectTimeout: Math.min(timeoutMs, 10_000), multipleStatements: false }
}

async function mysqlAnswers (url: string): Promise<boolean> {
  let conn: mysql.Connection | undefined
  try {
    conn = await mysql.createConnection({ uri: url, connectTimeout: 2000 })
    await conn.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    if (conn !== undefined) conn.destroy()
  }
}

async function withServer<T> (serverUrl: string, timeoutMs: number, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection(connectOptions(serverUrl, timeoutMs))
  try {
    return await fn(conn)
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}

function assertDbName (name: string): void {
  if (!/^recsvc_test_[0-9a-z_]+$/.test(name)) throw new Error(`refusing to touch database ${name}`)
}

async function createDatabase (serverUrl: string, timeoutMs: number): Promise<string> {
  const name = uniqueDbName()
  assertDbName(name)
  await withServer(serverUrl, timeoutMs, (c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`))
  return name
}

function withDatabase (serverUrl: string, db: string): string {
  const u = new URL(serverUrl)
  u.pathname = `/${db}`
  return u.toString()
}

function withoutDatabase (url: string): string {
  const u = new URL(url)
  u.pathname = '/'
  return u.toString()
}

export async function startMysql (opts: MysqlOptions = {}): Promise<MysqlServer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (opts.externalUrl !== undefined && opts.externalUrl !== '') return externalMysql(opts.externalUrl, timeoutMs)

  const b = await mysqlBinaries()
  const template = await mysqlTemplate(b, opts.templateCacheDir ?? os.tmpdir(), Math.max(timeoutMs, 120_000))
  const port = await getFreePort()
  const dir = await makeTempDir(`recsvc-${b.flavor}-`)
  const datadir = path.join(dir, 'data')
  const logFile = path.join(dir, 'mysqld.log')
  const serverUrl = `mysql://root@127.0.0.1:${port}/`
  const proc = new Supervised(`${path.basename(b.server)} on port ${port}`, b.server, serverArgs(b, dir, datadir, port), dir, logFile, timeoutMs)
  const probe = (): Promise<boolean> => mysqlAnswers(serverUrl)
  let database: string
  try {
    await fsp.mkdir(path.join(dir, 'tmp'))
    await fsp.cp(template, datadir, { recursive: true, preserveTimestamps: true })
    await proc.start(probe)
    database = await createDatabase(serverUrl, timeoutMs)
  } catch (err) {
    await proc.terminate('SIGKILL').catch(() => {})
    reservedPorts.delete(port)
    await removeTempDir(dir).catch(() => {})
    throw err
  }
  return withControls({ url: withDatabase(serverUrl, database), serverUrl, database, port, own: true as const, logFile },
    ownServerControls('mysql', proc, probe, port, dir))
}

async function externalMysql (url: string, timeoutMs: number): Promise<MysqlServer> {
  const serverUrl = withoutDatabase(url)
  const parsed = new URL(serverUrl)
  let database: string
  try {
    database = await createDatabase(serverUrl, timeoutMs)
  } catch (err) {
    throw new Error(`cannot create a test database on MYSQL_URL server ${parsed.host}: ${(err as Error).message}`)
  }
  let stopped = false
  return {
    url: withDatabase(serverUrl, database),
    serverUrl,
    database,
    port: parsed.port === '' ? 3306 : Number(parsed.port),
    own: false,
    running: true,
    async kill () { throw needsOwn('MySQL', 'kill()') },
    async start () { throw needsOwn('MySQL', 'start()') },
    async stop () {
      if (stopped) return
      stopped = true
      assertDbName(database)
      await withServer(serverUrl, timeoutMs, (c) => c.query(`DROP DATABASE IF EXISTS \`${database}\``))
    }
  }
}

/* ----------------------------------------------------------------------------------------------- */

export interface Services {
  redis: RedisServer
  mysql: MysqlServer
  stop(): Promise<void>
}

export interface ServicesOptions {
  /** start an own redis-server even when REDIS_URL is set (needed for kill/start) */
  ownRedis?: boolean
  /** start an own mariadbd/mysqld even when MYSQL_URL is set (needed for kill/start) */
  ownMysql?: boolean
  timeoutMs?: number
}

export async function startServices (opts: ServicesOptions = {}): Promise<Services> {
  const envRedis = process.env.REDIS_URL
  const envMysql = process.env.MYSQL_URL
  const [redis, db] = await Promise.allSettled([
    startRedis({ externalUrl: opts.ownRedis === true ? undefined : envRedis, timeoutMs: opts.timeoutMs }),
    startMysql({ externalUrl: opts.ownMysql === true ? undefined : envMysql, timeoutMs: opts.timeoutMs })
  ])
  if (redis.status === 'rejected' || db.status === 'rejected') {
    if (redis.status === 'fulfilled') await redis.value.stop().catch(() => {})
    if (db.status === 'fulfilled') await db.value.stop().catch(() => {})
    const reasons = [redis, db].flatMap((r) => r.status === 'rejected' ? [r.reason as Error] : [])
    throw reasons.length === 1 ? reasons[0] : new AggregateError(reasons, reasons.map((e) => e.message).join('\n\n'))
  }
  let stopping: Promise<void> | undefined
  return {
    redis: redis.value,
    mysql: db.value,
    stop () {
      stopping ??= (async () => {
        const results = await Promise.allSettled([redis.value.stop(), db.value.stop()])
        const failed = results.flatMap((r) => r.status === 'rejected' ? [r.reason as Error] : [])
        if (failed.length > 0) throw new AggregateError(failed, failed.map((e) => e.message).join('\n'))
      })()
      return stopping
    }
  }
}
