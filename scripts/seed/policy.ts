// When the seeder may write, in one place: docker-compose's seed service and the local stack both
// run `seed --if-empty` rather than each deciding from its own row counts.
//
//   users present                      -> skip: someone's data (or a finished seed); never touch it
//   no users, other project rows       -> reset: a seed that was interrupted (categories and items
//                                         load first, users last), so its rows are ours to drop
//   nothing, or no tables yet          -> seed
//
// Without --if-empty the seeder refuses any non-empty database unless --reset: an explicit run
// should fail loudly rather than guess.

import mysql from 'mysql2/promise'
import { quoteId } from './load.ts'

/** The tables the seeder fills, in load order (also the order error messages list them in). */
export const DATA_TABLES = ['categories', 'items', 'users', 'searches', 'purchases'] as const
export type DataTable = typeof DATA_TABLES[number]

export interface Occupancy {
  /** rows in users (0 when the table does not exist) */
  users: number
  /** the data tables that have at least one row, in DATA_TABLES order */
  nonEmpty: DataTable[]
}

export type IfEmptyDecision =
  | { action: 'skip', why: string }
  | { action: 'reset', why: string }
  | { action: 'seed', why: string }

const ER_NO_SUCH_TABLE = 1146
const ER_BAD_DB_ERROR = 1049

/** What the data tables of `db` hold. A missing database or table counts as empty: a brand-new
 *  server, or one whose schema a previous run did not finish creating. */
export async function occupancy (conn: mysql.Connection, db: string): Promise<Occupancy> {
  const out: Occupancy = { users: 0, nonEmpty: [] }
  for (const table of DATA_TABLES) {
    try {
      // COUNT(*) only for users (the log reports it); elsewhere one row is enough to know
      const sql = table === 'users'
        ? `SELECT COUNT(*) AS n FROM ${quoteId(db)}.users`
        : `SELECT 1 AS n FROM ${quoteId(db)}.${table} LIMIT 1`
      const [rows] = await conn.query<mysql.RowDataPacket[]>(sql)
      const n = Number(rows[0]?.n ?? 0)
      if (table === 'users') out.users = n
      if (n > 0) out.nonEmpty.push(table)
    } catch (err) {
      const errno = (err as { errno?: number }).errno
      if (errno !== ER_NO_SUCH_TABLE && errno !== ER_BAD_DB_ERROR) throw err
    }
  }
  return out
}

export function decideIfEmpty (o: Occupancy): IfEmptyDecision {
  if (o.users > 0) return { action: 'skip', why: `database already has ${o.users} users; nothing to do` }
  if (o.nonEmpty.length > 0) {
    return { action: 'reset', why: `no users but rows in ${o.nonEmpty.join(', ')}: an interrupted seed; starting over as --reset does` }
  }
  return { action: 'seed', why: 'database is empty' }
}
