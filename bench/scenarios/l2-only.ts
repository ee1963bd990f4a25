// `l2-only`: the same 10,000 users, cached in Redis but with the LRU reduced to one entry: every
// answer HIT-L2 (a Redis round trip and a generation check per request).
import type { Scenario } from './types.ts'
import { appOnDataset, prewarm, single, uniformIds } from './seeded.ts'

const USERS = 10_000

export const l2Only: Scenario = {
  name: 'l2-only',
  description: `${USERS.toLocaleString('en-US')} users cached in Redis, LRU off (L1_MAX_ENTRIES=1); every answer HIT-L2`,
  reference: 'baseline',
  async setup (ctx) {
    const app = await appOnDataset(ctx, { name: 'l2-only', users: USERS, env: { L1_MAX_ENTRIES: '1' } })
    await prewarm(ctx, app.urls, USERS)
    return { urls: app.urls, metricsUrls: app.urls, paths: single(uniformIds(USERS)), samplePath: '/recommend/1', notes: ['L1_MAX_ENTRIES=1: the in-process LRU is effectively off'], teardown: app.teardown }
  }
}
