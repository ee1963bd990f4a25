// mariadbd/mysqld as the tests and the stack run it: the datadir initialisation, the server's
// arguments (from one list, so an initialised datadir always matches the server that opens it),
// and the readiness probe.

import { createHash } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import type { MysqlBinaries } from './binaries.ts'

const isRoot = process.getuid?.() === 0

/** InnoDB settings that must be the same at initialisation and at every start.
 *  'test': a small throwaway server (64 MB pool, 16 MB redo log); 'demo': the stack's, sized for a
 *  seeded demo database (MariaDB's default 96 MB redo log would be most of its datadir). Both flush
 *  the log once a second: at most ~1 s of commits lost on a crash, much faster loading. */
export function innodbArgs (b: Pick<MysqlBinaries, 'flavor'>, profile: 'test' | 'demo'): string[] {
  const args = ['--innodb-flush-log-at-trx-commit=2']
  if (profile === 'test') args.push('--innodb-buffer-pool-size=64M')
  if (b.flavor === 'mariadb') args.push(`--innodb-log-file-size=${profile === 'test' ? '16M' : '32M'}`)
  return args
}

/** The command that initialises an empty datadir (root with no password, no test database). */
export function initCommand (b: MysqlBinaries, o: { datadir: string, tmpdir?: string, profile: 'test' | 'demo' }): { bin: string, args: string[] } {
  const common = [`--datadir=${o.datadir}`, ...(o.tmpdir !== undefined ? [`--tmpdir=${o.tmpdir}`] : []), ...innodbArgs(b, o.profile), '--skip-log-bin', ...(isRoot ? ['--user=root'] : [])]
  if (b.flavor === 'mariadb') {
    if (b.installDb === undefined) throw new Error(`${b.server} is MariaDB but mariadb-install-db was not found`)
    return { bin: b.installDb, args: ['--no-defaults', '--auth-root-authentication-method=normal', '--skip-test-db', ...common] }
  }
  return { bin: b.server, args: ['--no-defaults', '--initialize-insecure', ...common, '--mysqlx=OFF'] }
}

export interface ServerArgs {
  datadir: string
  /** scratch dir holding the socket and pid file */
  runDir: string
  port: number
  profile: 'test' | 'demo'
  maxConnections: number
  tmpdir?: string
  errorLog?: string
  pidFile?: string
}

export function serverArgs (b: MysqlBinaries, o: ServerArgs): string[] {
  return [
    '--no-defaults',
    `--datadir=${o.datadir}`,
    `--socket=${socketPath(join(o.runDir, 'mysqld.sock'))}`,
    `--pid-file=${o.pidFile ?? join(o.runDir, 'mysqld.pid')}`,
    ...(o.tmpdir !== undefined ? [`--tmpdir=${o.tmpdir}`] : []),
    ...(o.errorLog !== undefined ? [`--log-error=${o.errorLog}`] : []),
    `--port=${o.port}`,
    '--bind-address=127.0.0.1',
    '--skip-log-bin',
    '--performance-schema=OFF',
    '--character-set-server=utf8mb4',
    '--collation-server=utf8mb4_unicode_ci',
    `--max-connections=${o.maxConnections}`,
    ...innodbArgs(b, o.profile),
    // MariaDB: root@127.0.0.1 exists after install-db. MySQL: else every server wants port 33060.
    ...(b.flavor === 'mariadb' ? ['--skip-name-resolve'] : ['--mysqlx=OFF']),
    ...(isRoot ? ['--user=root'] : [])
  ]
}

/** Unix socket paths are limited to ~107 bytes; deep directories get one under /tmp. */
export function socketPath (wanted: string): string {
  if (Buffer.byteLength(wanted) < 100) return wanted
  return join(tmpdir(), `recsvc-mysqld-${createHash('sha1').update(wanted).digest('hex').slice(0, 12)}.sock`)
}

/** Whether the server at `url` accepts a connection and answers SELECT 1 (the database in the
 *  URL is ignored: it may not exist yet). */
export async function mysqlAnswers (url: string, timeoutMs = 2000): Promise<boolean> {
  const u = new URL(url)
  u.pathname = '/'
  let conn: mysql.Connection | undefined
  try {
    conn = await mysql.createConnection({ uri: u.toString(), connectTimeout: timeoutMs })
    await conn.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    conn?.destroy()
  }
}
