/**
 * Real Redis and MySQL/MariaDB servers for integration tests: the project's one toolkit for local
 * servers (tools/servers/), plus what only tests need. REDIS_URL / MYSQL_URL are used when set;
 * otherwise each test gets its own servers on free ports, gone when stopped or when the test dies.
 */
import crypto from 'node:crypto'

export { DEFAULT_TIMEOUT_MS, startMysql, startRedis, startServices } from '../../tools/servers/throwaway.ts'
export type { ManagedServer, MysqlOptions, MysqlServer, RedisServer, ServerOptions, Services, ServicesOptions } from '../../tools/servers/throwaway.ts'
export { freePort as getFreePort } from '../../tools/servers/ports.ts'
export { pingRedis } from '../../tools/servers/redis.ts'

let prefixCounter = 0
/** A Redis key prefix no other test (in this or another process) uses, e.g. `t4242_1_9f3a2c:`. */
export function uniquePrefix (label = 't'): string {
  return `${label}${process.pid}_${++prefixCounter}_${crypto.randomBytes(3).toString('hex')}:`
}
