// Processes started by `npm run bench` (the app replicas, the baseline, the store ceiling): each a
// `node <dist script>` (the app, as a user runs it) or `node --import tsx <script>` (bench servers) child run through tools/servers/supervisor.ts, so none outlives the
// bench (its watchdog kills the child if the bench dies, even by SIGKILL), output appended to a log
// file, ready once a probe path answers. `cleanup()` stops everything still running (Ctrl-C too).
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, releasePort } from '../../tools/servers/ports.ts'
import { supervise, sleep, tailOf, type Supervised } from '../../tools/servers/supervisor.ts'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface NodeServer {
  name: string
  port: number
  url: string
  pid: number
  logFile: string
  stop(): Promise<void>
}

const running = new Set<NodeServer>()

export interface StartOptions {
  name: string
  /** a script relative to the repo root: `.js` runs as `node <script>`, `.ts` as `node --import tsx <script>` */
  script: string
  /** extra node flags (e.g. --cpu-prof) */
  nodeArgs?: string[]
  env: NodeJS.ProcessEnv
  logFile: string
  /** a path answering any HTTP status once the server listens; default /health/live */
  probePath?: string
  timeoutMs?: number
}

export async function startNodeServer (o: StartOptions): Promise<NodeServer> {
  const port = await freePort()
  const proc: Supervised = supervise(process.execPath, [...(o.nodeArgs ?? []), ...(o.script.endsWith('.ts') ? ['--import', 'tsx'] : []), o.script], {
    cwd: ROOT,
    env: { ...process.env, ...o.env, PORT: String(port) },
    output: { file: o.logFile },
    orphanSignal: 'SIGKILL',
    graceMs: 2000
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + (o.timeoutMs ?? 60_000)
  let ready = false
  while (Date.now() < deadline && !proc.exited) {
    try {
      const res = await fetch(url + (o.probePath ?? '/health/live'), { signal: AbortSignal.timeout(2000) })
      await res.arrayBuffer()
      ready = true
      break
    } catch { await sleep(100) }
  }
  if (!ready) {
    await proc.terminate('SIGKILL', 2000).catch(() => {})
    releasePort(port)
    throw new Error(`${o.name} (${o.script}) ${proc.exited ? 'exited' : 'did not answer'} before it was ready${tailOf(o.logFile)}`)
  }
  let stopping: Promise<void> | undefined
  const server: NodeServer = {
    name: o.name,
    port,
    url,
    pid: proc.pid,
    logFile: o.logFile,
    stop () {
      stopping ??= (async () => {
        running.delete(server)
        await proc.terminate('SIGTERM', 15_000)
        releasePort(port)
      })()
      return stopping
    }
  }
  running.add(server)
  return server
}

/** Stops every server started here and still running. */
export async function stopAll (): Promise<void> {
  await Promise.allSettled([...running].map((s) => s.stop()))
}

function newestMtime (dir: string): number {
  let newest = 0
  if (!existsSync(dir)) return 0
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !/\.(ts|js|json)$/.test(e.name)) continue
    newest = Math.max(newest, statSync(join(e.parentPath, e.name)).mtimeMs)
  }
  return newest
}

export const APP_ENTRY = 'dist/src/server.js'

/** The app runs from dist/ (what `npm start` and the image run): builds it first when it is missing
 *  or older than src/, workers/ or scripts/, so the bench never measures a stale build. */
export function ensureBuilt (log: (m: string) => void): void {
  const src = Math.max(...['src', 'workers', 'scripts', 'tsconfig.json', 'tsconfig.build.json', 'package.json'].map((d) => {
    const p = join(ROOT, d)
    return existsSync(p) && statSync(p).isFile() ? statSync(p).mtimeMs : newestMtime(p)
  }))
  const dist = existsSync(join(ROOT, APP_ENTRY)) ? newestMtime(join(ROOT, 'dist')) : 0
  if (dist >= src) return
  log(dist === 0 ? 'dist/ missing: npm run build' : 'src/ is newer than dist/: npm run build')
  const b = spawnSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 })
  if (b.status !== 0) throw new Error('npm run build failed')
}
