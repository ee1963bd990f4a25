// nginx in front of a scenario's replicas (or of the baseline servers, so the reference takes the
// same hop): the project's config (nginx/nginx.conf.template, local mode, as `npm run stack`
// renders it) with the per-IP limits off (one load generator is one client) and the balancing
// the scenario asks for; its JSON access log on, as a user runs it. Supervised like every other
// process of the bench (tools/servers/supervisor.ts), so it never outlives the run.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CAPACITY_DEFAULTS, renderNginxConfig, type Balance } from '../../tools/nginx-config.ts'
import { findBinary } from '../../tools/servers/binaries.ts'
import { freePort, releasePort } from '../../tools/servers/ports.ts'
import { runToCompletion, sleep, supervise, tailOf } from '../../tools/servers/supervisor.ts'

export interface BenchNginx { url: string, stop: () => Promise<void> }

export function nginxBinary (): string {
  const bin = findBinary('nginx')
  if (bin === undefined) throw new Error('nginx is not installed (apt-get install nginx-light): the zipf scenarios run through it')
  return bin
}

export async function startNginx (o: { name: string, upstreams: number[], balance: Balance, dir: string }): Promise<BenchNginx> {
  const bin = nginxBinary()
  mkdirSync(join(o.dir, 'nginx'), { recursive: true })
  mkdirSync(join(o.dir, 'run'), { recursive: true })
  const port = await freePort()
  const statusPort = await freePort()
  const conf = join(o.dir, 'nginx', 'nginx.conf')
  writeFileSync(conf, renderNginxConfig({
    mode: 'local',
    upstreams: o.upstreams,
    port,
    statusPort,
    stateDir: o.dir,
    rateLimit: false,
    balance: o.balance,
    workerRlimitNofile: CAPACITY_DEFAULTS.workerRlimitNofile,
    workerConnections: CAPACITY_DEFAULTS.workerConnections
  }))
  const args = ['-e', 'stderr', '-p', `${o.dir}/nginx/`, '-c', conf]
  const logFile = join(o.dir, 'nginx', 'stderr.log')
  await runToCompletion(bin, [...args, '-t', '-q'], { output: { file: logFile }, timeoutMs: 10_000 })
  const proc = supervise(bin, [...args, '-g', 'daemon off;'], { output: { file: logFile }, orphanSignal: 'SIGTERM', graceMs: 5000 })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${statusPort}/nginx_status`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) break
    } catch {}
    if (proc.exited || Date.now() > deadline) {
      await proc.terminate('SIGKILL', 2000).catch(() => {})
      throw new Error(`nginx for ${o.name} did not start${tailOf(logFile)}`)
    }
    await sleep(100)
  }
  let stopping: Promise<void> | undefined
  return {
    url,
    stop () {
      // SIGQUIT: nginx's graceful stop; the load has ended by now
      stopping ??= proc.terminate('SIGQUIT', 10_000).then(() => {}).finally(() => { releasePort(port); releasePort(statusPort) })
      return stopping
    }
  }
}
