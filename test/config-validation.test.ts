import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { loadConfig, describeConfig } from '../src/config.ts'

t.test('defaults are complete and valid', async (t) => {
  const c = loadConfig({})
  t.equal(c.PORT, 3000)
  t.equal(c.MYSQL_POOL_SIZE, 20)
  t.equal(c.L1_TTL_MS, 60_000)
  t.equal(c.L2_TTL_S, 600)
  t.equal(c.BATCH_MAX_IDS, 100)
})

t.test('values are converted from strings', async (t) => {
  const c = loadConfig({ PORT: '8081', SEARCH_HALF_LIFE_DAYS: '3.5', LOG_LEVEL: 'warn' })
  t.equal(c.PORT, 8081)
  t.equal(c.SEARCH_HALF_LIFE_DAYS, 3.5)
  t.equal(c.LOG_LEVEL, 'warn')
})

t.test('a bad value is an error naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'abc' }, /PORT="abc"/],
    [{ PORT: '70000' }, /PORT=70000: must be <= 65535/],
    [{ MYSQL_URL: 'postgres://x' }, /MYSQL_URL/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL="loud": must be one of fatal, error/],
    [{ L1_MAX_ENTRIES: '0' }, /L1_MAX_ENTRIES/],
    [{ ADMIN_TOKEN: 'short' }, /ADMIN_TOKEN: must be at least 16 characters/]
  ]
  for (const [env, re] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError' })
    try { loadConfig(env) } catch (e) { t.match((e as Error).message, re) }
  }
})

t.test('every variable is documented in .env.example', async (t) => {
  const { readFile } = await import('node:fs/promises')
  const example = await readFile(new URL('../.env.example', import.meta.url), 'utf8')
  for (const v of describeConfig()) t.match(example, new RegExp(`^#? ?${v.name}=`, 'm'), v.name)
})

t.test('the server refuses to start on a bad value and says which', async (t) => {
  const server = fileURLToPath(new URL('../src/server.ts', import.meta.url))
  const res = spawnSync(process.execPath, ['--import', 'tsx', server], {
    env: { ...process.env, PORT: 'not-a-port', MYSQL_URL: 'mysql://127.0.0.1:1/x' },
    encoding: 'utf8',
    timeout: 30_000
  })
  t.equal(res.status, 78)
  t.match(res.stderr, /invalid configuration:\n {2}PORT="not-a-port"/)
})
