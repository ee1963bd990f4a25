// MariaDB/MySQL: reuse a running one (MYSQL_URL, or the system's when no server is installed), or
// initialise a datadir under <state dir>/mysql once and start our own; then the database, the
// migrations and the demo data. Stopped with SIGTERM.

import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile, rename, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { migrate } from '../../src/lib/migrations.ts'
import type { MysqlBins } from './binaries.ts'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { redactUrl, rel, secs } from './format.ts'
import { DEFAULTS } from './options.ts'
import { pickPort } from './ports.ts'
import type { Proc, Runner } from './processes.ts'
import { seedIfEmpty } from './seed.ts'

/** The MySQL the stack started, once it has; read by stopMysql. */
export interface MysqlState { proc?: Proc }

export async function mysqlAnswers (url: string): Promise<boolean> {
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

async function startMysql (ctx: StackContext, state: MysqlState, bins: MysqlBins, mysqlPort: number | undefined): Promise<string> {
  const { runner, stateDir, pidFiles, log, checkAbort, waitFor } = ctx
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
    const port = await pickPort(attempt === 1 ? mysqlPort ?? DEFAULTS.mysqlPort : 0)
    checkAbort()
    const before = await fileSize(errorLog)
    const proc = state.proc = runner.spawn('mysql', 'mysql', bins.server, [
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
      await waitFor(`${bins.flavor} on port ${port}`, () => mysqlAnswers(url), 120_000, proc)
      log(`${bins.flavor} ready on 127.0.0.1:${port} in ${secs(Date.now() - tm)} (pid ${proc.pid}, log ${rel(errorLog)})`)
      return url
    } catch (err) {
      const newLog = await readFile(errorLog, 'utf8').then((s) => s.slice(before)).catch(() => '')
      if (attempt < 3 && proc.exited && /already in use|Can't start server: Bind/i.test(newLog)) {
        log(`port ${port} was taken meanwhile; retrying on another port`)
        continue
      }
      if (err instanceof StackError && newLog) err.message += `\n--- ${rel(errorLog)} (last lines) ---\n${newLog.trim().split('\n').slice(-15).join('\n')}`
      throw err
    }
  }
}

async function createDatabase (url: string, log: (msg: string) => void): Promise<void> {
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

/** The database at MYSQL_URL, the system's, or our own; created, migrated and seeded. */
export async function prepareMysql (ctx: StackContext, state: MysqlState, opts: { mysqlUrl?: string, reuseMysql?: string, mysqlBins?: MysqlBins, mysqlPort?: number, root: string, users: number }): Promise<string> {
  const { log, checkAbort } = ctx
  let url: string
  if (opts.mysqlUrl) {
    url = opts.mysqlUrl
    if (!await mysqlAnswers(url)) throw new StackError(`MYSQL_URL=${redactUrl(url)} does not answer`)
    log(`using MySQL at ${redactUrl(url)} (MYSQL_URL; not started by the stack)`)
  } else if (opts.reuseMysql) {
    url = opts.reuseMysql
  } else {
    url = await startMysql(ctx, state, opts.mysqlBins!, opts.mysqlPort)
  }
  checkAbort()
  await createDatabase(url, log)
  const tm = Date.now()
  const applied = await migrate(url, { log: (m) => log(`migrate: ${m}`) })
  log(applied.length ? `applied ${applied.length} migration(s) in ${secs(Date.now() - tm)}` : 'schema up to date')
  checkAbort()
  await seedIfEmpty(ctx.runner, log, url, { root: opts.root, users: opts.users, ownDatabase: !opts.mysqlUrl && !opts.reuseMysql })
  return url
}

export async function stopMysql (runner: Runner, state: MysqlState): Promise<void> {
  if (!state.proc || state.proc.exited) return
  await runner.terminate(state.proc, 'SIGTERM', 60_000) // mariadbd flushes InnoDB and exits
}
