import fp from 'fastify-plugin'
import mysql, { type Pool } from 'mysql2/promise'
import type { Config } from '../config.ts'
import { redactUrl } from '../lib/redact-url.ts'

declare module 'fastify' {
  interface FastifyInstance { mysql: Pool }
}

/** The pooled MySQL connection. Boot fails if the database cannot be reached; the pool is closed
 *  after the routes have stopped (onClose runs in reverse registration order). */
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
}, { name: 'mysql' })
