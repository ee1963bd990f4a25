// Demo data for an empty database, with scripts/seed.ts.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { StackError } from './errors.ts'
import { secs } from './format.ts'
import type { Runner } from './processes.ts'

/** Seeds `users` demo users when the users table is empty; starts a partial seed over (--reset)
 *  when `ownDatabase`. */
export async function seedIfEmpty (runner: Runner, log: (msg: string) => void, url: string, opts: { root: string, users: number, ownDatabase: boolean }): Promise<void> {
  const { root, users } = opts
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 5000 })
  let empty: boolean
  let partial: boolean
  try {
    const [rows] = await conn.query('SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM items) + (SELECT COUNT(*) FROM categories) AS other') as unknown as [Array<{ users: number, other: number }>]
    empty = Number(rows[0]?.users) === 0
    partial = empty && Number(rows[0]?.other) > 0
  } finally {
    await conn.end()
  }
  if (!empty) {
    log('database has users; not seeding (use --fresh to start over)')
    return
  }
  if (users <= 0) {
    log('database is empty and --users 0: not seeding')
    return
  }
  // Categories/items without users: a seed that was interrupted. Start it over, but only in a
  // database the stack owns; elsewhere seed.ts refuses and says why.
  const reset = partial && opts.ownDatabase
  const ts = Date.now()
  log(`database ${reset ? 'has a partial seed (no users)' : 'is empty'}: seeding ${users} demo users${reset ? ' with --reset' : ''} (scripts/seed.ts)`)
  await runSeed(runner, root, url, users, reset)
  log(`seeded ${users} users in ${secs(Date.now() - ts)}`)
}

/** Seeds demo data with scripts/seed.ts, run as its own process so its progress output is
 *  prefixed and its memory is returned when it ends. */
async function runSeed (runner: Runner, root: string, mysqlUrl: string, users: number, reset: boolean): Promise<void> {
  const script = join(root, 'scripts', 'seed.ts')
  if (!existsSync(script)) throw new StackError('scripts/seed.ts not found; cannot seed demo data (pass --users 0 to skip)')
  await runner.run('seed', process.execPath, ['--import', 'tsx', script, '--users', String(users), '--mysql-url', mysqlUrl, ...(reset ? ['--reset'] : [])], { cwd: root })
}
