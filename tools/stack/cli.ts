// `npm run stack`: argument parsing, the banner, and signals (Ctrl-C stops what the stack started).

import { parseArgs } from 'node:util'
import { balanceFromEnv, parseBalance, rateLimitFromEnv, type Balance } from '../nginx-config.ts'
import { StackError } from './errors.ts'
import { redactUrl } from './format.ts'
import { describeBalance } from './nginx.ts'
import { DEFAULTS } from './options.ts'
import { startStack, type Stack } from './start.ts'

function banner (s: Stack, opts: { redisStarted: boolean, mysqlStarted: boolean, rateLimit: boolean, balance: Balance }): string {
  const first = (s.frontUrl ?? s.apiUrls[0]!).replace('http://127.0.0.1', 'localhost')
  return [
    '',
    'recsvc stack is up',
    ...(s.frontUrl
      ? [
          `  nginx:       ${s.frontUrl}   <- use this one (${describeBalance(opts.balance)} over ${s.apiUrls.length} replica(s), per-IP limits ${opts.rateLimit ? 'on' : 'OFF'})`,
          `  stub_status: ${s.nginxStatusUrl} (127.0.0.1 only)`,
          `  access log:  ${s.nginxAccessLog} (JSON)`
        ]
      : []),
    ...s.apiUrls.map((u, i) => `  api-${i + 1}:       ${u}`),
    `  Redis:       ${redactUrl(s.redisUrl)}${opts.redisStarted ? '' : ' (not started by the stack)'}`,
    `  MySQL:       ${redactUrl(s.mysqlUrl)}${opts.mysqlStarted ? '' : ' (not started by the stack)'}`,
    `  ADMIN_TOKEN: ${s.adminToken}`,
    '',
    'Try:',
    `  curl -i ${first}/recommend/123`,
    `  curl -s '${first}/batch-recommend?user_ids=1,2,3&limit=5'`,
    `  curl -s -X POST ${first}/batch-recommend -H 'content-type: application/json' -d '{"user_ids":[1,2,3]}'`,
    `  curl -i -X POST ${first}/invalidate-cache/123 -H 'authorization: Bearer ${s.adminToken}'`,
    `  curl -s ${first}/health/ready`,
    ...(s.nginxStatusUrl ? [`  curl -s ${s.nginxStatusUrl}`] : []),
    '',
    'Ctrl-C stops everything the stack started.',
    ''
  ].join('\n')
}

const USAGE = `usage: npm run stack -- [options]

  --replicas N         API processes (default 1)
  --api-base-port P    first API port; replicas listen on P..P+N-1 (default 3001)
  --port P             nginx's port, the one clients use (default 8080)
  --status-port P      nginx's stub_status port on 127.0.0.1 (default: --port + 1 when free)
  --no-rate-limit      nginx without its per-IP limits, and the app's per-client limits off (for benchmarks; or NGINX_RATE_LIMIT=off)
  --balance B          how nginx picks a replica: least_conn (default; the one with the fewest
                       requests in flight) or hash (consistent hash of the user id of /recommend/:id,
                       so each replica's L1 holds its own share of the users); or NGINX_BALANCE=hash
  --no-nginx           only the replicas, no nginx in front
  --users N            demo users to seed when the database is empty (default 10000)
  --fresh              wipe the state directory (.stack/, databases included) first
  --state-dir DIR      state directory (default .stack)
  --no-build           do not run npm run build first
  --raw-logs           print the replicas' JSON logs unchanged
  -h, --help

Environment: REDIS_URL / MYSQL_URL reuse running servers instead of starting them;
ADMIN_TOKEN (>= 16 chars) is used instead of a generated one; LOG_LEVEL, SCORER_THREADS and the
other service variables are passed to the replicas (behind nginx, TRUST_PROXY defaults to 127.0.0.1
and SHUTDOWN_DRAIN_DELAY_MS to 500).`

export async function main (): Promise<void> {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        replicas: { type: 'string' },
        'api-base-port': { type: 'string' },
        port: { type: 'string' },
        'status-port': { type: 'string' },
        'no-rate-limit': { type: 'boolean' },
        balance: { type: 'string' },
        'no-nginx': { type: 'boolean' },
        users: { type: 'string' },
        fresh: { type: 'boolean' },
        'state-dir': { type: 'string' },
        'no-build': { type: 'boolean' },
        'raw-logs': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(USAGE)
    return
  }
  const int = (name: string, v: string | undefined, def: number, min: number, max: number): number => {
    if (v === undefined) return def
    const n = Number(v)
    if (!Number.isInteger(n) || n < min || n > max) {
      console.error(`--${name} must be an integer ${min}..${max}, got ${JSON.stringify(v)}`)
      process.exit(2)
    }
    return n
  }
  const replicas = int('replicas', values.replicas, DEFAULTS.replicas, 1, 64)
  const port = int('port', values.port, DEFAULTS.port, 1, 65535)
  const statusPort = values['status-port'] === undefined ? undefined : int('status-port', values['status-port'], 0, 1, 65535)
  const rateLimit = values['no-rate-limit'] ? false : rateLimitFromEnv(process.env)
  let balance: Balance
  try {
    balance = values.balance === undefined ? balanceFromEnv(process.env) : parseBalance(values.balance)
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  const apiBasePort = int('api-base-port', values['api-base-port'], DEFAULTS.apiBasePort, 0, 65535 - replicas)
  const users = int('users', values.users, DEFAULTS.users, 0, 100_000_000)
  const env = process.env
  if (env.ADMIN_TOKEN !== undefined && env.ADMIN_TOKEN !== '' && env.ADMIN_TOKEN.length < 16) {
    console.error('ADMIN_TOKEN must be at least 16 characters')
    process.exit(2)
  }

  const controller = new AbortController()
  let stack: Stack | undefined
  let signals = 0
  const onSignal = (sig: NodeJS.Signals) => {
    signals++
    // npm and tsx forward the terminal's signal too, so one Ctrl-C can arrive more than once.
    if (signals === 1) console.log(`\n[stack] ${sig}: stopping everything the stack started…`)
    if (stack) void stack.stop().then(() => process.exit(0))
    else controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)

  try {
    stack = await startStack({
      replicas,
      apiBasePort,
      nginx: !values['no-nginx'],
      port,
      nginxStatusPort: statusPort,
      rateLimit,
      balance,
      users,
      fresh: values.fresh ?? false,
      stateDir: values['state-dir'],
      redisUrl: env.REDIS_URL || undefined,
      mysqlUrl: env.MYSQL_URL || undefined,
      adminToken: env.ADMIN_TOKEN || undefined,
      build: !values['no-build'],
      rawLogs: values['raw-logs'] ?? false,
      install: true,
      signal: controller.signal
    })
  } catch (err) {
    if (controller.signal.aborted) process.exit(130)
    console.error(`[stack] ${err instanceof StackError ? err.message : (err as Error).stack ?? String(err)}`)
    process.exit(1)
  }
  console.log(banner(stack, { redisStarted: !env.REDIS_URL && stack.processes().some((p) => p.name === 'redis'), mysqlStarted: !env.MYSQL_URL && stack.processes().some((p) => p.name === 'mysql'), rateLimit, balance }))
  if (signals > 0) await stack.stop().then(() => process.exit(0))
}

