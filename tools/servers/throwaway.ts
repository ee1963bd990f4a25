/**
 * Throwaway Redis and MySQL/MariaDB servers, for tests, benchmarks and smoke checks.
 *
 * - `REDIS_URL` / `MYSQL_URL` given (as `externalUrl`): those servers are used. On an external
 *   MySQL server a uniquely named database is created and `stop()` drops only that one.
 *   `kill()` / `start()` throw there: outage tests need a server of their own.
 * - Otherwise a `redis-server` / `mariadbd` (or `mysqld`) is started on a free port in a temp dir,
 *   and stopped (and the dir removed) on `stop()`; see supervisor.ts for why none outlives its parent.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import mysql from 'mysql2/promise'
import { findBinary, findMysqlBinaries, type MysqlBinaries } from './binaries.ts'
import { initCommand, mysqlAnswers, serverArgs } from './mysql.ts'
import { freePort, releasePort } from './ports.ts'
import { pingRedis, redisArgs } from './redis.ts'
import { ReadyError, runToCompletion, supervise, tailOf, waitReady, type Supervised } from './supervisor.ts'

export const DEFAULT_TIMEOUT_MS = 30_000

export interface ManagedServer {
  url: string
  port: number
  /** true when this module started the server itself (kill/start work) */
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
  /** the fresh database created for this caller; `url` points at it */
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

/** Temp dirs of servers being set up: removed by an exit hook if the process dies half-way. */
const pendingDirs = new Set<string>()
process.on('exit', () => {
  for (const dir of pendingDirs) try { fs.rmSync(dir, { recursive: true, force: true }) } catch {}
})

async function makeTempDir (prefix: string): Promise<string> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix))
  pendingDirs.add(dir)
  return dir
}

async function removeDir (dir: string): Promise<void> {
  pendingDirs.delete(dir)
  await fsp.rm(dir, { recursive: true, force: true, maxRetries: 3 })
}

function needsOwn (kind: 'Redis' | 'MySQL', what: string): Error {
  const env = kind === 'Redis' ? 'REDIS_URL' : 'MYSQL_URL'
  const flag = kind === 'Redis' ? 'ownRedis' : 'ownMysql'
  return new Error(`${what} needs own server: this ${kind} is external (${env}); use startServices({ ${flag}: true })`)
}

/** One server process that can be killed and started again on the same port and directory. */
class Restartable {
  private proc: Supervised | undefined

  constructor (
    readonly name: string,
    private readonly bin: string,
    private readonly args: string[],
    readonly dir: string,
    readonly logFile: string,
    private readonly probe: () => Promise<boolean>,
    private readonly timeoutMs: number
  ) {}

  get running (): boolean { return this.proc !== undefined && !this.proc.exited }
  get pid (): number | undefined { return this.running ? this.proc?.pid : undefined }

  async start (): Promise<void> {
    if (this.running) return
    // The watchdog kills at once and removes the dir: nothing in a throwaway server is worth a flush.
    const proc = this.proc = supervise(this.bin, this.args, { cwd: this.dir, output: { file: this.logFile }, orphanSignal: 'SIGKILL', graceMs: 5000, scratchDir: this.dir, holdsParent: false })
    try {
      await waitReady(this.name, this.probe, {
        timeoutMs: this.timeoutMs,
        intervalMs: 50,
        proc,
        describeExit: (e) => `${this.name} ${e.signal !== null ? `was killed by ${e.signal}` : `exited with code ${String(e.code)}`} before it was ready${tailOf(this.logFile)}`
      })
    } catch (err) {
      await proc.terminate('SIGKILL', 5000).catch(() => {})
      if (err instanceof ReadyError && err.reason === 'timeout') throw new Error(`${this.name} was not ready within ${this.timeoutMs} ms${tailOf(this.logFile)}`)
      throw err
    }
  }

  async terminate (signal: NodeJS.Signals): Promise<void> {
    const proc = this.proc
    if (proc === undefined || proc.exited) return
    await proc.terminate(signal, this.timeoutMs)
    if (!proc.exited) throw new Error(`${this.name} (pid ${proc.pid}) did not exit after SIGKILL`)
  }
}

/** kill/start/stop and live running/pid for a server started here. */
function controls (server: Restartable, port: number) {
  let stopped = false
  return {
    get running () { return server.running },
    get pid () { return server.pid },
    async kill (o: { signal?: NodeJS.Signals } = {}) {
      if (stopped) throw new Error(`${server.name} already stopped`)
      await server.terminate(o.signal ?? 'SIGKILL')
    },
    async start () {
      if (stopped) throw new Error(`${server.name} already stopped`)
      await server.start()
    },
    async stop () {
      if (stopped) return
      stopped = true
      await server.terminate('SIGTERM')
      releasePort(port)
      await removeDir(server.dir)
    }
  }
}

/** Merges keeping the getters live (a spread would copy their values once). */
function withControls<A extends object, B extends object> (a: A, b: B): A & B {
  return Object.defineProperties(a, Object.getOwnPropertyDescriptors(b)) as A & B
}

/* ----------------------------------------------------------------------------------------------- */
/* Redis                                                                                            */

export async function startRedis (opts: ServerOptions = {}): Promise<RedisServer> {
  if (opts.externalUrl !== undefined && opts.externalUrl !== '') return externalRedis(opts.externalUrl)
  const bin = findBinary('redis-server')
  if (bin === undefined) throw new Error('redis-server not found on PATH (apt-get install redis-server), or set REDIS_URL')
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const port = await freePort()
  const dir = await makeTempDir('recsvc-redis-')
  const logFile = path.join(dir, 'redis.log')
  const server = new Restartable(`redis-server on port ${port}`, bin, redisArgs({ port, dir }), dir, logFile, () => pingRedis(port), timeoutMs)
  try {
    await server.start()
  } catch (err) {
    releasePort(port)
    await removeDir(dir).catch(() => {})
    throw err
  }
  return withControls({ url: `redis://127.0.0.1:${port}`, port, own: true as const, logFile }, controls(server, port))
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

const TEMPLATE_MARK = '.recsvc-template-ok'

/** An initialised datadir, built once per server version and options and cached under `cacheRoot`:
 *  copying it is ~10x faster than initialising. */
async function mysqlTemplate (b: MysqlBinaries, cacheRoot: string, timeoutMs: number): Promise<string> {
  const probeCmd = initCommand(b, { datadir: '', profile: 'test' })
  const key = crypto.createHash('sha256')
    .update([b.server, b.version, probeCmd.bin, probeCmd.args.join(' '), String(process.getuid?.() ?? '')].join('\n'))
    .digest('hex').slice(0, 16)
  const templateDir = path.join(cacheRoot, `recsvc-${b.flavor}-template-${key}`)
  if (fs.existsSync(path.join(templateDir, TEMPLATE_MARK))) return path.join(templateDir, 'data')
  // A dir without the mark cannot be a build in progress (builds are renamed into place complete).
  await fsp.rm(templateDir, { recursive: true, force: true })

  await fsp.mkdir(cacheRoot, { recursive: true })
  const build = await fsp.mkdtemp(path.join(cacheRoot, `recsvc-${b.flavor}-template-build-`))
  pendingDirs.add(build)
  const logFile = path.join(build, 'init.log')
  // Its own tmpdir: concurrent bootstraps sharing one (TMPDIR) trip over each other's temp tables.
  const cmd = initCommand(b, { datadir: path.join(build, 'data'), tmpdir: path.join(build, 'tmp'), profile: 'test' })
  try {
    await fsp.mkdir(path.join(build, 'tmp'))
    await runToCompletion(cmd.bin, cmd.args, { cwd: build, output: { file: logFile }, timeoutMs })
    await fsp.writeFile(path.join(build, TEMPLATE_MARK), `${b.version}\n${cmd.bin} ${cmd.args.join(' ')}\n`)
  } catch (err) {
    const msg = `initialising a ${b.flavor} datadir failed: ${(err as Error).message}${tailOf(logFile)}`
    await removeDir(build).catch(() => {})
    throw new Error(msg)
  }
  pendingDirs.delete(build)
  try {
    await fsp.rename(build, templateDir)
  } catch {
    // Another process won the race; its template is as good as ours.
    await fsp.rm(build, { recursive: true, force: true }).catch(() => {})
    if (!fs.existsSync(path.join(templateDir, TEMPLATE_MARK))) throw new Error(`could not install template datadir at ${templateDir}`)
  }
  return path.join(templateDir, 'data')
}

async function withServer<T> (serverUrl: string, timeoutMs: number, fn: (c: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({ uri: serverUrl, connectTimeout: Math.min(timeoutMs, 10_000), multipleStatements: false })
  try {
    return await fn(conn)
  } finally {
    await conn.end().catch(() => conn.destroy())
  }
}

// Only databases named like this are ever dropped: never one this module did not create.
function assertDbName (name: string): void {
  if (!/^recsvc_test_[0-9a-z_]+$/.test(name)) throw new Error(`refusing to touch database ${name}`)
}

async function createDatabase (serverUrl: string, timeoutMs: number): Promise<string> {
  const name = `recsvc_test_${process.pid}_${crypto.randomBytes(4).toString('hex')}`
  assertDbName(name)
  await withServer(serverUrl, timeoutMs, (c) => c.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`))
  return name
}

function withDatabase (serverUrl: string, db: string): string {
  const u = new URL(serverUrl)
  u.pathname = `/${db}`
  return u.toString()
}

export async function startMysql (opts: MysqlOptions = {}): Promise<MysqlServer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (opts.externalUrl !== undefined && opts.externalUrl !== '') return externalMysql(opts.externalUrl, timeoutMs)

  const b = findMysqlBinaries()
  if (b === undefined) throw new Error('neither mariadbd nor mysqld found (apt-get install mariadb-server), or set MYSQL_URL')
  const template = await mysqlTemplate(b, opts.templateCacheDir ?? os.tmpdir(), Math.max(timeoutMs, 120_000))
  const port = await freePort()
  const dir = await makeTempDir(`recsvc-${b.flavor}-`)
  const datadir = path.join(dir, 'data')
  const logFile = path.join(dir, 'mysqld.log')
  const serverUrl = `mysql://root@127.0.0.1:${port}/`
  const args = serverArgs(b, { datadir, runDir: dir, tmpdir: path.join(dir, 'tmp'), port, profile: 'test', maxConnections: 300 })
  const server = new Restartable(`${path.basename(b.server)} on port ${port}`, b.server, args, dir, logFile, () => mysqlAnswers(serverUrl), timeoutMs)
  let database: string
  try {
    await fsp.mkdir(path.join(dir, 'tmp'))
    await fsp.cp(template, datadir, { recursive: true, preserveTimestamps: true })
    await server.start()
    database = await createDatabase(serverUrl, timeoutMs)
  } catch (err) {
    await server.terminate('SIGKILL').catch(() => {})
    releasePort(port)
    await removeDir(dir).catch(() => {})
    throw err
  }
  return withControls({ url: withDatabase(serverUrl, database), serverUrl, database, port, own: true as const, logFile }, controls(server, port))
}

async function externalMysql (url: string, timeoutMs: number): Promise<MysqlServer> {
  const u = new URL(url)
  u.pathname = '/'
  const serverUrl = u.toString()
  let database: string
  try {
    database = await createDatabase(serverUrl, timeoutMs)
  } catch (err) {
    throw new Error(`cannot create a test database on MYSQL_URL server ${u.host}: ${(err as Error).message}`)
  }
  let stopped = false
  return {
    url: withDatabase(serverUrl, database),
    serverUrl,
    database,
    port: u.port === '' ? 3306 : Number(u.port),
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

/** Redis and MySQL side by side: REDIS_URL / MYSQL_URL when set (unless forced own), else own ones. */
export async function startServices (opts: ServicesOptions = {}): Promise<Services> {
  const [redis, db] = await Promise.allSettled([
    startRedis({ externalUrl: opts.ownRedis === true ? undefined : process.env.REDIS_URL, timeoutMs: opts.timeoutMs }),
    startMysql({ externalUrl: opts.ownMysql === true ? undefined : process.env.MYSQL_URL, timeoutMs: opts.timeoutMs })
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
