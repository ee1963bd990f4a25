// Where the server binaries are: PATH first, then the sbin directories Debian, Homebrew and the
// MySQL tarball install into (root's PATH has them, a user's often does not).

import { execFileSync } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'

const EXTRA_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin', '/opt/homebrew/bin', '/opt/homebrew/sbin', '/usr/local/mysql/bin']

export function findBinary (...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS]
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name)
      try {
        if (!statSync(candidate).isFile()) continue
        accessSync(candidate, constants.X_OK)
        return candidate
      } catch {}
    }
  }
  return undefined
}

export interface MysqlBinaries {
  server: string
  flavor: 'mariadb' | 'mysql'
  /** what `--version` printed: part of the template datadir's cache key */
  version: string
  /** MariaDB initialises a datadir with this; MySQL with `mysqld --initialize-insecure` */
  installDb?: string
}

let cached: MysqlBinaries | null | undefined

/** mariadbd, or a mysqld that is MariaDB or MySQL; undefined when neither is installed.
 *  `fresh` looks again (after an install). */
export function findMysqlBinaries (opts: { fresh?: boolean } = {}): MysqlBinaries | undefined {
  if (cached !== undefined && opts.fresh !== true) return cached ?? undefined
  const server = findBinary('mariadbd', 'mysqld')
  if (server === undefined) {
    cached = null
    return undefined
  }
  const version = execFileSync(server, ['--no-defaults', '--version'], { encoding: 'utf8', timeout: 10_000 }).trim()
  cached = /mariadb/i.test(version)
    ? { server, flavor: 'mariadb', version, installDb: findBinary('mariadb-install-db', 'mysql_install_db') }
    : { server, flavor: 'mysql', version }
  return cached
}
