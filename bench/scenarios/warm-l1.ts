// `warm-l1`: 10,000 users all in the LRU, read uniformly: every answer HIT-L1, spread over many
// keys (the LRU's own cost, not one hot entry's).
import type { Scenario } from './types.ts'
import { appOnDataset, prewarm, single, uniformIds } from './seeded.ts'

const USERS = 10_000
/** An answer is cached with up to 100 items (every `limit` is cut from it), about 14 KB: the
 *  default L1_MAX_BYTES (64 MiB) holds some 4,650 of them, so 10,000 need a larger LRU. */
export const L1_FOR_10K = { L1_MAX_BYTES: String(256 * 1024 * 1024) }

export const warmL1: Scenario = {
  name: 'warm-l1',
  description: `${USERS.toLocaleString('en-US')} cached users, uniform; every answer HIT-L1`,
  reference: 'baseline',
  async setup (ctx) {
    const app = await appOnDataset(ctx, { name: 'warm-l1', users: USERS, env: L1_FOR_10K })
    await prewarm(ctx, app.urls, USERS)
    return { urls: app.urls, metricsUrls: app.urls, paths: single(uniformIds(USERS)), samplePath: '/recommend/1', notes: ['L1_MAX_BYTES=256 MiB: the default 64 MiB holds about 4,650 answers (14 KB each, up to 100 items)'], teardown: app.teardown }
  }
}
