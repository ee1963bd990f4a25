// Getting batches into MySQL, and the database-level steps around it (create, reset). Kept apart
// from generation so a load method can change without touching what is loaded.

import { Readable } from 'node:stream'
import mysql from 'mysql2/promise'
import { PROJECT_TABLES } from '../../src/lib/migrations.ts'
import type { Batch, Method } from './sink.ts'

/** Loads one batch on `conn`; the caller owns the connection (one batch per connection at a time). */
export async function load (conn: mysql.Connection, b: Batch, method: Method): Promise<void> {
  for (const part of b.parts) {
    if (method === 'insert') {
      await conn.query(part)
    } else {
      // streamed from memory: no temporary file, so it works from a read-only container too
      await conn.query({
        sql: `LOAD DATA LOCAL INFILE 'recsvc-seed-${b.table}' INTO TABLE ${b.table} CHARACTER SET utf8mb4
              FIELDS TERMINATED BY '\\t' ESCAPED BY '' LINES TERMINATED BY '\\n' (${b.columns.join(', ')})`,
        infileStreamFactory: () => Readable.from([Buffer.from(part, 'utf8')])
      })
    }
  }
}

/** The database a URL names and the URL of its server: the database may not exist yet, so the
 *  first connection must not name it. */
export function dbName (url: string): { db: string, serverUrl: string } {
  const u = new URL(url)
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''))
  // the password never reaches the message (it may end up in CI logs)
  if (!db) throw new Error(`the MySQL URL names no database: ${url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')}`)
  u.pathname = '/'
  return { db, serverUrl: u.toString() }
}

export const quoteId = (name: string): string => `\`${name.replace(/`/g, '``')}\``

export async function createDatabase (conn: mysql.Connection, db: string): Promise<void> {
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteId(db)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
}

/** Drops this project's tables and nothing else: the database may be shared with other data. */
export async function dropProjectTables (conn: mysql.Connection, db: string): Promise<void> {
  await conn.query(`USE ${quoteId(db)}`)
  // the list is children first, but a partial schema may hold FKs in any state
  await conn.query('SET SESSION foreign_key_checks = 0')
  await conn.query(`DROP TABLE IF EXISTS ${PROJECT_TABLES.map((t) => `\`${t}\``).join(', ')}`)
}
