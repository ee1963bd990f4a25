import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.ts'
import { loadConfig, type Config } from '../../src/config.ts'

export const ADMIN_TOKEN = 'test-admin-token-0123456789'

/** Builds the real app against the given servers, with a quiet logger and a Redis key prefix of
 *  its own so instances from different test files never see each other's keys. */
export async function buildTestApp (urls: { redisUrl: string, mysqlUrl: string, prefix: string }, overrides: Partial<Config> = {}): Promise<FastifyInstance> {
  const config = loadConfig({}, {
    MYSQL_URL: urls.mysqlUrl,
    REDIS_URL: urls.redisUrl,
    REDIS_KEY_PREFIX: urls.prefix,
    LOG_LEVEL: 'silent',
    ADMIN_TOKEN,
    SCORER_THREADS: 1,
    MYSQL_POOL_SIZE: 5,
    REPLICA_ID: 'test-replica',
    ...overrides
  })
  const app = await buildApp(config)
  await app.ready()
  return app
}

export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` }
