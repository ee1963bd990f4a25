import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import type { Config } from '../config.ts'
import { redactUrl } from '../lib/redact-url.ts'

/** Redis through @fastify/redis (ioredis). Commands time out, fail instead of queueing while the
 *  connection is down, and reconnect in the background; auto-pipelining batches concurrent commands
 *  into one write. */
export default fp(async function redisPlugin (app, opts: { config: Config }) {
  const c = opts.config
  try {
    await app.register(fastifyRedis, {
      url: c.REDIS_URL,
      closeClient: true,
      enableAutoPipelining: true,
      commandTimeout: c.REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: c.REDIS_CONNECT_TIMEOUT_MS,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      lazyConnect: false,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000)
    })
  } catch (err) {
    throw new Error(`Redis at ${redactUrl(c.REDIS_URL)} is not reachable: ${(err as Error).message}`, { cause: err })
  }
}, { name: 'redis' })
