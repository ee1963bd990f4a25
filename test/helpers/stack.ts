import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStack, type Stack } from '../../tools/stack.ts'
import { uniquePrefix, type Services } from './services.ts'

/** `npm run stack`'s topology for an end-to-end test: N replicas (from src/ through tsx, so no
 *  build into dist/, which other test files may be running from) and the real nginx on random
 *  ports, on the test's own Redis and MySQL, seeded with `users`. Stopped and removed in teardown;
 *  `lines` holds the stack's output for a failing test to print. */
export async function startTestStack (services: Services, opts: { label: string, replicas: number, users: number, adminToken: string }): Promise<{ stack: Stack, lines: string[] }> {
  const stateDir = await mkdtemp(join(tmpdir(), `recsvc-${opts.label}-`))
  t.teardown(() => rm(stateDir, { recursive: true, force: true }))
  const lines: string[] = []
  // The children must not inherit the test runner's loader hooks (NODE_OPTIONS) or TAP variables.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) =>
    k !== 'NODE_OPTIONS' && !/^(TAP|_TAPJS)/.test(k) && !['REDIS_URL', 'MYSQL_URL', 'ADMIN_TOKEN', 'TRUST_PROXY', 'SHUTDOWN_DRAIN_DELAY_MS'].includes(k)))
  const stack = await startStack({
    stateDir,
    env: { ...env, REDIS_KEY_PREFIX: uniquePrefix(opts.label.slice(0, 3)), MYSQL_POOL_SIZE: '5' },
    replicas: opts.replicas,
    apiBasePort: 0,
    nginx: true,
    port: 0,
    rateLimit: false, // one client address sending a load: the per-IP limits are the benchmark switch
    redisUrl: services.redis.url,
    mysqlUrl: services.mysql.url,
    users: opts.users,
    adminToken: opts.adminToken,
    fromSource: true,
    logLevel: 'warn',
    log: (line) => { lines.push(line) },
    readyTimeoutMs: 45_000
  })
  t.teardown(() => stack.stop())
  return { stack, lines }
}
