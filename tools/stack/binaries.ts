// The binaries the stack runs (redis-server, mariadbd/mysqld, nginx): found on PATH and in the usual
// sbin directories, a running system server reused where one is missing, the rest installed with
// apt-get when allowed and root, or a StackError saying how to install them.

import { spawnSync } from 'node:child_process'
import { findBinary, findMysqlBinaries, type MysqlBinaries } from '../servers/binaries.ts'
import { mysqlAnswers } from '../servers/mysql.ts'
import { redisAnswers } from '../servers/redis.ts'
import { StackError } from './errors.ts'
import type { Runner } from './processes.ts'

export interface Binaries {
  redisBin: string | undefined
  mysqlBins: MysqlBinaries | undefined
  nginxBin: string | undefined
  /** The system's Redis/MySQL, used when its server binary is missing. */
  reuseRedis: string | undefined
  reuseMysql: string | undefined
}

export async function findBinaries (runner: Runner, log: (msg: string) => void, opts: { redisUrl?: string, mysqlUrl?: string, withNginx: boolean, install?: boolean, baseEnv: NodeJS.ProcessEnv }): Promise<Binaries> {
  const { withNginx, baseEnv } = opts
  const wantRedis = !opts.redisUrl
  const wantMysql = !opts.mysqlUrl
  let redisBin = wantRedis ? findBinary('redis-server') : undefined
  let mysqlBins = wantMysql ? findMysqlBinaries() : undefined
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
  let nginxBin = withNginx ? findBinary('nginx') : undefined
  const missing: string[] = []
  if (wantRedis && !redisBin && !reuseRedis) missing.push('redis-server')
  if (wantMysql && !reuseMysql && (!mysqlBins || (mysqlBins.flavor === 'mariadb' && !mysqlBins.installDb))) missing.push('mariadb-server')
  if (withNginx && !nginxBin) missing.push('nginx-light')
  if (missing.length) {
    const isRoot = process.getuid?.() === 0
    if (opts.install && isRoot && findBinary('apt-get')) {
      // nginx-light (core modules only) where the distribution still has it, nginx elsewhere.
      const pkgs = missing.map((m) => m === 'nginx-light' && spawnSync('apt-cache', ['show', 'nginx-light'], { stdio: 'ignore' }).status !== 0 ? 'nginx' : m)
      const cmd = `apt-get update && apt-get install -y ${pkgs.join(' ')}`
      log(`missing ${missing.join(', ')}; installing: ${cmd}`)
      await runner.run('apt', 'sh', ['-c', cmd], { env: { ...baseEnv, DEBIAN_FRONTEND: 'noninteractive' } })
      redisBin = wantRedis && !reuseRedis ? findBinary('redis-server') : undefined
      mysqlBins = wantMysql && !reuseMysql ? findMysqlBinaries({ fresh: true }) : undefined
      nginxBin = withNginx ? findBinary('nginx') : undefined
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
  return { redisBin, mysqlBins, nginxBin, reuseRedis, reuseMysql }
}
