// The Docker image runs Node 24; our machines run Node 20. This runs what the image runs under a real
// Node 24 binary (installed on demand under .cache/node24, see tools/node24-smoke.ts): the compiled server (tsc with tsconfig.build.json,
// as in the Dockerfile's build stage) against real Redis and MySQL/MariaDB, and the compose `seed`
// service's command exactly as docker-compose.yml writes it, on a database prepared the way the
// mysql image's initdb prepares it (sql/*.sql applied, schema_migrations empty).
import t from 'tap'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import mysql from 'mysql2/promise'
import YAML from 'yaml'
import { buildAppDir, cleanEnv, findNode24, problems, REPO_ROOT, runCommand, smoke, type Node24 } from '../tools/node24-smoke.ts'
import { startServices } from './helpers/services.ts'
import { loadFixture } from '../tools/fixture.ts'

// No skip when it is missing: the image's runtime must be proven. The error says how to get it.
const node: Node24 = findNode24()
t.comment(`Node 24 binary: ${node.bin} (${node.version})`)

const appDir = join(REPO_ROOT, 'dist', `node24-test-${process.pid}`)
const services = await startServices()
t.teardown(async () => {
  await services.stop()
  await rm(appDir, { recursive: true, force: true })
})

// tsc (~7 s) overlaps with loading the fixture
const [tscOut] = await Promise.all([buildAppDir(appDir), loadFixture(services.mysql.url)])
if (tscOut.trim()) t.comment(`tsc reported (the emit is used anyway; npm test type-checks separately):\n${tscOut.trim()}`)

/** The exec-form HEALTHCHECK CMD of the Dockerfile's final stage, and the compose api healthcheck. */
function healthCheckCommands (): Record<string, string[]> {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ')
  const hc = /^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$/m.exec(dockerfile)
  if (!hc) throw new Error('no exec-form HEALTHCHECK in the Dockerfile')
  const compose = YAML.parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { healthcheck?: { test?: string[] } }> }
  const api = compose.services.api?.healthcheck?.test ?? []
  if (api[0] !== 'CMD') throw new Error('compose api healthcheck is not CMD exec form')
  return { dockerfile: JSON.parse(hc[1]!) as string[], compose: api.slice(1) }
}

t.test('the Dockerfile and compose health-check commands fail when nothing answers', async (t) => {
  const closed = '1' // nothing listens on port 1
  for (const [name, argv] of Object.entries(healthCheckCommands())) {
    t.equal(argv[0], 'node', `${name}: runs node (no curl in the slim image)`)
    const args = argv.slice(1).map((a) => a.replace(':3000/', `:${closed}/`))
    t.equal(await runCommand(node.bin, args, { ...cleanEnv(), PORT: closed }, appDir, 10_000), 1, `${name}: exit 1`)
  }
})

t.test('the compiled server runs under Node 24: /health/ready, GET /recommend/:id, health checks, SIGTERM', async (t) => {
  // compose's check names port 3000 (the container's PORT); here the server has a free port
  const healthChecks = Object.fromEntries(Object.entries(healthCheckCommands()).map(([name, argv]) =>
    [name, argv.map((a) => a.includes('fetch(') ? a.replace(":3000/", ":'+process.env.PORT+'/") : a)]))
  const r = await smoke({ node, appDir, mysqlUrl: services.mysql.url, redisUrl: services.redis.url, userId: 1, healthChecks, log: (l) => t.comment(l) })
  t.same(r.healthChecks, { dockerfile: 0, compose: 0 }, 'Dockerfile HEALTHCHECK (/health/live) and compose api check (/health/ready) pass')
  t.match(r.nodeVersion, /^v24\./, `binary ${r.nodeVersion}`)
  t.equal(r.serverNodeVersion, r.nodeVersion, 'the server reports the same Node version in /metrics')
  t.equal(r.readyStatus, 200, '/health/ready')
  t.equal(r.recommend.status, 200, 'GET /recommend/1')
  t.equal(r.recommend.userId, 1, 'the answer is for user 1')
  t.equal(r.recommend.xCache, 'MISS', 'first answer computed (X-Cache: MISS)')
  t.equal(r.recommendAgain.xCache, 'HIT-L1', 'second answer from the in-process LRU')
  t.equal(r.exit.code, 0, `clean exit after SIGTERM (${r.exit.ms} ms)`)
  t.same(problems(r, 1), [], 'the CI step would pass')
})

t.test('the compose seed command, under Node 24, on an initdb-prepared database; a second run is a no-op', async (t) => {
  const compose = YAML.parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, { command: string[] }> }
  const command = compose.services.seed!.command
  t.same(command.slice(0, 2), ['sh', '-c'], 'the seed command is a shell line')
  t.match(command[2], /^exec node dist\/scripts\/seed\.js /, 'which runs the compiled seeder with node')
  // compose turns $$ into $ before the container's shell sees the line
  const line = command[2]!.replace(/\$\$/g, '$')

  // A database of our own, filled as the mysql image's docker-entrypoint-initdb.d does it.
  const db = `recsvc_test_seed_${process.pid}_${randomBytes(3).toString('hex')}`
  const server = await mysql.createConnection({ uri: services.mysql.serverUrl, multipleStatements: true })
  t.teardown(async () => {
    await server.query(`DROP DATABASE IF EXISTS \`${db}\``)
    await server.end()
  })
  await server.query(`CREATE DATABASE \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
  await server.query(`USE \`${db}\``)
  for (const f of readdirSync(join(REPO_ROOT, 'sql')).filter((n) => /^\d+_.*\.sql$/.test(n)).sort()) {
    await server.query(readFileSync(join(REPO_ROOT, 'sql', f), 'utf8'))
  }
  const url = new URL(services.mysql.serverUrl)
  url.pathname = `/${db}`

  const run = async () => await new Promise<{ code: number | null, out: string }>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', line], {
      cwd: appDir,
      // the Node 24 binary is the `node` the line finds first, as in the image
      env: { ...cleanEnv(), PATH: `${dirname(node.bin)}:${process.env.PATH ?? ''}`, MYSQL_URL: url.toString(), SEED_USERS: '60', SEED_ARGS: '--items 300 --concurrency 1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.once('error', reject)
    child.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })

  const first = await run()
  t.equal(first.code, 0, 'first run seeds')
  if (first.code !== 0) t.comment(first.out)
  const [[counts]] = await server.query(`SELECT (SELECT COUNT(*) FROM users) AS users, (SELECT COUNT(*) FROM items) AS items,
    (SELECT COUNT(*) FROM schema_migrations) AS migrations, (SELECT COUNT(*) FROM item_popularity) AS popularity`) as unknown as [[{ users: number, items: number, migrations: number, popularity: number }]]
  t.equal(Number(counts.users), 60, 'users seeded')
  t.equal(Number(counts.items), 300, 'SEED_ARGS passed on')
  t.equal(Number(counts.migrations), readdirSync(join(REPO_ROOT, 'sql')).filter((n) => /^\d+_.*\.sql$/.test(n)).length, 'migrate() re-applied the initdb schema harmlessly and recorded it')
  t.ok(Number(counts.popularity) > 0, 'global stats computed')

  const second = await run()
  t.equal(second.code, 0, 'second run (a later `docker compose up`) succeeds')
  t.match(second.out, /already has 60 users; nothing to do/)
  const [[again]] = await server.query('SELECT COUNT(*) AS users FROM users') as unknown as [[{ users: number }]]
  t.equal(Number(again.users), 60, 'nothing added')
})
