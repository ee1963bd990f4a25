// nginx in front of the replicas: its ports, its config rendered from the same template as compose
// (tools/nginx-config.ts, local mode), running it, and stopping it first.

import { spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CAPACITY_DEFAULTS, renderNginxConfig, type Balance } from '../nginx-config.ts'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { rel, secs } from './format.ts'
import { answers200 } from './http-probe.ts'
import { freePort, pickPort, portFree } from '../servers/ports.ts'
import type { Proc, Runner } from './processes.ts'

/** nginx's public and stub_status ports, clear of the replicas' `ports`. */
export async function nginxPorts (ports: number[], wanted: number, wantedStatusPort: number | undefined): Promise<{ frontPort: number, statusPort: number }> {
  let frontPort = 0
  let statusPort = 0
  if (wanted === 0) {
    do frontPort = await freePort(); while (ports.includes(frontPort))
  } else {
    if (ports.includes(wanted) || !await portFree(wanted)) throw new StackError(`port ${wanted} (nginx) is in use; pass --port to use another one`)
    frontPort = wanted
  }
  if (wantedStatusPort) {
    statusPort = wantedStatusPort
    if ([...ports, frontPort].includes(statusPort) || !await portFree(statusPort)) throw new StackError(`port ${statusPort} (nginx status) is in use; pass --status-port to use another one`)
  } else {
    statusPort = frontPort < 65535 ? await pickPort(frontPort + 1) : await freePort()
    while ([...ports, frontPort].includes(statusPort)) statusPort = await freePort()
  }
  return { frontPort, statusPort }
}

export interface Nginx {
  proc: Proc
  frontUrl: string
  nginxStatusUrl: string
  nginxConfigFile: string
  nginxAccessLog: string
}

export async function startNginx (ctx: StackContext, opts: { nginxBin: string, runDir: string, ports: number[], frontPort: number, statusPort: number, rateLimit: boolean, balance: Balance }): Promise<Nginx> {
  const { runner, stateDir, pidFiles, log, waitFor } = ctx
  const { nginxBin, runDir, ports, frontPort, statusPort, rateLimit, balance } = opts
  const replicas = ports.length
  const tn = Date.now()
  const dir = join(stateDir, 'nginx')
  await mkdir(dir, { recursive: true })
  const nginxConfigFile = join(dir, 'nginx.conf')
  const nginxAccessLog = join(dir, 'access.log')
  // nginx sets the descriptor limit of its workers (worker_rlimit_nofile); above the hard limit
  // that fails unless privileged, so stay within it here (compose containers allow far more).
  const hard = hardNofileLimit()
  const rlimit = Math.min(CAPACITY_DEFAULTS.workerRlimitNofile, hard)
  await writeFile(nginxConfigFile, renderNginxConfig({
    mode: 'local',
    upstreams: ports,
    port: frontPort,
    statusPort,
    stateDir,
    accessLog: nginxAccessLog,
    rateLimit,
    balance,
    workerRlimitNofile: rlimit,
    workerConnections: Math.min(CAPACITY_DEFAULTS.workerConnections, Math.floor(rlimit / 2))
  }))
  const args = ['-e', 'stderr', '-p', `${dir}/`, '-c', nginxConfigFile]
  await runner.run('nginx-test', nginxBin, [...args, '-t', '-q'], { cwd: dir, quiet: true })
  const proc = runner.spawn('nginx', 'nginx', nginxBin, [...args, '-g', 'daemon off;'], {
    cwd: dir,
    format: (line) => line.replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, '')
  })
  pidFiles.push(join(runDir, 'nginx.pid'))
  void proc.exit.then(({ code, signal }) => {
    if (!proc.stopping && !runner.stopping) log(`nginx (pid ${proc.pid}) exited unexpectedly (${signal ?? `code ${code}`}); the replicas are still reachable directly`)
  })
  const frontUrl = `http://127.0.0.1:${frontPort}`
  const nginxStatusUrl = `http://127.0.0.1:${statusPort}/nginx_status`
  await waitFor(`nginx on port ${frontPort}`, async () => await answers200(nginxStatusUrl) && await answers200(`${frontUrl}/health/ready`), 15_000, proc)
  log(`nginx ready on ${frontUrl} in ${secs(Date.now() - tn)} (pid ${proc.pid}, ${describeBalance(balance)} over ${replicas} replica(s), per-IP limits ${rateLimit ? 'on' : 'OFF'}, config ${rel(nginxConfigFile)}, access log ${rel(nginxAccessLog)})`)
  return { proc, frontUrl, nginxStatusUrl, nginxConfigFile, nginxAccessLog }
}

/** For the log and the banner. */
export function describeBalance (balance: Balance): string {
  return balance === 'hash' ? 'consistent hash of the user id' : 'least_conn'
}

/** SIGQUIT is nginx's graceful shutdown (requests in flight are finished). */
export async function stopNginx (runner: Runner): Promise<void> {
  await Promise.all(runner.procs.filter((p) => p.kind === 'nginx').map((p) => runner.terminate(p, 'SIGQUIT', 10_000)))
}

/** The hard limit on open files of this process (and so of its children), Infinity if unlimited. */
function hardNofileLimit (): number {
  const out = spawnSync('/bin/sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).stdout?.trim() ?? ''
  const n = Number(out)
  return Number.isInteger(n) && n > 0 ? n : Infinity
}
