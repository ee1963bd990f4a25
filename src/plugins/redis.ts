import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { Redis, RedisOptions } from 'ioredis'
import { Counter, Histogram, type Registry } from 'prom-client'
import type { Config } from '../config.ts'
import { redactUrl } from '../lib/redact-url.ts'

/** Redis through @fastify/redis (ioredis). Commands time out, fail instead of queueing while the
 *  connection is down, and reconnect in the background; auto-pipelining batches concurrent commands
 *  into one write. Every command's latency and failures are measured by command name. */
export default fp(async function redisPlugin (app, opts: { config: Config }) {
  const c = opts.config
  try {
    await app.register(fastifyRedis, {
      url: c.REDIS_URL,
      closeClient: true,
      ...redisClientOptions(c)
    })
  } catch (err) {
    throw new Error(`Redis at ${redactUrl(c.REDIS_URL)} is not reachable: ${(err as Error).message}`, { cause: err })
  }
  measureCommands(app.redis, app.recMetrics.registry)
}, { name: 'redis', dependencies: ['metrics'] })

interface TimedCommand { name: string, args: unknown[], promise: Promise<unknown>, recsvcTimed?: true }

/** Times every command from the moment it is handed to the client (pipelined ones included) to its
 *  reply. Scripts run as EVALSHA: they are named after the custom command that defined them, so the
 *  label set stays the small set of commands this service sends. */
function measureCommands (redis: Redis, registry: Registry): void {
  const seconds = new Histogram({
    name: 'recsvc_redis_command_duration_seconds',
    help: 'Redis command latency, by command (scripts by their name)',
    labelNames: ['op'],
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry]
  })
  const errors = new Counter({
    name: 'recsvc_redis_command_errors_total',
    help: 'Redis commands that failed or timed out, by command',
    labelNames: ['op'],
    registers: [registry]
  })
  const scripts = (redis as unknown as { scriptsSet?: Record<string, { sha: string }> })
  const shaNames = new Map<string, string>()
  const opOf = (cmd: TimedCommand): string => {
    if (cmd.name !== 'evalsha' && cmd.name !== 'eval') return cmd.name
    const sha = String(cmd.args[0])
    let name = shaNames.get(sha)
    if (name === undefined) {
      for (const [n, s] of Object.entries(scripts.scriptsSet ?? {})) shaNames.set(s.sha, n)
      name = shaNames.get(sha) ?? 'script'
    }
    return name
  }
  const send = redis.sendCommand.bind(redis) as (cmd: TimedCommand, ...rest: unknown[]) => Promise<unknown>
  ;(redis as unknown as { sendCommand: typeof send }).sendCommand = (cmd, ...rest) => {
    // A command can pass through here more than once (offline queue, resend after reconnect).
    if (cmd.recsvcTimed !== true) {
      cmd.recsvcTimed = true
      const start = performance.now()
      cmd.promise.then(
        () => { seconds.observe({ op: opOf(cmd) }, (performance.now() - start) / 1000) },
        () => { errors.inc({ op: opOf(cmd) }) }
      )
    }
    return send(cmd, ...rest)
  }
}

/** The client's options: every command bounded in time, no queue while disconnected. Exported for
 *  the cache-layer benchmark, which builds the same client. */
export function redisClientOptions (c: Config): RedisOptions {
  return {
    enableAutoPipelining: true,
    commandTimeout: c.REDIS_COMMAND_TIMEOUT_MS,
    connectTimeout: c.REDIS_CONNECT_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    lazyConnect: false,
    retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000)
  }
}
