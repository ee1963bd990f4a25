import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStack, type Stack } from '../../tools/stack.ts'
import { startServices, uniquePrefix, type Services, type ServicesOptions } from './services.ts'

/** `npm run stack`'s topology for an end-to-end test: N replicas (from src/ through tsx, so no
 *  build into dist/, which other test files may be running from) and the real nginx on random
 *  ports, on Redis and MySQL started for it (`services` says which must be its own), seeded with
 *  `users`. Everything is stopped and removed in teardown; a failing subtest prints the stack's
 *  last output lines (`lines` holds all of them). */
export async function startTestStack (opts: { label: string, replicas: number, users: number, adminToken: string, services?: ServicesOptions }): Promise<{ stack: Stack, services: Services, lines: string[] }> {
  const services = await startServices(opts.services)
  t.teardown(() => services.stop())
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
  t.afterEach(async (t) => {
    if (!t.passing()) console.error(`--- stack output (last 60 lines) ---\n${lines.slice(-60).join('\n')}`)
  })
  return { stack, services, lines }
}
