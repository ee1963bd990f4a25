// The real nginx binary with a local rendering of nginx/nginx.conf.template, for the tests that
// need nginx's own behaviour (balancing, retries, limits) in front of fake or real replicas.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { renderNginxConfig, type NginxConfigOptions } from '../../tools/nginx-config.ts'
import { findBinary } from '../../tools/servers/binaries.ts'
import { getFreePort } from './services.ts'

export type LocalNginxOptions = Omit<Extract<NginxConfigOptions, { mode: 'local' }>, 'mode' | 'stateDir' | 'port' | 'statusPort'>

export interface RunningNginx { front: string, status: string, statusPort: number, accessLog: string, stop (): Promise<void> }

// nginx runs under a shell that holds a pipe from this process: when the test ends in any way
// (even SIGKILL), the pipe closes and nginx is stopped, so nothing outlives the test.
export const GUARD = '"$@" & pid=$!; read -r _; kill -QUIT "$pid" 2>/dev/null; wait "$pid"'

const running = new Set<ChildProcess>()
process.on('exit', () => { for (const c of running) try { c.kill('SIGKILL') } catch {} })

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function nginxBinary (): string {
  const nginx = findBinary('nginx')
  if (!nginx) throw new Error('nginx not found (Debian: apt-get install nginx-light)')
  return nginx
}

/** Renders the template (one worker, local mode, the access log in `stateDir`) and starts nginx
 *  on free ports; resolves once its status endpoint answers. */
export async function startLocalNginx (stateDir: string, options: LocalNginxOptions): Promise<RunningNginx> {
  const nginx = nginxBinary()
  await mkdir(join(stateDir, 'run'), { recursive: true })
  await mkdir(join(stateDir, 'nginx'), { recursive: true })
  const port = await getFreePort()
  const statusPort = await getFreePort()
  const accessLog = join(stateDir, 'nginx', 'access.log')
  const file = join(stateDir, 'nginx', 'nginx.conf')
  await writeFile(file, renderNginxConfig({ mode: 'local', stateDir, port, statusPort, accessLog, workerProcesses: 1, workerRlimitNofile: 4096, workerConnections: 1024, ...options }))
  const child = spawn('/bin/sh', ['-c', GUARD, 'nginx-guard', nginx, '-e', 'stderr', '-p', `${stateDir}/nginx/`, '-c', file, '-g', 'daemon off;'], { stdio: ['pipe', 'ignore', 'pipe'], cwd: stateDir })
  running.add(child)
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => { running.delete(child); resolve() }))
  const front = `http://127.0.0.1:${port}`
  const status = `http://127.0.0.1:${statusPort}/nginx_status`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`)
    try {
      if ((await fetch(status)).status === 200) break
    } catch {}
    if (i > 100) {
      child.stdin?.end()
      throw new Error(`nginx did not start: ${stderr}`)
    }
    await sleep(50)
  }
  return {
    front,
    status,
    statusPort,
    accessLog,
    async stop () {
      child.stdin?.end()
      await exited
    }
  }
}
