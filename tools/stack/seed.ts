// Demo data: `seed --if-empty` (scripts/seed/policy.ts decides; the stack only asks it first, so a
// restart over a seeded database does not pay for starting the seeder).

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { decideIfEmpty, occupancy } from '../../scripts/seed/policy.ts'
import { StackError } from './errors.ts'
import { secs } from './format.ts'
import type { Runner } from './processes.ts'

export async function seedIfEmpty (runner: Runner, log: (msg: string) => void, url: string, opts: { root: string, users: number }): Promise<void> {
  const db = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''))
  const conn = await mysql.createConnection({ uri: url, connectTimeout: 5000 })
  let decision: ReturnType<typeof decideIfEmpty>
  try {
    decision = decideIfEmpty(await occupancy(conn, db))
  } finally {
    await conn.end()
  }
  if (decision.action === 'skip') {
    log(`${decision.why}: not seeding (use --fresh to start over)`)
    return
  }
  if (opts.users <= 0) {
    log(`${decision.why}, and --users 0: not seeding`)
    return
  }
  const script = join(opts.root, 'scripts', 'seed.ts')
  if (!existsSync(script)) throw new StackError('scripts/seed.ts not found; cannot seed demo data (pass --users 0 to skip)')
  const ts = Date.now()
  log(`${decision.why}: seeding ${opts.users} demo users (seed --if-empty)`)
  // Its own process: its progress output is prefixed, and its memory is returned when it ends.
  await runner.run('seed', process.execPath, ['--import', 'tsx', script, '--if-empty', '--users', String(opts.users), '--mysql-url', url], { cwd: opts.root })
  log(`seeded ${opts.users} users in ${secs(Date.now() - ts)}`)
}
