import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { startServices, uniquePrefix, type Services, type ServicesOptions } from './services.ts'
import { loadFixture } from '../../tools/fixture.ts'
import { buildApp } from '../../src/app.ts'
import { loadConfig, type Config } from '../../src/config.ts'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'

/** Builds the real app against the given servers, with a quiet logger and a Redis key prefix of
 *  its own so instances from different test files never see each other's keys. */
export async function buildTestApp (urls: { redisUrl: string, mysqlUrl: string, prefix: string }, overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, {
    MYSQL_URL: urls.mysqlUrl,
    REDIS_URL: urls.redisUrl,
    REDIS_KEY_PREFIX: urls.prefix,
    LOG_LEVEL: 'silent',
    ADMIN_TOKEN,
    SCORER_THREADS: 1,
    MYSQL_POOL_SIZE: 5,
    REPLICA_ID: 'test-replica',
    // Tests send far more than 100 requests a minute from one address; the limits have their own
    // test (rate-limit-tiers), which turns them on.
    RATE_LIMIT_ENABLED: false,
    ...overrides
  })
  const app = await buildApp(config)
  await app.ready()
  return app
}

export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Several replicas of the app on one Redis and one MySQL, as in production: same key prefix,
 *  distinct replica ids. */
export async function buildReplicas (n: number, urls: { redisUrl: string, mysqlUrl: string, prefix: string }, overrides: Partial<Config> = {}): Promise<FastifyInstance[]> {
  const apps: FastifyInstance[] = []
  for (let i = 0; i < n; i++) apps.push(await buildTestApp(urls, { REPLICA_ID: `replica-${String.fromCharCode(97 + i)}`, ...overrides }))
  return apps
}

/** Users scored so far on these replicas, from each one's recsvc_scorings_total. */
export async function scoringsOf (apps: FastifyInstance[]): Promise<number> {
  let total = 0
  for (const app of apps) total += (await app.recMetrics.registry.getSingleMetric('recsvc_scorings_total')?.get())?.values[0]?.value ?? 0
  return total
}

export async function waitFor (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export interface WithApp { app: FastifyInstance, apps: FastifyInstance[], services: Services, urls: { redisUrl: string, mysqlUrl: string, prefix: string } }

/** The preamble of a behaviour test: its servers (see services.ts), the fixture data, and
 *  `replicas` instances of the app on them sharing one key prefix (replica-a, -b, ...; one plain
 *  test replica by default), all stopped when `t` ends. `beforeApps` runs between the fixture and
 *  the apps (extra rows a test needs at boot). */
export async function withApp (t: Test, opts: { services?: ServicesOptions, config?: Partial<Config>, replicas?: number, beforeApps?: (services: Services) => Promise<void> } = {}): Promise<WithApp> {
  const services = await startServices(opts.services)
  t.teardown(() => services.stop())
  await loadFixture(services.mysql.url)
  await opts.beforeApps?.(services)
  const urls = { redisUrl: services.redis.url, mysqlUrl: services.mysql.url, prefix: uniquePrefix() }
  const apps = opts.replicas === undefined ? [await buildTestApp(urls, opts.config)] : await buildReplicas(opts.replicas, urls, opts.config)
  t.teardown(async () => { await Promise.all(apps.map((app) => app.close())) })
  return { app: apps[0] as FastifyInstance, apps, services, urls }
}

/** Makes the app's MySQL loads run their real query and then, while held, wait for `release()`:
 *  a fill keeps what MySQL said while the test changes the world under it. */
export function holdLoads (app: FastifyInstance): { hold: () => void, release: () => void, readonly read: boolean } {
  let gate: Promise<void> | undefined
  let open: () => void = () => {}
  let read = false
  const load = app.userStore.loadUsers.bind(app.userStore)
  app.userStore.loadUsers = async (...args) => {
    const rows = await load(...args)
    read = true
    if (gate) await gate
    return rows
  }
  return {
    hold () { read = false; gate = new Promise<void>((resolve) => { open = resolve }) },
    release () { gate = undefined; open() },
    get read () { return read }
  }
}
