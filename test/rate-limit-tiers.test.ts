import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Pool } from 'mysql2/promise'
import { adminHeaders, waitFor, withApp } from './helpers/app.ts'
import { main as keysMain } from '../scripts/keys.ts'
import { ApiKeyLookup, generateKey } from '../src/lib/api-keys.ts'
import { RecError } from '../src/lib/errors.ts'
import { loadConfig, type Config } from '../src/config.ts'
import { describeRateLimits } from '../src/plugins/rate-limit.ts'

const LIMITS: Partial<Config> = {
  RATE_LIMIT_ENABLED: true,
  RATE_LIMIT_ANONYMOUS_PER_MIN: 20,
  RATE_LIMIT_FREE_PER_MIN: 100,
  RATE_LIMIT_PREMIUM_PER_MIN: 50,
  RATE_LIMIT_ENTERPRISE_PER_MIN: 0,
  RATE_LIMIT_ADMIN_PER_MIN: 5,
  RATE_LIMIT_KEY_CACHE_TTL_MS: 300,
  // inject() comes from 127.0.0.1: as behind nginx, the client is X-Forwarded-For.
  TRUST_PROXY: '127.0.0.1'
}

const { apps, urls } = await withApp(t, { replicas: 3, config: LIMITS })

/** `npm run keys -- ...` in-process against the test database. */
async function keys (...argv: string[]): Promise<{ code: number, out: string[], err: string[] }> {
  const out: string[] = []
  const err: string[] = []
  const code = await keysMain([...argv, '--mysql-url', urls.mysqlUrl], { out: (l) => out.push(l), err: (l) => err.push(l) })
  return { code, out, err }
}
async function newKey (tier: string): Promise<{ id: number, key: string }> {
  const r = await keys('create', '--tier', tier)
  t.equal(r.code, 0, `keys create --tier ${tier}`)
  const key = r.out.find((l) => l.startsWith('rk_')) as string
  return { id: Number(/created key (\d+)/.exec(r.out[0] ?? '')?.[1]), key }
}

async function limitedCount (tier: string): Promise<number> {
  let n = 0
  for (const app of apps) {
    const m = await app.recMetrics.registry.getSingleMetric('recsvc_rate_limited_total')?.get()
    n += m?.values.find((v) => v.labels.tier === tier)?.value ?? 0
  }
  return n
}

/** `n` requests spread round-robin over the replicas, all at once. */
async function spread (n: number, req: (i: number) => InjectOptions): Promise<LightMyRequestResponse[]> {
  return await Promise.all(Array.from({ length: n }, (_, i) => (apps[i % apps.length] as FastifyInstance).inject(req(i))))
}

function check429 (t: Test, res: LightMyRequestResponse, limit: number): void {
  t.equal(res.statusCode, 429)
  t.match(res.json(), { statusCode: 429, code: 'REC_ERR_RATE_LIMITED', error: 'Too Many Requests', message: /rate limit of \d+ requests per minute/ })
  t.ok(Number(res.headers['retry-after']) >= 1 && Number(res.headers['retry-after']) <= 60, `Retry-After ${res.headers['retry-after']}`)
  t.equal(res.headers['x-ratelimit-limit'], String(limit))
  t.equal(res.headers['x-ratelimit-remaining'], '0')
  t.ok(Number(res.headers['x-ratelimit-reset']) >= 1, 'x-ratelimit-reset')
}

t.test('a key of a 100/min tier: 130 requests over 3 replicas -> exactly 100 served, 30 x 429', async (t) => {
  const { key } = await newKey('free')
  const before = await limitedCount('free')
  // One after the other, round-robin: the 101st request and every later one is refused, on
  // whichever replica it lands (one count across them); the anonymous case below sends at once.
  const res: LightMyRequestResponse[] = []
  for (let i = 0; i < 130; i++) res.push(await (apps[i % 3] as FastifyInstance).inject({ url: `/recommend/${1 + (i % 20)}`, headers: { 'x-api-key': key } }))
  const ok = res.filter((r) => r.statusCode === 200)
  const limited = res.filter((r) => r.statusCode === 429)
  t.equal(ok.length, 100, 'served')
  t.equal(limited.length, 30, 'refused')
  t.ok(res.slice(0, 100).every((r) => r.statusCode === 200), 'the first 100')
  for (const id of ['replica-a', 'replica-b', 'replica-c']) t.equal(limited.filter((r) => r.headers['x-served-by'] === id).length, 10, `${id} refused its 10`)
  for (const r of limited.slice(0, 3)) check429(t, r, 100)
  t.equal(ok[0]?.headers['x-ratelimit-limit'], '100', 'served requests carry the limit')
  t.ok(ok.every((r) => Number(r.headers['x-ratelimit-remaining']) < 100), 'and what remains')
  t.equal(await limitedCount('free') - before, 30, 'recsvc_rate_limited_total{tier="free"} moved by the number of 429s')
})

t.test('anonymous clients are limited per real client IP (X-Forwarded-For from a trusted proxy)', async (t) => {
  const before = await limitedCount('anonymous')
  const res = await spread(26, (i) => ({ url: `/recommend/${1 + i}`, headers: { 'x-forwarded-for': '203.0.113.7' } }))
  t.equal(res.filter((r) => r.statusCode === 200).length, 20)
  const limited = res.filter((r) => r.statusCode === 429)
  t.equal(limited.length, 6)
  check429(t, limited[0] as LightMyRequestResponse, 20)
  const other = await (apps[1] as FastifyInstance).inject({ url: '/recommend/1', headers: { 'x-forwarded-for': '203.0.113.8' } })
  t.equal(other.statusCode, 200, 'another IP has its own budget')
  t.equal(await limitedCount('anonymous') - before, 6)
})

t.test('/health and /metrics are never limited, whatever the client sends', async (t) => {
  const ip = { 'x-forwarded-for': '203.0.113.7' } // used up above
  const res = await spread(30, (i) => ({ url: ['/health/live', '/health/ready', '/metrics'][i % 3] as string, headers: ip }))
  t.ok(res.every((r) => r.statusCode === 200), res.map((r) => r.statusCode).join(','))
  t.notOk(res.some((r) => r.headers['x-ratelimit-limit']), 'no rate-limit headers')
  const bad = await (apps[0] as FastifyInstance).inject({ url: '/health/live', headers: { 'x-api-key': 'nonsense' } })
  t.equal(bad.statusCode, 200, 'a probe does not depend on a key lookup')
  t.equal((await (apps[0] as FastifyInstance).inject({ url: '/recommend/1', headers: ip })).statusCode, 429, 'while the IP is limited')
})

t.test('a batch costs one per id', async (t) => {
  const { key } = await newKey('premium') // 50/min
  const ids = Array.from({ length: 10 }, (_, i) => String(1 + i))
  const before = await limitedCount('premium')
  for (let i = 0; i < 5; i++) {
    const res = await (apps[i % 3] as FastifyInstance).inject({ method: 'POST', url: '/batch-recommend', headers: { 'x-api-key': key }, payload: { user_ids: ids } })
    t.equal(res.statusCode, 200, `batch ${i + 1}`)
    t.equal(res.headers['x-ratelimit-remaining'], String(40 - 10 * i), 'consumed 10')
  }
  check429(t, await (apps[2] as FastifyInstance).inject({ url: '/recommend/1', headers: { 'x-api-key': key } }), 50)
  t.equal(await limitedCount('premium') - before, 1)

  const { key: key2 } = await newKey('premium')
  t.equal((await (apps[0] as FastifyInstance).inject({ url: `/batch-recommend?user_ids=${ids.join(',')}`, headers: { 'x-api-key': key2 } })).headers['x-ratelimit-remaining'], '40', 'GET counts its ids too')
  const big = Array.from({ length: 45 }, (_, i) => String(1 + i))
  const over = await (apps[1] as FastifyInstance).inject({ method: 'POST', url: '/batch-recommend', headers: { 'x-api-key': key2 }, payload: { user_ids: big } })
  check429(t, over, 50)
  t.equal(await limitedCount('premium') - before, 2, 'the refused batch is counted once in the metric')
})

t.test('unknown, revoked and malformed keys get 401, not the anonymous budget', async (t) => {
  const app = apps[0] as FastifyInstance
  const expect401 = async (key: string | string[], what: string) => {
    const res = await app.inject({ url: '/recommend/1', headers: { 'x-api-key': key } })
    t.equal(res.statusCode, 401, what)
    t.match(res.json(), { statusCode: 401, code: 'REC_ERR_BAD_API_KEY', error: 'Unauthorized' }, what)
  }
  await expect401(generateKey(), 'unknown')
  await expect401('abc', 'malformed')
  await expect401(`${generateKey()}x`, 'too long')
  await expect401('', 'empty')

  const { id, key } = await newKey('free')
  for (const a of apps) t.equal((await a.inject({ url: '/recommend/2', headers: { 'x-api-key': key } })).statusCode, 200, 'works before revocation')
  const revoked = await keys('revoke', String(id))
  t.equal(revoked.code, 0)
  t.match(revoked.out.join('\n'), `key ${id} revoked`)
  // Revocation takes effect within RATE_LIMIT_KEY_CACHE_TTL_MS (300 ms here) on every replica.
  await new Promise((resolve) => setTimeout(resolve, 400))
  for (const a of apps) {
    const res = await a.inject({ url: '/recommend/2', headers: { 'x-api-key': key } })
    t.equal(res.statusCode, 401, `revoked on ${res.headers['x-served-by']}`)
  }
})

t.test('enterprise (0) is unlimited and the admin routes have their own budget', async (t) => {
  const { key } = await newKey('enterprise')
  const res = await spread(130, (i) => ({ url: `/recommend/${1 + (i % 20)}`, headers: { 'x-api-key': key } }))
  t.ok(res.every((r) => r.statusCode === 200), 'all served')
  t.notOk(res[0]?.headers['x-ratelimit-limit'], 'no limit to announce')

  const before = await limitedCount('admin')
  const ip = { 'x-forwarded-for': '198.51.100.9' }
  const writes = await spread(7, () => ({ method: 'POST', url: '/invalidate-cache', headers: { ...adminHeaders, ...ip }, payload: { user_ids: [3] } }))
  t.equal(writes.filter((r) => r.statusCode === 200).length, 5)
  const limited = writes.filter((r) => r.statusCode === 429)
  t.equal(limited.length, 2)
  check429(t, limited[0] as LightMyRequestResponse, 5)
  t.equal(await limitedCount('admin') - before, 2)
  const read = await (apps[0] as FastifyInstance).inject({ url: '/recommend/3', headers: ip })
  t.equal(read.statusCode, 200, 'reads of the same client are not in the admin budget')
  t.equal(read.headers['x-ratelimit-limit'], '20')
})

t.test('keys CLI: list shows ids, tiers and revocations, never a key; bad input is refused', async (t) => {
  const { id, key } = await newKey('premium')
  const list = await keys('list')
  t.equal(list.code, 0)
  const text = list.out.join('\n')
  t.match(text, new RegExp(`^${id}\\tpremium\\t\\d{4}-\\d\\d-\\d\\dT[^\\t]+\\t-\\t[0-9a-f]{8}…$`, 'm'))
  t.match(text, /\tfree\t[^\t]+\t\d{4}-\d\d-\d\dT/, 'a revoked key shows when')
  t.notMatch(text, /rk_/, 'no key in the listing')
  t.notMatch(text, key.slice(3, 20))
  t.equal((await keys('revoke', '999999')).code, 1, 'unknown id')
  t.equal((await keys('revoke', String(id))).code, 0)
  t.match((await keys('revoke', String(id))).out.join(''), /already revoked/)
  t.equal((await keys('create', '--tier', 'gold')).code, 2)
  t.equal((await keys('frobnicate')).code, 2)
})

t.test('key lookups: a cached key survives a MySQL failure, an uncached one is a 503', async (t) => {
  let down = false
  const rows = [{ id: 7, tier: 'premium', revoked_at: null }]
  const conn = { execute: async () => [rows], query: async () => [rows], release () {}, destroy () {} }
  const pool = { getConnection: async () => { if (down) throw new Error('connect ECONNREFUSED'); return conn } } as unknown as Pool
  let now = 0
  const errors: boolean[] = []
  const lookup = new ApiKeyLookup(pool, { ttlMs: 1000, timeoutMs: 200, now: () => now, onError: (_e, stale) => errors.push(stale) })
  const known = generateKey()
  t.same(await lookup.lookup(known), { id: 7, tier: 'premium' })
  down = true
  now = 5000 // past the TTL
  t.same(await lookup.lookup(known), { id: 7, tier: 'premium' }, 'cached answer used while MySQL fails')
  const err = await lookup.lookup(generateKey()).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof RecError && err.statusCode === 503 && err.code === 'REC_ERR_UNAVAILABLE', 'uncached: 503')
  t.same(errors, [true, false])
})

t.test('with Redis stopped, requests are served (fail open) and the error metric moves', async (t) => {
  const { app, services } = await withApp(t, { services: { ownRedis: true }, config: { ...LIMITS, RATE_LIMIT_ANONYMOUS_PER_MIN: 5, BREAKER_COOLDOWN_MS: 200 } })
  const errorsOf = async () => (await app.recMetrics.registry.getSingleMetric('recsvc_rate_limit_errors_total')?.get())?.values[0]?.value ?? 0
  const from = (ip: string) => ({ url: '/recommend/4', headers: { 'x-forwarded-for': ip } })
  for (let i = 0; i < 5; i++) await app.inject(from('192.0.2.1'))
  t.equal((await app.inject(from('192.0.2.1'))).statusCode, 429, 'limited while Redis is up')

  await services.redis.kill()
  await waitFor('the client to notice', () => app.redis.status !== 'ready')
  const before = await errorsOf()
  for (let i = 0; i < 10; i++) {
    const res = await app.inject(from('192.0.2.1'))
    t.equal(res.statusCode, 200, `served without Redis (${i})`)
  }
  t.equal(await errorsOf() - before, 10, 'recsvc_rate_limit_errors_total counts each failed count')

  await services.redis.start()
  await waitFor('Redis back', () => app.redis.status === 'ready', 15_000)
  const res = []
  for (let i = 0; i < 6; i++) res.push((await app.inject(from('192.0.2.2'))).statusCode)
  t.same(res, [200, 200, 200, 200, 200, 429], 'limits apply again')
})

t.test('configuration', async (t) => {
  t.throws(() => loadConfig({ RATE_LIMIT_MAX: '100' }), /RATE_LIMIT_MAX="100": replaced by RATE_LIMIT_ENABLED/)
  t.doesNotThrow(() => loadConfig({ RATE_LIMIT_MAX: '0' }), 'a leftover 0 (off) is harmless')
  t.throws(() => loadConfig({ RATE_LIMIT_ENABLED: 'yes' }), /RATE_LIMIT_ENABLED/)
  t.throws(() => loadConfig({ RATE_LIMIT_FREE_PER_MIN: '-1' }), /RATE_LIMIT_FREE_PER_MIN/)
  t.equal(describeRateLimits(loadConfig({})), 'anonymous 100/min per IP, free 100/min, premium 1000/min, enterprise unlimited per key, admin 60/min per client', 'on by default, at the documented tiers')
  t.equal(describeRateLimits(loadConfig({ RATE_LIMIT_ENABLED: 'false' })), 'off', 'RATE_LIMIT_ENABLED=false turns them off')
  t.equal(describeRateLimits(loadConfig({ RATE_LIMIT_ENABLED: 'true' })), 'anonymous 100/min per IP, free 100/min, premium 1000/min, enterprise unlimited per key, admin 60/min per client')
  t.equal(describeRateLimits(loadConfig({ RATE_LIMIT_ENABLED: 'true', RATE_LIMIT_ANONYMOUS_PER_MIN: '0', RATE_LIMIT_FREE_PER_MIN: '0', RATE_LIMIT_PREMIUM_PER_MIN: '0', RATE_LIMIT_ADMIN_PER_MIN: '0' })), 'off', 'every tier 0 is off')
})
