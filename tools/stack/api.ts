// The API replicas: their ports, their environment, starting one and waiting for its
// /health/ready, and killing, starting and restarting one (failure and rolling-restart tests).

import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { compactPino, rel, secs } from './format.ts'
import { answers200 } from './http-probe.ts'
import type { StackOptions } from './options.ts'
import { freePort, portFree } from '../servers/ports.ts'
import type { Proc } from './processes.ts'

/** Replica i's port: basePort + i, or any free ports for basePort 0. Checked before anything is
 *  started or built, so a clash fails early. */
export async function apiPorts (basePort: number, replicas: number): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < replicas; i++) {
    if (basePort === 0) {
      ports.push(await freePort())
    } else {
      const port = basePort + i
      if (!await portFree(port)) throw new StackError(`port ${port} (api-${i + 1}) is in use; pass --api-base-port to use other ports`)
      ports.push(port)
    }
  }
  return ports
}

export interface Replicas {
  apiUrls: string[]
  spawnReplica (i: number): Proc
  waitReady (i: number): Promise<void>
  killReplica (i: number, signal?: NodeJS.Signals): Promise<void>
  startReplica (i: number): Promise<void>
  restartReplica (i: number): Promise<void>
}

/** `apis` is filled in as replicas are spawned (replica i at index i). Throws when the server entry
 *  point (dist/, or src/ with fromSource) is missing. */
export function createReplicas (ctx: StackContext, apis: Proc[], opts: {
  options: StackOptions
  root: string
  runDir: string
  ports: number[]
  replicas: number
  withNginx: boolean
  baseEnv: NodeJS.ProcessEnv
  redisUrl: string
  mysqlUrl: string
  adminToken: string
}): Replicas {
  const { runner, pidFiles, log, waitFor } = ctx
  const { options, root, runDir, ports, replicas, withNginx, baseEnv, redisUrl, mysqlUrl, adminToken } = opts
  const cores = availableParallelism()
  const env: NodeJS.ProcessEnv = {
    ...baseEnv,
    NODE_ENV: baseEnv.NODE_ENV ?? 'production',
    HOST: baseEnv.HOST ?? '127.0.0.1',
    MYSQL_URL: mysqlUrl,
    REDIS_URL: redisUrl,
    ADMIN_TOKEN: adminToken,
    LOG_LEVEL: options.logLevel ?? baseEnv.LOG_LEVEL ?? 'info',
    // N replicas share the cores; the default (cores - 1 threads each) would oversubscribe them.
    SCORER_THREADS: baseEnv.SCORER_THREADS ?? String(Math.max(1, Math.floor(Math.max(1, cores - 1) / replicas))),
    // Behind nginx: X-Forwarded-* are trusted from nginx only. Open-source nginx never polls
    // /health/ready (no active health checks): a replica that stops is routed around passively
    // (a refused connection -> the next replica, max_fails/fail_timeout; app 503s are not retried), so a long drain
    // delay would only slow restarts down; a short one keeps "readiness fails first" observable.
    ...(withNginx
      ? {
          TRUST_PROXY: baseEnv.TRUST_PROXY || '127.0.0.1',
          SHUTDOWN_DRAIN_DELAY_MS: baseEnv.SHUTDOWN_DRAIN_DELAY_MS || String(options.drainDelayMs ?? 500)
        }
      : {})
  }
  // STACK_NODE_ARGS: flags for the replicas' node (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"),
  // which NODE_OPTIONS refuses.
  const nodeArgs = (baseEnv.STACK_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const serverArgs = options.fromSource
    ? [...nodeArgs, '--import', 'tsx', join(root, 'src', 'server.ts')]
    : [...nodeArgs, join(root, 'dist', 'src', 'server.js')]
  const entry = serverArgs[serverArgs.length - 1]!
  if (!existsSync(entry)) throw new StackError(`${rel(entry)} not found; run npm run build`)
  const apiUrls = ports.map((p) => `http://127.0.0.1:${p}`)

  const spawnReplica = (i: number): Proc => {
    const name = `api-${i + 1}`
    const p = runner.spawn(name, 'api', process.execPath, serverArgs, {
      cwd: root,
      env: { ...env, PORT: String(ports[i]), REPLICA_ID: name },
      format: options.rawLogs ? undefined : compactPino
    })
    apis[i] = p
    const pidFile = join(runDir, `${name}.pid`)
    if (!pidFiles.includes(pidFile)) pidFiles.push(pidFile)
    void writeFile(pidFile, `${p.pid}\n`).catch(() => {})
    void p.exit.then(({ code, signal }) => {
      if (p.stopping || runner.stopping) return
      const left = apis.filter((a) => !a.exited).length
      log(`${name} (pid ${p.pid}) exited unexpectedly (${signal ?? `code ${code}`}); ${left} replica(s) still running`)
    })
    return p
  }
  const waitReady = (i: number) => waitFor(`api-${i + 1} /health/ready`, () => answers200(`${apiUrls[i]}/health/ready`), options.readyTimeoutMs ?? 60_000, apis[i])

  const replica = (i: number): Proc => {
    const p = Number.isInteger(i) ? apis[i] : undefined
    if (!p) throw new StackError(`no replica ${i}; replicas are 0..${replicas - 1}`)
    return p
  }
  const killReplica = async (i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = replica(i)
    if (p.exited) return
    log(`${p.name} (pid ${p.pid}): ${signal}`)
    await runner.terminate(p, signal, options.apiStopTimeoutMs ?? 15_000)
  }
  const startReplica = async (i: number): Promise<void> => {
    const old = replica(i)
    if (!old.exited) throw new StackError(`${old.name} is still running (pid ${old.pid})`)
    const tr = Date.now()
    const p = spawnReplica(i)
    await waitReady(i)
    log(`${p.name} (pid ${p.pid}) ready in ${secs(Date.now() - tr)}`)
  }
  const restartReplica = async (i: number): Promise<void> => {
    await killReplica(i, 'SIGTERM')
    await startReplica(i)
  }

  return { apiUrls, spawnReplica, waitReady, killReplica, startReplica, restartReplica }
}
