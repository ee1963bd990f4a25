// `cold`: every request a user nobody asked for yet (a seeded permutation of 100,000 users; 30,000
// with --quick): each answer a MISS, MySQL and scoring. Compared with the store ceiling, a bare
// route running the same SQL on the same data without scoring or caching.
import type { Scenario } from './types.ts'
import { appOnDataset, coldIds, single } from './seeded.ts'

export const cold: Scenario = {
  name: 'cold',
  description: 'every request an uncached user (MISS): MySQL + scoring, against the store ceiling',
  reference: 'store-ceiling',
  async setup (ctx) {
    const users = ctx.opts.quick ? 30_000 : 100_000
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
