// MariaDB/MySQL: reuse a running one (MYSQL_URL, or the system's when no server is installed), or
// initialise a datadir under <state dir>/mysql once and start our own; then the database, the
// migrations and the demo data. Stopped with SIGTERM.

import { existsSync, statSync } from 'node:fs'
import { mkdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { migrate } from '../../src/lib/migrations.ts'
import type { MysqlBinaries } from '../servers/binaries.ts'
import { initCommand, mysqlAnswers, serverArgs } from '../servers/mysql.ts'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { redactUrl, rel, secs } from './format.ts'
import { DEFAULTS } from './options.ts'
import { pickPort } from '../servers/ports.ts'
import type { Proc, Runner } from './processes.ts'
import { seedIfEmpty } from './seed.ts'

/** The MySQL the stack started, once it has; read by stopMysql. */
export interface MysqlState { proc?: Proc }

async function fileSize (file: string): Promise<number> {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

async function startMysql (ctx: StackContext, state: MysqlState, bins: MysqlBinaries, mysqlPort: number | undefined): Promise<string> {
  const { runner, stateDir, pidFiles, log, checkAbort, waitFor } = ctx
  const dir = join(stateDir, 'mysql')
  const dataDir = join(dir, 'data')
  await mkdir(dir, { recursive: true })
  if (!existsSync(join(dataDir, 'mysql'))) {
    // Initialise into a temporary directory and rename, so an interrupted init is not mistaken
    // for a datadir on the next run.
    const tmp = join(dir, 'data.init')
    await rm(tmp, { recursive: true, force: true })
    await rm(dataDir, { recursive: true, force: true })
    const ti = Date.now()
    log(`initialising ${bins.flavor} datadir ${rel(dataDir)} (once)`)
    if (bins.flavor === 'mysql') await mkdir(tmp)
    const init = initCommand(bins, { datadir: tmp, profile: 'demo' })
    await runner.run('mysql-init', init.bin, init.args, { quiet: true })
    await rename(tmp, dataDir)
    log(`datadir initialised in ${secs(Date.now() - ti)}`)
  }
  const pidFile = join(dir, 'mysqld.pid')
  const errorLog = join(dir, 'error.log')
  for (let attempt = 1; ; attempt++) {
    const tm = Date.now()
    const port = await pickPort(attempt === 1 ? mysqlPort ?? DEFAULTS.mysqlPort : 0)
    checkAbort()
    const before = await fileSize(errorLog)
    // N replicas x MYSQL_POOL_SIZE (20) connections plus seeding exceed the default 151.
    const args = serverArgs(bins, { datadir: dataDir, runDir: dir, pidFile, errorLog, port, profile: 'demo', maxConnections: 1000 })
    const proc = state.proc = runner.spawn('mysql', 'mysql', bins.server, args, { cwd: dataDir })
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
export async function prepareMysql (ctx: StackContext, state: MysqlState, opts: { mysqlUrl?: string, reuseMysql?: string, mysqlBins?: MysqlBinaries, mysqlPort?: number, root: string, users: number }): Promise<string> {
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
  await seedIfEmpty(ctx.runner, log, url, { root: opts.root, users: opts.users })
  return url
}

export async function stopMysql (runner: Runner, state: MysqlState): Promise<void> {
  if (!state.proc || state.proc.exited) return
  await runner.terminate(state.proc, 'SIGTERM', 60_000) // mariadbd flushes InnoDB and exits
}
