// Redis: reuse a running one (REDIS_URL, or the system's when redis-server is not installed), or
// start our own under <state dir>/redis, and stop it.

import { mkdir } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import type { StackContext } from './context.ts'
import { StackError } from './errors.ts'
import { DEFAULTS } from './options.ts'
import { redactUrl, rel, secs } from './format.ts'
import { pickPort } from './ports.ts'
import { sleep, type Proc, type Runner } from './processes.ts'

/** The Redis the stack started, once it has; read by stopRedis. */
export interface RedisState { proc?: Proc, port: number }

/** One inline Redis command over a plain TCP connection; resolves with the first reply line. */
function redisCommand (port: number, args: string[], timeoutMs = 1000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host })
    let buf = ''
    const done = (err: Error | null, value?: string) => {
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value ?? '')
    }
    const timer = setTimeout(() => done(new Error('redis command timed out')), timeoutMs)
    sock.once('error', (err) => done(err))
    sock.on('data', (d) => {
      buf += d.toString()
      const i = buf.indexOf('\r\n')
      if (i >= 0) done(null, buf.slice(0, i))
    })
    // SHUTDOWN closes the connection without a reply.
    sock.once('close', () => done(null, buf))
    sock.on('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`))
  })
}

export async function redisAnswers (url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1500, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  r.on('error', () => {})
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}

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
    // A cache: nothing is persisted, so a restart starts empty and SHUTDOWN NOSAVE is instant.
    const proc = state.proc = runner.spawn('redis', 'redis', opts.redisBin!, [
      '--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir,
      '--pidfile', join(dir, 'redis.pid'), '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'warning', '--maxmemory', '512mb', '--maxmemory-policy', 'allkeys-lru'
    ], { cwd: dir })
    pidFiles.push(join(dir, 'redis.pid'))
    try {
      await waitFor(`Redis on port ${redisPort}`, async () => (await redisCommand(redisPort, ['PING'], 500).catch(() => '')) === '+PONG', 15_000, proc)
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
