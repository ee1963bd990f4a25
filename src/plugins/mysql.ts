import fp from 'fastify-plugin'
import mysql, { type Pool } from 'mysql2/promise'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Config } from '../config.ts'
import { redactUrl } from '../lib/redact-url.ts'

declare module 'fastify' {
  interface FastifyInstance { mysql: Pool }
}

/** The pooled MySQL connection. Boot fails if the database cannot be reached; the pool is closed
 *  after the routes have stopped (onClose runs in reverse registration order). Its connections and
 *  waiting requests, and every statement's latency and failures, are measured here. */
export default fp(async function mysqlPlugin (app, opts: { config: Config }) {
  const c = opts.config
  const pool = mysql.createPool({
    uri: c.MYSQL_URL,
    connectionLimit: c.MYSQL_POOL_SIZE,
    queueLimit: c.MYSQL_QUEUE_LIMIT,
    connectTimeout: c.MYSQL_CONNECT_TIMEOUT_MS,
    waitForConnections: true,
    enableKeepAlive: true,
    maxIdle: Math.min(10, c.MYSQL_POOL_SIZE),
    idleTimeout: 60_000,
    // DATETIME columns hold UTC wall-clock time; every reader and writer uses the same zone.
    timezone: 'Z',
    supportBigNumbers: true
  })
  measurePool(pool, app.recMetrics.registry)
  try {
    const conn = await pool.getConnection()
    await conn.ping()
    conn.release()
  } catch (err) {
    await pool.end().catch(() => {})
    throw new Error(`MySQL at ${redactUrl(c.MYSQL_URL)} is not reachable: ${(err as Error).message}`, { cause: err })
  }
  app.decorate('mysql', pool)
  app.addHook('onClose', async () => { await pool.end() })
}, { name: 'mysql', dependencies: ['metrics'] })

/** mysql2's core pool: its queues are not public API, but have had these names through 3.x. */
interface CorePool {
  on (event: 'connection', fn: (conn: CoreConnection) => void): void
  _allConnections?: { length: number }
  _freeConnections?: { length: number }
  _connectionQueue?: { length: number }
}
interface CoreCommand { onResult?: (err: unknown, ...rest: unknown[]) => unknown }
interface CoreConnection {
  query: (...args: unknown[]) => CoreCommand
  execute: (...args: unknown[]) => CoreCommand
}

const OPS = new Set(['select', 'insert', 'update', 'delete', 'replace', 'start', 'commit', 'rollback', 'set', 'kill', 'create', 'drop', 'truncate', 'show', 'do'])

/** The statement's verb: a small, bounded label (never the SQL itself). */
function opOf (sqlOrOptions: unknown): string {
  const sql = typeof sqlOrOptions === 'string' ? sqlOrOptions : String((sqlOrOptions as { sql?: unknown } | null)?.sql ?? '')
  const verb = /^\s*\(?\s*([a-z]+)/i.exec(sql)?.[1]?.toLowerCase() ?? ''
  return OPS.has(verb) ? verb : 'other'
}

function measurePool (pool: Pool, registry: Registry): void {
  const core = (pool as unknown as { pool: CorePool }).pool
  const seconds = new Histogram({
    name: 'recsvc_mysql_query_duration_seconds',
    help: 'MySQL statement latency, from sending to the result, by statement verb',
    labelNames: ['op'],
    buckets: [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })
  const errors = new Counter({
    name: 'recsvc_mysql_errors_total',
    help: 'MySQL statements that failed or timed out, by statement verb',
    labelNames: ['op'],
    registers: [registry]
  })
  new Gauge({
    name: 'recsvc_mysql_pool_connections',
    help: 'connections of the MySQL pool: in use by a request, or idle in the pool',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      const all = core._allConnections?.length ?? 0
      const idle = core._freeConnections?.length ?? 0
      this.set({ state: 'in_use' }, Math.max(0, all - idle))
      this.set({ state: 'idle' }, idle)
    }
  })
  new Gauge({
    name: 'recsvc_mysql_pool_queue_requests',
    help: 'requests waiting for a MySQL pool connection',
    registers: [registry],
    collect () { this.set(core._connectionQueue?.length ?? 0) }
  })
  const timed = (conn: CoreConnection, method: 'query' | 'execute') => {
    const original = conn[method]
    conn[method] = function (this: unknown, ...args: unknown[]) {
      const start = performance.now()
      const cmd = original.apply(this, args)
      const onResult = cmd.onResult
      if (typeof onResult === 'function') {
        let seen = false
        cmd.onResult = (err: unknown, ...rest: unknown[]) => {
          if (!seen) {
            seen = true
            const op = opOf(args[0])
            if (err) errors.inc({ op })
            else seconds.observe({ op }, (performance.now() - start) / 1000)
          }
          return onResult(err, ...rest)
        }
      }
      return cmd
    }
  }
  core.on('connection', (conn) => {
    timed(conn, 'query')
    timed(conn, 'execute')
  })
}
