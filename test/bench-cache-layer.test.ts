// bench/cache-layer.ts (issue 12, scenario 9) runs end to end against a real Redis: three cases,
// each measured for both implementations. Only the shape of the result is checked, never a speed.
import t from 'tap'
import { Redis } from 'ioredis'
import { measureCacheLayer } from '../bench/cache-layer.ts'
import { startRedis, uniquePrefix } from './helpers/services.ts'

t.test('measureCacheLayer reports ours and bentocache ops/s for L1 hit, L2 hit and miss + loader, and leaves no keys', { timeout: 90_000 }, async (t) => {
  const redis = await startRedis({ externalUrl: process.env.REDIS_URL })
  t.teardown(() => redis.stop())
  const keyPrefix = uniquePrefix('bench-cache-layer-')
  const logged: string[] = []

  const result = await measureCacheLayer({ redisUrl: redis.url, seconds: 1, log: (m) => logged.push(m), keyPrefix })

  t.same(result.rows.map((r) => r.case), ['L1 hit', 'L2 hit', 'miss + loader'])
  for (const row of result.rows) {
    t.ok(row.oursOpsPerSec > 0, `${row.case}: ours ops/s > 0`)
    t.ok(row.bentoOpsPerSec > 0, `${row.case}: bentocache ops/s > 0`)
    t.ok(Number.isFinite(row.ratio) && row.ratio > 0, `${row.case}: ratio is finite`)
  }
  t.ok(result.notes.length > 0, 'says what was measured')
  t.match(result.config, { keyPrefix, bento: /bentocache/, ours: /Recommender\.get/ })
  t.ok(logged.some((m) => m.includes('L2 hit, ours')), 'progress is logged')

  const client = new Redis(redis.url, { commandTimeout: 5000, maxRetriesPerRequest: 1 })
  t.teardown(() => client.disconnect())
  const left: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000)
    left.push(...keys)
    cursor = next
  } while (cursor !== '0')
  t.same(left, [], 'every key it wrote is deleted')
})
