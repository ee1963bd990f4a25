import { createHash } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import mysql from 'mysql2/promise'

// sql/ sits at the repository root; from src/lib (tsx) and dist/src/lib (compiled) alike we walk up
// until we find it, so the runner works from both layouts.
export async function findSqlDir (): Promise<string> {
  let dir = fileURLToPath(new URL('.', import.meta.url))
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'sql')
    try {
      const names = await readdir(candidate)
      if (names.some((n) => /^\d+_.*\.sql$/.test(n))) return candidate
    } catch {}
    dir = join(dir, '..')
  }
  throw new Error('sql/ directory with numbered migrations not found')
}

export interface Migration { version: number, name: string, sql: string, checksum: string }

export async function readMigrations (sqlDir?: string): Promise<Migration[]> {
  const dir = sqlDir ?? await findSqlDir()
  const names = (await readdir(dir)).filter((n) => /^\d+_.*\.sql$/.test(n)).sort()
  const out: Migration[] = []
  for (const name of names) {
    const sql = await readFile(join(dir, name), 'utf8')
    out.push({
      version: Number(name.split('_')[0]),
      name,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16)
    })
  }
  return out
}

/** Applies the numbered migrations not yet recorded in schema_migrations, in order.
 *  Applying twice is a no-op. A changed, already-applied file is an error rather than a silent skip.
 *  Concurrent runs on one database (a seeder, the stack, `npm run migrate`) take turns under a named
 *  lock: MySQL DDL commits implicitly, so without it two runs could both apply a file and one would
 *  then fail to record it. */
export async function migrate (mysqlUrl: string, opts: { sqlDir?: string, log?: (msg: string) => void, lockTimeoutS?: number } = {}): Promise<string[]> {
  const log = opts.log ?? (() => {})
  const conn = await mysql.createConnection({ uri: mysqlUrl, multipleStatements: true, connectTimeout: 10_000 })
  const lockName = `recsvc_migrate:${conn.config.database ?? ''}`
  try {
    const lockTimeoutS = opts.lockTimeoutS ?? 60
    const [[lock]] = await conn.query('SELECT GET_LOCK(?, ?) AS got', [lockName, lockTimeoutS]) as unknown as [[{ got: number | null }]]
    if (Number(lock?.got) !== 1) throw new Error(`another migration run holds the lock ${lockName}; waited ${lockTimeoutS} s`)
    await conn.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INT UNSIGNED NOT NULL PRIMARY KEY,
      name VARCHAR(255) NOT NULL,
      checksum CHAR(16) NOT NULL,
      applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`)
    const [rows] = await conn.query('SELECT version, name, checksum FROM schema_migrations') as unknown as [Array<{ version: number, name: string, checksum: string }>]
    const applied = new Map(rows.map((r) => [r.version, r]))
    const done: string[] = []
    for (const m of await readMigrations(opts.sqlDir)) {
      const prev = applied.get(m.version)
      if (prev) {
        if (prev.checksum !== m.checksum) throw new Error(`migration ${m.name} changed after it was applied (checksum ${prev.checksum} -> ${m.checksum})`)
        continue
      }
      log(`applying ${m.name}`)
      await conn.query(m.sql)
      await conn.execute('INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)', [m.version, m.name, m.checksum])
      done.push(m.name)
    }
    return done
  } finally {
    // Ending the session releases the lock too; the explicit release keeps the order obvious.
    await conn.query('SELECT RELEASE_LOCK(?)', [lockName]).catch(() => {})
    await conn.end()
  }
}

/** Tables this project owns, children first, so --reset can drop exactly these and nothing else. */
export const PROJECT_TABLES = [
  'purchases', 'searches', 'items', 'users', 'categories',
  'item_popularity', 'category_popularity', 'category_cooccurrence', 'stats_meta', 'api_keys', 'schema_migrations'
] as const
