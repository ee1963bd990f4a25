// `cold`: every request a user nobody asked for yet (a seeded permutation of 1,000,000 users;
// 100,000 with --quick): each answer a MISS, MySQL and scoring. Compared with the store ceiling, a bare
// route running the same SQL on the same data without scoring or caching.
import type { Scenario } from './types.ts'
import { appOnDataset, bigDataset, coldIds, single } from './seeded.ts'

export const cold: Scenario = {
  name: 'cold',
  description: 'every request an uncached user (MISS): MySQL + scoring, against the store ceiling',
  reference: 'store-ceiling',
  async setup (ctx) {
    const users = bigDataset(ctx.opts)
    const app = await appOnDataset(ctx, { name: 'cold', users })
    return {
      urls: app.urls,
      metricsUrls: app.urls,
      paths: single(coldIds(users, 2)),
      // The ceiling's reads must be cold too (its own order: MySQL's buffer pool is shared).
      referencePaths: single(coldIds(users, 3)),
      referenceMysqlUrl: app.mysqlUrl,
      samplePath: `/recommend/${users}`,
      notes: [`${users.toLocaleString('en-US')} seeded users, each requested at most once`],
      teardown: app.teardown
    }
  }
}

/** `cold-10k`: the same on 10,000 users, a fixed number of requests per run (1,000 to warm up, then
 *  3,000 per run: every id still at most once in 3 runs), so its p50 can be set against `cold`'s
 *  (the data-size target: 1,000,000 users within 1.5 × of 10,000). */
export const cold10k: Scenario = {
  name: 'cold-10k',
  description: 'as cold, on 10,000 users (1,000 requests to warm up, 3,000 per run)',
  reference: 'store-ceiling',
  async setup (ctx) {
    const users = 10_000
    const app = await appOnDataset(ctx, { name: 'cold-10k', users })
    return {
      urls: app.urls,
      metricsUrls: app.urls,
      paths: single(coldIds(users, 4)),
      referencePaths: single(coldIds(users, 5)),
      referenceMysqlUrl: app.mysqlUrl,
      samplePath: `/recommend/${users}`,
      amount: 3000,
      warmupAmount: 1000,
      notes: ['10,000 seeded users, each requested at most once in 3 runs; a run is 3,000 requests'],
      teardown: app.teardown
    }
  }
}
