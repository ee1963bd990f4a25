// The store ceiling for bench/cold-start.ts: a bare Fastify route that, for GET /recommend/:id,
// runs the SQL of one cache miss (src/lib/user-store.ts, single-user query: the user, their newest
// searches and purchases within HISTORY_DAYS, one round trip, a prepared statement on a pooled
// mysql2 connection) and answers a small JSON. No Redis, no scoring, no caching, no per-request
// logging or metrics: what the database and Fastify alone allow for cold reads on this machine.
//
//   MYSQL_URL=mysql://root@127.0.0.1:3307/recsvc PORT=13090 node --import tsx bench/store-ceiling-server.ts
//
// MYSQL_POOL_SIZE, HISTORY_DAYS and HISTORY_MAX_EVENTS default to the service's defaults (20, 90, 500).
import Fastify from 'fastify'
import mysql, { type RowDataPacket } from 'mysql2/promise'
import { singleUserQuery } from '../src/lib/user-store.ts'

const int = (name: string, def: number) => {
  const v = Number(process.env[name] ?? def)
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer`)
  return v
}
const poolSize = int('MYSQL_POOL_SIZE', 20)
const historyDays = int('HISTORY_DAYS', 90)
const n = int('HISTORY_MAX_EVENTS', 500)
if (!process.env.MYSQL_URL) throw new Error('MYSQL_URL is required')

const sql = singleUserQuery(n)

const pool = mysql.createPool({ uri: process.env.MYSQL_URL, connectionLimit: poolSize, timezone: 'Z', supportBigNumbers: true })
const app = Fastify({ logger: false })
app.get<{ Params: { id: string } }>('/recommend/:id', async (req, reply) => {
  const id = Number(req.params.id)
  if (!Number.isSafeInteger(id) || id < 1) return reply.code(400).send({ error: 'bad id' })
  const since = new Date(Date.now() - historyDays * 86_400_000)
  const [rows] = await pool.execute<RowDataPacket[]>(sql, [id, id, since, id, since])
  let searches = 0
  let purchases = 0
  let found = false
  for (const r of rows) {
    if (r.kind === 0) found = true
    else if (r.kind === 1) searches++
    else purchases++
  }
  if (!found) return reply.code(404).send({ user_id: id, found })
  return { user_id: id, found, searches, purchases }
})
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
const stop = () => { app.close().then(() => pool.end()).finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
// Started by a benchmark with a pipe on stdin: exit when that process goes away, however it ends.
if (process.env.EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', stop)
  process.stdin.on('error', stop)
  process.stdin.resume()
}
