// Node 24 runtime smoke test: the Docker image runs Node 24 while development machines run Node 20,
// so this runs the *compiled* server (tsc output, as in the image) under a real Node 24 binary against
// real Redis and MySQL/MariaDB, and checks /health/ready and GET /recommend/:id.
//
//   npm run node24-smoke -- [--app-dir DIR] [--no-build] [--user-id N] [--keep]
//
// The Node 24 binary comes from the `node@24` devDependency (its preinstall fetches the platform
// package `node-<os>-<arch>` from the npm registry and links node_modules/node/bin/node), or from
// $NODE24_BIN. Without --app-dir the project is compiled (tsconfig.build.json) into a private
// directory under dist/ laid out like the image's /app (dist/, sql/, package.json), so a concurrent
// `npm run build` elsewhere never races with it. --app-dir DIR runs an existing layout instead
// (DIR/dist/src/server.js, DIR/sql; node_modules found from DIR upwards).
// Redis and the database come from test/helpers/services.ts (REDIS_URL / MYSQL_URL, or own servers),
// filled with the small test fixture. Exit code 0 when every check passed.

import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process'
import { existsSync, accessSync, constants as fsConstants } from 'node:fs'
import { copyFile, mkdir, rm, symlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import { isMain } from '../scripts/lib/is-main.ts'
import { loadFixture } from './fixture.ts'
import { freePort } from './servers/ports.ts'
import { startServices } from './servers/throwaway.ts'

const execFileP = promisify(execFile)

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url))
export const REQUIRED_MAJOR = 24

export interface Node24 { bin: string, version: string }

/** Where the on-demand install puts Node 24: kept out of the project's own node_modules, so npm
 *  scripts (tests included) keep running on the machine's Node and only this check uses 24. */
export const NODE24_CACHE = join(REPO_ROOT, '.cache', 'node24')

/** The Node 24 binary: $NODE24_BIN, else one installed under .cache/node24 from the npm registry
 *  (`node@24` ships the binary through its platform package), installing it there on first use.
 *  Throws, saying why, when there is none or it is not Node 24. */
export function findNode24 (env: NodeJS.ProcessEnv = process.env): Node24 {
  const cached = join(NODE24_CACHE, 'node_modules', 'node', 'bin', 'node')
  const problems: string[] = []
  const tryBin = (bin: string): Node24 | undefined => {
    try {
      accessSync(bin, fsConstants.X_OK)
    } catch {
      problems.push(`${bin}: missing or not executable`)
      return undefined
    }
    let version: string
    try {
      version = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000, env: cleanEnv(env) }).trim()
    } catch (err) {
      problems.push(`${bin}: --version failed: ${(err as Error).message}`)
      return undefined
    }
    if (!version.startsWith(`v${REQUIRED_MAJOR}.`)) {
      problems.push(`${bin}: is ${version}, not Node ${REQUIRED_MAJOR}`)
      return undefined
    }
    return { bin, version }
  }
  const found = (env.NODE24_BIN ? tryBin(env.NODE24_BIN) : undefined) ?? tryBin(cached)
  if (found) return found
  try {
    execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', NODE24_CACHE, `node@${REQUIRED_MAJOR}`], {
      stdio: ['ignore', 'ignore', 'pipe'], timeout: 180_000, env: cleanEnv(env)
    })
  } catch (err) {
    problems.push(`npm install node@${REQUIRED_MAJOR} into ${NODE24_CACHE} failed: ${(err as Error).message}`)
  }
  const installed = tryBin(cached)
  if (installed) return installed
  throw new Error(`no Node ${REQUIRED_MAJOR} binary found:\n  ${problems.join('\n  ')}\n` +
    `Set NODE24_BIN, or check that \`npm install --prefix ${NODE24_CACHE} node@${REQUIRED_MAJOR}\` works ` +
    `(its install script fetches node-${process.platform}-${process.arch} from the npm registry).`)
}

/** The environment a child server gets: no test-runner loader hooks or TAP variables, none of the
 *  parent's service settings (the caller passes its own). */
export function cleanEnv (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const drop = /^(NODE_OPTIONS|NODE_PATH|TAP|_TAPJS|TS_NODE|TSX|npm_|MYSQL_|REDIS_|ADMIN_TOKEN$|PORT$|HOST$|REPLICA_ID$|TRUST_PROXY$)/
  return Object.fromEntries(Object.entries(env).filter(([k]) => !drop.test(k)))
}

/** Compiles the project into `appDir/dist` with tsconfig.build.json (the same compilation as
 *  `npm run build` and the Dockerfile's build stage) and lays `appDir` out like the image's /app:
 *  package.json (for "type": "module") and sql/. Returns the tsc output (type errors do not stop
 *  the emit; a missing server.js afterwards does throw). */
export async function buildAppDir (appDir: string): Promise<string> {
  await rm(appDir, { recursive: true, force: true })
  await mkdir(appDir, { recursive: true })
  let out = ''
  try {
    // Not execFileSync: the caller's event loop keeps running (the tests load their fixture over
    // MySQL meanwhile, and a blocked loop times their connects out).
    out = (await execFileP(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO_ROOT, 'tsconfig.build.json'), '--outDir', join(appDir, 'dist')], {
      cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000, env: cleanEnv(), maxBuffer: 16 * 1024 * 1024
    })).stdout
  } catch (err) {
    out = String((err as { stdout?: string }).stdout ?? (err as Error).message)
  }
  if (!existsSync(join(appDir, 'dist', 'src', 'server.js'))) throw new Error(`tsc produced no dist/src/server.js in ${appDir}:\n${out}`)
  await copyFile(join(REPO_ROOT, 'package.json'), join(appDir, 'package.json'))
  await symlink(join(REPO_ROOT, 'sql'), join(appDir, 'sql'), 'dir')
  return out
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface SmokeOptions {
  node: Node24
  appDir: string
  mysqlUrl: string
  redisUrl: string
  userId?: number
  /** start-up and every wait; default 20 s */
  timeoutMs?: number
  /** health-check commands (argv; a leading `node` runs the Node 24 binary) run while the server is
   *  up, with PORT set to its port; their exit codes are returned */
  healthChecks?: Record<string, string[]>
  log?: (line: string) => void
}

export interface SmokeResult {
  nodeVersion: string
  /** process.version the server reported in /metrics (nodejs_version_info), when present */
  serverNodeVersion?: string
  readyStatus: number
  readyBody: unknown
  recommend: { status: number, xCache: string | null, servedBy: string | null, userId?: number }
  /** the same request again: served from the in-process LRU */
  recommendAgain: { status: number, xCache: string | null }
  /** exit code of each health-check command while the server was up */
  healthChecks: Record<string, number | null>
  startMs: number
  /** exit after SIGTERM: code and signal, and how long it took */
  exit: { code: number | null, signal: string | null, ms: number }
  output: string
}

/** Runs appDir/dist/src/server.js under the Node 24 binary and checks it; always stops it again. */
export async function smoke (o: SmokeOptions): Promise<SmokeResult> {
  const timeoutMs = o.timeoutMs ?? 20_000
  const log = o.log ?? (() => {})
  const userId = o.userId ?? 1
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const env = {
    ...cleanEnv(),
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    MYSQL_URL: o.mysqlUrl,
    REDIS_URL: o.redisUrl,
    REDIS_KEY_PREFIX: `node24smoke${process.pid}:`,
    REPLICA_ID: 'node24-smoke',
    LOG_LEVEL: 'warn',
    SCORER_THREADS: '1',
    MYSQL_POOL_SIZE: '4',
    SHUTDOWN_GRACE_MS: '5000'
  }
  let output = ''
  const started = Date.now()
  log(`starting ${o.node.bin} (${o.node.version}) dist/src/server.js in ${o.appDir} on port ${port}`)
  const child: ChildProcess = spawn(o.node.bin, ['--enable-source-maps', 'dist/src/server.js'], { cwd: o.appDir, env, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  let exited: { code: number | null, signal: string | null } | undefined
  const exitP = new Promise<{ code: number | null, signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => { exited = { code, signal }; resolve(exited) })
    child.once('error', (err) => { output += `spawn error: ${err.message}\n`; exited = { code: -1, signal: null }; resolve(exited) })
  })
  const fail = (msg: string): never => { throw new Error(`${msg}\n--- server output ---\n${output.trimEnd()}\n---`) }
  const get = async (path: string) => await fetch(base + path, { signal: AbortSignal.timeout(5000) })

  try {
    // 1. readiness
    let ready: Response | undefined
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (exited) fail(`server exited before it was ready (code ${exited.code}, signal ${exited.signal})`)
      try {
        ready = await get('/health/ready')
        if (ready.status === 200) break
      } catch {}
      if (Date.now() > deadline) fail(`/health/ready was not 200 within ${timeoutMs} ms (last: ${ready?.status ?? 'no answer'})`)
      await sleep(100)
    }
    const startMs = Date.now() - started
    const readyBody: unknown = await ready.json()
    log(`ready after ${startMs} ms: ${JSON.stringify(readyBody)}`)

    // 2. one recommendation, then the same again
    const r1 = await get(`/recommend/${userId}`)
    const body1 = await r1.json() as { user_id?: number }
    log(`GET /recommend/${userId}: ${r1.status} x-cache=${r1.headers.get('x-cache')}`)
    const r2 = await get(`/recommend/${userId}`)
    await r2.arrayBuffer()

    // 3. which Node the server says it runs (prom-client default metrics)
    let serverNodeVersion: string | undefined
    try {
      const m = await (await get('/metrics')).text()
      serverNodeVersion = /nodejs_version_info\{[^}]*version="(v[^"]+)"/.exec(m)?.[1]
    } catch {}

    // 4. the image's and compose's health-check commands, as Docker would run them
    const healthChecks: Record<string, number | null> = {}
    for (const [name, argv] of Object.entries(o.healthChecks ?? {})) {
      const [cmd = '', ...args] = argv
      healthChecks[name] = await runCommand(cmd === 'node' ? o.node.bin : cmd, args, { ...cleanEnv(), PORT: String(port) }, o.appDir, 10_000)
    }

    // 5. graceful stop
    const t0 = Date.now()
    child.kill('SIGTERM')
    const stopDeadline = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs).unref())
    const ex = await Promise.race([exitP, stopDeadline])
    if (!ex) fail(`server did not exit within ${timeoutMs} ms of SIGTERM`)
    return {
      nodeVersion: o.node.version,
      serverNodeVersion,
      readyStatus: ready.status,
      readyBody,
      recommend: { status: r1.status, xCache: r1.headers.get('x-cache'), servedBy: r1.headers.get('x-served-by'), userId: body1.user_id },
      recommendAgain: { status: r2.status, xCache: r2.headers.get('x-cache') },
      healthChecks,
      startMs,
      exit: { code: ex!.code, signal: ex!.signal, ms: Date.now() - t0 },
      output
    }
  } finally {
    if (!exited) {
      child.kill('SIGKILL')
      await exitP
    }
  }
}

/** Runs a command to completion (SIGKILL after timeoutMs); its exit code, null when killed. */
export async function runCommand (bin: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, timeoutMs: number): Promise<number | null> {
  return await new Promise((resolve) => {
    const child = spawn(bin, args, { cwd, env, stdio: 'ignore' })
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.once('error', () => { clearTimeout(timer); resolve(-1) })
    child.once('exit', (code) => { clearTimeout(timer); resolve(code) })
  })
}

/** The checks the CI step asserts; an empty list means the smoke test passed. */
export function problems (r: SmokeResult, userId = 1): string[] {
  const p: string[] = []
  if (!r.nodeVersion.startsWith(`v${REQUIRED_MAJOR}.`)) p.push(`binary is ${r.nodeVersion}`)
  if (r.serverNodeVersion !== undefined && r.serverNodeVersion !== r.nodeVersion) p.push(`server reported ${r.serverNodeVersion}`)
  if (r.readyStatus !== 200) p.push(`/health/ready answered ${r.readyStatus}`)
  if (r.recommend.status !== 200) p.push(`GET /recommend/${userId} answered ${r.recommend.status}`)
  if (r.recommend.userId !== userId) p.push(`GET /recommend/${userId} returned user_id ${String(r.recommend.userId)}`)
  if (r.recommend.xCache === null || !/^(MISS|HIT-L1|HIT-L2|STALE)$/.test(r.recommend.xCache)) p.push(`X-Cache was ${String(r.recommend.xCache)}`)
  if (r.recommendAgain.status !== 200 || r.recommendAgain.xCache !== 'HIT-L1') p.push(`second GET answered ${r.recommendAgain.status} X-Cache ${String(r.recommendAgain.xCache)} (expected 200 HIT-L1)`)
  for (const [name, code] of Object.entries(r.healthChecks)) if (code !== 0) p.push(`health check ${name} exited ${code}`)
  if (r.exit.code !== 0) p.push(`exit after SIGTERM: code ${r.exit.code}, signal ${r.exit.signal}`)
  return p
}

// ---------------------------------------------------------------------------------------------
// CLI

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      'app-dir': { type: 'string' },
      'no-build': { type: 'boolean' },
      'user-id': { type: 'string' },
      keep: { type: 'boolean' }
    }
  })
  const log = (line: string) => process.stderr.write(`node24-smoke: ${line}\n`)
  const node = findNode24()
  log(`Node binary ${node.bin}: ${node.version}`)
  const userId = values['user-id'] ? Number(values['user-id']) : 1

  let appDir = values['app-dir'] ? resolve(values['app-dir']) : join(REPO_ROOT, 'dist', 'node24-smoke')
  const own = values['app-dir'] === undefined
  if (own && values['no-build'] === true) appDir = REPO_ROOT // use `npm run build` output as it is
  else if (own) {
    const t = Date.now()
    const out = await buildAppDir(appDir)
    log(`compiled into ${appDir} in ${Date.now() - t} ms${out.trim() ? ` (tsc reported:\n${out.trim()})` : ''}`)
  }
  if (!existsSync(join(appDir, 'dist', 'src', 'server.js'))) throw new Error(`${join(appDir, 'dist', 'src', 'server.js')} not found; run npm run build`)

  // Real servers (or REDIS_URL / MYSQL_URL) from the toolkit, and the tests' small fixture.
  const services = await startServices()
  try {
    await loadFixture(services.mysql.url)
    const r = await smoke({ node, appDir, mysqlUrl: services.mysql.url, redisUrl: services.redis.url, userId, log })
    const p = problems(r, userId)
    console.log(JSON.stringify({ ok: p.length === 0, problems: p, ...r, output: undefined }, null, 2))
    if (p.length) log(`FAILED:\n  ${p.join('\n  ')}\n--- server output ---\n${r.output}`)
    else log(`OK: compiled server on ${r.nodeVersion}: /health/ready 200, GET /recommend/${userId} ${r.recommend.status} X-Cache ${r.recommend.xCache}, then ${r.recommendAgain.xCache}`)
    return p.length ? 1 : 0
  } finally {
    await services.stop()
    if (own && values['no-build'] !== true && values.keep !== true) await rm(appDir, { recursive: true, force: true })
  }
}

if (isMain(import.meta.url)) {
  main().then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`node24-smoke: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
