// The one-machine stack (tools/stack.ts): starts its own Redis and MariaDB in a temp state dir,
// seeds a small data set, builds and runs two replicas, and leaves nothing behind after stop().
import t, { type Test } from 'tap'
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { startStack, type Stack } from '../tools/stack.ts'

const stateDir = await mkdtemp(join(tmpdir(), 'recsvc-stack-'))
const lines: string[] = []
const log = (line: string) => { lines.push(line) }
let current: Stack | undefined

t.teardown(async () => {
  await current?.stop()
  await rm(stateDir, { recursive: true, force: true })
})

// The children must not inherit the test runner's loader hooks (NODE_OPTIONS) or TAP variables.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) =>
  k !== 'NODE_OPTIONS' && !/^(TAP|_TAPJS)/.test(k) && k !== 'REDIS_URL' && k !== 'MYSQL_URL' && k !== 'ADMIN_TOKEN'))

const options = {
  stateDir,
  env,
  apiBasePort: 0, // any free ports: CI runs other test files alongside
  redisPort: 0,
  mysqlPort: 0,
  redisUrl: undefined, // never reuse the developer's servers: this test starts its own
  mysqlUrl: undefined,
  users: 200,
  logLevel: 'warn',
  log,
  readyTimeoutMs: 45_000
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Processes still carrying the stack's marker for this state dir, or running inside it. */
async function leftovers (): Promise<number[]> {
  const found: number[] = []
  let pids: string[]
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n))
  } catch {
    return found // not Linux: the pid checks below still run
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue
    const env = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')
    const cwd = await readlink(`/proc/${pid}/cwd`).catch(() => '')
    if (env.split('\0').includes(`RECSVC_STACK_DIR=${stateDir}`) || cwd.startsWith(stateDir)) found.push(Number(pid))
  }
  return found
}

async function get (url: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(10_000) })
  return { status: res.status, servedBy: res.headers.get('x-served-by'), body: await res.text() }
}

async function stopAndCheck (t: Test, stack: Stack): Promise<void> {
  const procs = stack.processes()
  const ts = Date.now()
  await stack.stop()
  t.comment(`stop() took ${Date.now() - ts} ms`)
  t.same(procs.filter((p) => alive(p.pid)).map((p) => `${p.name}:${p.pid}`), [], 'every process the stack started has exited')
  t.ok(stack.processes().every((p) => !p.running), 'processes() reports nothing running')
  // watchdogs are killed asynchronously right after their child exits
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(await leftovers(), [], 'nothing runs with the stack marker or inside the state dir')
  await t.rejects(fetch(stack.apiUrls[0]!, { signal: AbortSignal.timeout(2000) }), 'the API port is closed')
}

t.test('two replicas on their own Redis and MariaDB, then a clean stop', async (t) => {
  const t0 = Date.now()
  const stack = current = await startStack({ ...options, replicas: 2 })
  t.comment(`first start (init, seed 200 users, build, 2 replicas) took ${Date.now() - t0} ms`)

  t.equal(stack.apiUrls.length, 2)
  const names = stack.processes().map((p) => p.name).sort()
  t.same(names, ['api-1', 'api-2', 'mysql', 'redis'], 'started its own Redis and MySQL')
  t.notMatch(stack.redisUrl, /:6379$/, 'not the system Redis')
  t.notMatch(stack.mysqlUrl, /:3306\//, 'not the system MySQL')
  t.ok(stack.adminToken.length >= 16, 'generated an admin token')

  for (const [i, url] of stack.apiUrls.entries()) {
    const r = await get(`${url}/recommend/1`)
    t.equal(r.status, 200, `replica ${i + 1} answers /recommend/1 (${r.status === 200 ? 'ok' : r.body.slice(0, 300)})`)
    t.equal(r.servedBy, `api-${i + 1}`, `X-Served-By of replica ${i + 1}`)
    t.equal(JSON.parse(r.body).user_id, 1)
  }
  const unauth = await get(`${stack.apiUrls[0]}/invalidate-cache/1`, {}, 'POST')
  t.equal(unauth.status, 401, 'admin route needs the token')
  const auth = await get(`${stack.apiUrls[1]}/invalidate-cache/1`, { authorization: `Bearer ${stack.adminToken}` }, 'POST')
  t.equal(auth.status, 200, 'admin route accepts the generated token')

  const db = await mysql.createConnection({ uri: stack.mysqlUrl })
  const [rows] = await db.query('SELECT COUNT(*) AS n FROM users') as unknown as [Array<{ n: number }>]
  await db.end()
  t.equal(Number(rows[0]?.n), 200, 'seeded the requested number of users')

  await stopAndCheck(t, stack)
  current = undefined
})

t.test('a second start reuses the data (no init, no seeding) and is quick', async (t) => {
  lines.length = 0
  const t0 = Date.now()
  const stack = current = await startStack({ ...options, replicas: 1, users: 500, build: false })
  t.comment(`second start (no build) took ${Date.now() - t0} ms`)
  t.notOk(lines.some((l) => /initialising/.test(l)), 'datadir not initialised again')
  t.ok(lines.some((l) => /not seeding/.test(l)), 'did not seed a database that has users')
  const r = await get(`${stack.apiUrls[0]}/recommend/1`)
  t.equal(r.status, 200)
  t.equal(r.servedBy, 'api-1')
  await stopAndCheck(t, stack)
  current = undefined
})

t.afterEach(async (t) => {
  if (!t.passing()) console.error(`--- stack output (last 80 lines) ---\n${lines.slice(-80).join('\n')}`)
})
