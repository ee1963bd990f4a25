// Proves the test harness itself: own servers start, survive kill()/start() on the same port, the
// external-URL path only ever drops the database it created, and nothing is left behind on exit.
import t from 'tap'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import mysql from 'mysql2/promise'
import { pingRedis, startMysql, startRedis, startServices, uniquePrefix } from './helpers/services.ts'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

async function timed<T> (fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now()
  const value = await fn()
  return [value, Math.round(performance.now() - start)]
}

async function mysqlReachable (url: string): Promise<boolean> {
  try {
    const c = await mysql.createConnection({ uri: url, connectTimeout: 1500 })
    c.destroy()
    return true
  } catch {
    return false
  }
}

/** Running (a zombie waiting to be reaped by init counts as gone). */
function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return !/^State:\s*Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return true
  }
}

async function waitUntil (what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

t.test('uniquePrefix never repeats', async (t) => {
  const prefixes = new Set(Array.from({ length: 1000 }, () => uniquePrefix()))
  t.equal(prefixes.size, 1000)
  t.match([...prefixes][0], /^t\d+_\d+_[0-9a-f]+:$/)
})

t.test('own redis: start, PING, kill() makes it unreachable, start() on the same port', async (t) => {
  const [redis, ms] = await timed(() => startRedis())
  t.teardown(() => redis.stop())
  t.comment(`own redis-server ready in ${ms} ms`)
  t.equal(redis.own, true)
  t.equal(redis.url, `redis://127.0.0.1:${redis.port}`)
  t.not(redis.port, 6379, 'never the machine default port')

  const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  await client.connect()
  t.equal(await client.ping(), 'PONG')
  await client.set('harness:k', 'v')
  t.equal(await client.get('harness:k'), 'v')
  client.disconnect()

  const pid = redis.pid
  t.type(pid, 'number')
  await redis.kill()
  t.equal(redis.running, false)
  t.equal(await pingRedis(redis.port), false, 'unreachable after kill()')
  t.equal(alive(pid as number), false, 'process is gone')

  const [, restartMs] = await timed(() => redis.start())
  t.comment(`redis restart on the same port in ${restartMs} ms`)
  t.equal(redis.running, true)
  t.equal(await pingRedis(redis.port), true, 'answers again on the same port')
  t.not(redis.pid, pid)

  const dir = path.dirname(redis.logFile as string)
  await redis.stop()
  t.equal(await pingRedis(redis.port), false, 'unreachable after stop()')
  t.equal(fs.existsSync(dir), false, 'temp dir removed')
  await redis.stop() // idempotent
})

t.test('own mysql: template cold vs cached, fresh DB, kill()/start() keeps data', async (t) => {
  const cacheDir = await fsp.mkdtemp(path.join(os.tmpdir(), 'recsvc-harness-cache-'))
  t.teardown(() => fsp.rm(cacheDir, { recursive: true, force: true }))

  const [cold, coldMs] = await timed(() => startMysql({ templateCacheDir: cacheDir }))
  t.teardown(() => cold.stop())
  const [cached, cachedMs] = await timed(() => startMysql({ templateCacheDir: cacheDir }))
  t.teardown(() => cached.stop())
  const [, defaultMs] = await timed(async () => { const s = await startMysql(); await s.stop() })
  t.comment(`own mysql ready: cold template ${coldMs} ms, cached template ${cachedMs} ms, default cache ${defaultMs} ms (incl. stop)`)
  t.equal(fs.readdirSync(cacheDir).filter((n) => n.includes('template-build')).length, 0, 'no build dirs left in the cache')
  t.equal(fs.readdirSync(cacheDir).filter((n) => n.includes('-template-')).length, 1, 'one template, reused')

  const db = cached
  t.equal(db.own, true)
  t.not(db.port, 3306)
  t.match(db.url, new RegExp(`^mysql://root@127\\.0\\.0\\.1:${db.port}/recsvc_test_\\d+_[0-9a-f]+$`))
  t.equal(db.serverUrl, `mysql://root@127.0.0.1:${db.port}/`)
  t.not(cold.database, cached.database)

  const conn = await mysql.createConnection({ uri: db.url })
  const [[row]] = await conn.query('SELECT DATABASE() AS db, @@character_set_database AS cs') as unknown as [[{ db: string, cs: string }]]
  t.same(row, { db: db.database, cs: 'utf8mb4' })
  await conn.query('CREATE TABLE kept (id INT PRIMARY KEY, name VARCHAR(20)) ENGINE=InnoDB')
  await conn.query("INSERT INTO kept VALUES (1, 'one'), (2, 'zwei ✓')")
  await conn.end()

  const pid = db.pid as number
  await db.kill() // SIGKILL: an abrupt outage
  t.equal(db.running, false)
  t.equal(alive(pid), false, 'process is gone')
  t.equal(await mysqlReachable(db.serverUrl), false, 'unreachable after kill()')

  const [, restartMs] = await timed(() => db.start())
  t.comment(`mysql restart after SIGKILL (crash recovery) in ${restartMs} ms`)
  const c2 = await mysql.createConnection({ uri: db.url })
  const [rows] = await c2.query('SELECT id, name FROM kept ORDER BY id')
  t.same(rows, [{ id: 1, name: 'one' }, { id: 2, name: 'zwei ✓' }], 'committed rows survive a crash')
  await c2.end()

  await db.kill({ signal: 'SIGTERM' })
  const [, restart2Ms] = await timed(() => db.start())
  t.comment(`mysql restart after clean shutdown in ${restart2Ms} ms`)
  t.equal(await mysqlReachable(db.url), true)

  const dir = path.dirname(db.logFile as string)
  await db.stop()
  t.equal(await mysqlReachable(db.serverUrl), false, 'unreachable after stop()')
  t.equal(fs.existsSync(dir), false, 'temp dir removed')
  await t.rejects(db.start(), /already stopped/)
})

t.test('external servers: own database only, stop() drops only it, kill/start refused', async (t) => {
  // An own server stands in for "somebody else's" server, reached through the external code path.
  const [host, redisHost] = await Promise.all([startMysql(), startRedis()])
  t.teardown(async () => { await host.stop(); await redisHost.stop() })

  const admin = await mysql.createConnection({ uri: host.serverUrl })
  t.teardown(() => admin.end())
  await admin.query('CREATE DATABASE sentinel_keep')
  await admin.query('CREATE TABLE sentinel_keep.t (id INT PRIMARY KEY)')
  await admin.query('INSERT INTO sentinel_keep.t VALUES (7)')
  // recsvc_test_-looking, but not created by this harness instance: must survive too
  await admin.query('CREATE DATABASE recsvc_test_0_sentinel')

  const ext = await startMysql({ externalUrl: `${host.serverUrl}some_default_db?charset=utf8mb4` })
  t.equal(ext.own, false)
  t.equal(ext.port, host.port)
  t.match(ext.database, /^recsvc_test_\d+_[0-9a-f]+$/)
  t.not(ext.database, host.database)
  t.equal(new URL(ext.url).pathname, `/${ext.database}`)
  const c = await mysql.createConnection({ uri: ext.url })
  await c.query('CREATE TABLE x (id INT PRIMARY KEY)')
  await c.end()
  await t.rejects(ext.kill(), /needs own server/)
  await t.rejects(ext.start(), /needs own server/)

  const dbs = async (): Promise<string[]> => {
    const [r] = await admin.query('SHOW DATABASES') as unknown as [Array<{ Database: string }>]
    return r.map((x) => x.Database)
  }
  t.ok((await dbs()).includes(ext.database))
  await ext.stop()
  const after = await dbs()
  t.notOk(after.includes(ext.database), 'created database dropped')
  t.ok(after.includes('sentinel_keep'), 'sentinel database survives')
  t.ok(after.includes('recsvc_test_0_sentinel'), 'look-alike database survives')
  t.ok(after.includes(host.database), 'the host harness database survives')
  t.ok(after.includes('mysql'))
  const [keep] = await admin.query('SELECT id FROM sentinel_keep.t')
  t.same(keep, [{ id: 7 }])

  const extRedis = await startRedis({ externalUrl: redisHost.url })
  t.equal(extRedis.own, false)
  t.equal(extRedis.port, redisHost.port)
  await t.rejects(extRedis.kill(), /needs own server/)
  await extRedis.stop()
  t.equal(await pingRedis(redisHost.port), true, 'stop() leaves an external redis running')

  // startServices honours REDIS_URL / MYSQL_URL, and ownRedis/ownMysql override them.
  const saved = { r: process.env.REDIS_URL, m: process.env.MYSQL_URL }
  t.teardown(() => {
    if (saved.r === undefined) delete process.env.REDIS_URL; else process.env.REDIS_URL = saved.r
    if (saved.m === undefined) delete process.env.MYSQL_URL; else process.env.MYSQL_URL = saved.m
  })
  process.env.REDIS_URL = redisHost.url
  process.env.MYSQL_URL = host.serverUrl
  const viaEnv = await startServices()
  t.equal(viaEnv.redis.url, redisHost.url)
  t.equal(viaEnv.mysql.port, host.port)
  t.equal(viaEnv.mysql.own, false)
  await viaEnv.stop()
  t.notOk((await dbs()).includes(viaEnv.mysql.database))
  const forced = await startServices({ ownRedis: true })
  t.equal(forced.redis.own, true)
  t.not(forced.redis.port, redisHost.port)
  t.equal(forced.mysql.own, false)
  await forced.stop()
  t.equal(await pingRedis(forced.redis.port), false)
})

t.test('startServices without env: own servers, stop() idempotent', async (t) => {
  const saved = { r: process.env.REDIS_URL, m: process.env.MYSQL_URL }
  delete process.env.REDIS_URL
  delete process.env.MYSQL_URL
  t.teardown(() => {
    if (saved.r !== undefined) process.env.REDIS_URL = saved.r
    if (saved.m !== undefined) process.env.MYSQL_URL = saved.m
  })
  const [s, ms] = await timed(() => startServices())
  t.comment(`startServices() (own redis + own mysql, cached template) in ${ms} ms`)
  t.equal(s.redis.own, true)
  t.equal(s.mysql.own, true)
  t.equal(await pingRedis(s.redis.port), true)
  t.equal(await mysqlReachable(s.mysql.url), true)
  await Promise.all([s.stop(), s.stop()])
  t.equal(await pingRedis(s.redis.port), false)
})

// Child processes must die with the test process, whether it exits normally without stop() or is
// SIGKILLed (no 'exit' hook runs then: the watchdog must do it).
for (const how of ['exit-without-stop', 'SIGKILL'] as const) {
  t.test(`no orphans when the test process ends by ${how}`, async (t) => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'recsvc-harness-orphan-'))
    t.teardown(() => fsp.rm(dir, { recursive: true, force: true }))
    const script = path.join(dir, 'child.mts') // .mts: no package.json says "module" under the temp dir
    const helper = path.join(repoRoot, 'test', 'helpers', 'services.ts')
    await fsp.writeFile(script, `
      import { startServices } from ${JSON.stringify(helper)}
      const s = await startServices({ ownRedis: true, ownMysql: true })
      const info = { redisPid: s.redis.pid, mysqlPid: s.mysql.pid, redisPort: s.redis.port, mysqlUrl: s.mysql.serverUrl,
        dirs: [s.redis.logFile, s.mysql.logFile] }
      console.log(JSON.stringify(info))
      if (${JSON.stringify(how)} === 'exit-without-stop') process.exit(0)
      else setInterval(() => {}, 1000)
    `)
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    await waitUntil('the child printed its servers', () => out.includes('\n') || child.exitCode !== null, 60_000)
    if (!out.includes('\n')) throw new Error(`child failed (exit ${String(child.exitCode)}):\n${err}`)
    const info = JSON.parse(out.split('\n')[0] ?? '') as { redisPid: number, mysqlPid: number, redisPort: number, mysqlUrl: string, dirs: string[] }
    t.ok(info.redisPid > 0 && info.mysqlPid > 0, err)
    if (how === 'SIGKILL') child.kill('SIGKILL')
    await exited
    await waitUntil('redis-server is gone', () => !alive(info.redisPid))
    await waitUntil('mysqld is gone', () => !alive(info.mysqlPid))
    t.equal(await pingRedis(info.redisPort), false)
    t.equal(await mysqlReachable(info.mysqlUrl), false)
    await waitUntil('temp dirs are removed', () => info.dirs.every((f) => !fs.existsSync(path.dirname(f))))
    t.pass('servers and temp dirs are gone')
  })
}
