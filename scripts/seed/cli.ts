// The command line of the seeder: flags to SeedOptions, a one-line summary on stdout. Run through
// scripts/seed.ts (tsx) or dist/scripts/seed.js (the image); see the top of scripts/seed.ts.

import { parseArgs } from 'node:util'
import { fmt } from './progress.ts'
import { seed, SEED_DEFAULTS } from './seed.ts'

export const USAGE = `usage: npm run seed -- [options]
  --users N               users (default ${SEED_DEFAULTS.users})
  --items M               items (default ${SEED_DEFAULTS.items})
  --categories C          categories (default ${SEED_DEFAULTS.categories})
  --searches-per-user S   mean searches per user (default ${SEED_DEFAULTS.searchesPerUser})
  --purchases-per-user P  mean purchases per user (default ${SEED_DEFAULTS.purchasesPerUser})
  --seed X                PRNG seed (default ${SEED_DEFAULTS.seed})
  --now ISO               timestamps end here (default: now); same --seed and --now = same data
  --reset                 drop this project's tables first (nothing else), then migrate
  --if-empty              for automated runs (docker-compose, the local stack): exit 0 doing nothing
                          when the users table has rows; start over as --reset when only
                          categories/items/searches/purchases have rows (an interrupted seed);
                          else seed. Without it, a non-empty database is refused unless --reset
  --mysql-url URL         default $MYSQL_URL or mysql://root@127.0.0.1:3306/recsvc
  --method M              auto (default) | infile | insert
  --concurrency K         loading connections (default ${SEED_DEFAULTS.concurrency})
  --batch-users N         users per batch (default ${SEED_DEFAULTS.batchUsers})
  --no-stats              skip refreshGlobalStats at the end`

export async function main (argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      users: { type: 'string' },
      items: { type: 'string' },
      categories: { type: 'string' },
      'searches-per-user': { type: 'string' },
      'purchases-per-user': { type: 'string' },
      seed: { type: 'string' },
      now: { type: 'string' },
      reset: { type: 'boolean' },
      'if-empty': { type: 'boolean' },
      'mysql-url': { type: 'string' },
      method: { type: 'string' },
      concurrency: { type: 'string' },
      'batch-users': { type: 'string' },
      'no-stats': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) {
    console.log(USAGE)
    return
  }
  const n = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    const x = Number(v.replace(/_/g, ''))
    if (v.trim() === '' || !Number.isFinite(x)) throw new RangeError(`--${name} must be a number (got ${v})`)
    return x
  }
  const method = values.method
  if (method !== undefined && method !== 'auto' && method !== 'infile' && method !== 'insert') throw new RangeError(`--method must be auto, infile or insert (got ${method})`)
  let now: Date | undefined
  if (values.now !== undefined) {
    now = new Date(values.now)
    if (Number.isNaN(now.getTime())) throw new RangeError(`--now must be an ISO date (got ${values.now})`)
  }
  const r = await seed({
    mysqlUrl: values['mysql-url'],
    users: n('users', values.users),
    items: n('items', values.items),
    categories: n('categories', values.categories),
    searchesPerUser: n('searches-per-user', values['searches-per-user']),
    purchasesPerUser: n('purchases-per-user', values['purchases-per-user']),
    seed: n('seed', values.seed),
    now,
    reset: values.reset === true,
    ifEmpty: values['if-empty'] === true,
    method,
    concurrency: n('concurrency', values.concurrency),
    batchUsers: n('batch-users', values['batch-users']),
    stats: values['no-stats'] !== true
  })
  if (r.skipped) return // seed() has said why
  const total = r.loadMs + r.statsMs
  console.log(`seeded ${fmt(r.rows)} rows in ${(r.loadMs / 1000).toFixed(1)} s (${fmt(r.rowsPerSec)} rows/s, ${r.method})` +
    (r.statsMs ? `, global stats ${(r.statsMs / 1000).toFixed(1)} s, total ${(total / 1000).toFixed(1)} s` : ''))
}
