// Redis: reuse a running one (REDIS_URL, or the system's when redis-server is not installed), or
// start our own under <state dir>/redis, and stop it.

import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { pickPort } from '../servers/ports.ts'
import { pingRedis, redisAnswers, redisArgs, redisCommand } from '../servers/redis.ts'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { DEFAULTS } from './options.ts'
import { redactUrl, rel, secs } from './format.ts'
import { sleep, type Proc, type Runner } from './processes.ts'

/** The Redis the stack started, once it has; read by stopRedis. */
export interface RedisState { proc?: Proc, port: number }

export async function startRedis (ctx: StackContext, state: RedisState, opts: { redisUrl?: string, reuseRedis?: string, redisBin?: string, redisPort?: number }): Promise<string> {
  const { runner, stateDir, pidFiles, log, checkAbort, waitFor } = ctx
  if (opts.redisUrl) {
    if (!await redisAnswers(opts.redisUrl)) throw new StackError(`REDIS_URL=${redactUrl(opts.redisUrl)} does not answer`)
    log(`using Redis at ${redactUrl(opts.redisUrl)} (REDIS_URL; not started by the stack)`)
    return opts.redisUrl
  }
  if (opts.reuseRedis) return opts.reuseRedis
  const dir = join(stateDir, 'redis')
  await mkdir(dir, { recursive: true })
  for (let attempt = 1; ; attempt++) {
    const tr = Date.now()
    state.port = await pickPort(attempt === 1 ? opts.redisPort ?? DEFAULTS.redisPort : 0)
    const redisPort = state.port
    checkAbort()
    // Bounded like production: a full cache evicts least-recently-used keys.
    const args = redisArgs({ port: redisPort, dir, pidFile: join(dir, 'redis.pid'), loglevel: 'warning', maxmemory: '512mb' })
    const proc = state.proc = runner.spawn('redis', 'redis', opts.redisBin!, args, { cwd: dir })
    pidFiles.push(join(dir, 'redis.pid'))
    try {
      await waitFor(`Redis on port ${redisPort}`, () => pingRedis(redisPort, '127.0.0.1', 500), 15_000, proc)
      log(`Redis ready on 127.0.0.1:${redisPort} in ${secs(Date.now() - tr)} (pid ${proc.pid}, state ${rel(dir)})`)
      return `redis://127.0.0.1:${redisPort}`
    } catch (err) {
      if (attempt < 3 && proc.exited && /address already in use/i.test(proc.tail.join('\n'))) {
        log(`port ${redisPort} was taken meanwhile; retrying on another port`)
        continue
      }
      throw err
    }
  }
}

/** SHUTDOWN NOSAVE, then SIGTERM if it has not gone within 3 s. */
export async function stopRedis (runner: Runner, state: RedisState): Promise<void> {
  const redisProc = state.proc
  if (!redisProc || redisProc.exited) return
  redisProc.stopping = true
  await redisCommand(state.port, ['SHUTDOWN', 'NOSAVE']).catch(() => {})
  const gone = await Promise.race([redisProc.exit.then(() => true), sleep(3000).then(() => false)])
  if (!gone) await runner.terminate(redisProc, 'SIGTERM', 5000)
}
