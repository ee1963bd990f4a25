import t from 'tap'
import { Writable } from 'node:stream'
import { startServices, uniquePrefix } from './helpers/services.ts'
import { buildApp } from '../src/app.ts'
import { loadConfig, type Config } from '../src/config.ts'
import { loadFixture } from '../tools/fixture.ts'

const services = await startServices()
t.teardown(() => services.stop())
await loadFixture(services.mysql.url)

/** The real app with its log lines captured, as the default config would write them. */
async function appWithLog (overrides: Partial<Config>) {
  const lines: Array<{ level: number, msg: string, reqId?: string, responseTime?: number }> = []
  const stream = new Writable({ write (chunk, _enc, cb) { for (const l of String(chunk).trim().split('\n')) lines.push(JSON.parse(l)); cb() } })
  const config = loadConfig({}, { MYSQL_URL: services.mysql.url, REDIS_URL: services.redis.url, REDIS_KEY_PREFIX: uniquePrefix(), SCORER_THREADS: 1, MYSQL_POOL_SIZE: 2, ...overrides })
  const app = await buildApp(config, { logger: { level: config.LOG_LEVEL, stream } })
  await app.ready()
  t.teardown(() => app.close())
  return { app, lines, requestLines: () => lines.filter((l) => /request/.test(l.msg)) }
}

t.test('at the default level a served request writes no log line', async (t) => {
  const { app, requestLines } = await appWithLog({})
  t.equal(loadConfig({}).LOG_LEVEL, 'info', 'the default level')
  for (let i = 0; i < 20; i++) t.equal((await app.inject('/recommend/3')).statusCode, 200)
  t.equal((await app.inject('/recommend/999999')).statusCode, 404)
  t.same(requestLines(), [], 'no per-request lines')
})

t.test('a request slower than LOG_SLOW_REQUEST_MS is logged at warn with its id and time', async (t) => {
  const { app, requestLines } = await appWithLog({ LOG_SLOW_REQUEST_MS: 1 })
  const miss = await app.inject({ url: '/recommend/4', headers: { 'x-request-id': 'slow-one' } })
  t.equal(miss.headers['x-cache'], 'MISS')
  const slow = requestLines().filter((l) => l.msg === 'slow request')
  t.equal(slow.length >= 1, true)
  t.equal(slow[0]?.level, 40, 'warn')
  t.equal(slow[0]?.reqId, 'slow-one')
  t.ok(Number(slow[0]?.responseTime) >= 1)
})

t.test('at debug every request is logged', async (t) => {
  const { app, requestLines } = await appWithLog({ LOG_LEVEL: 'debug' })
  for (let i = 0; i < 5; i++) await app.inject('/recommend/5')
  t.equal(requestLines().filter((l) => l.msg === 'request completed').length, 5)
  t.equal(requestLines().filter((l) => l.msg === 'incoming request').length, 5)
})
