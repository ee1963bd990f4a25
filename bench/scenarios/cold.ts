// `cold`: every request a user nobody asked for yet (a seeded permutation of 1,000,000 users;
// 100,000 with --quick): each answer a MISS, MySQL and scoring. Compared with the store ceiling, a bare
// route running the same SQL on the same data without scoring or caching.
// `cold-10k`: the same on 10,000 users, a fixed number of requests per run (1,000 to warm up, then
// 3,000 per run: every id still at most once in 3 runs), so its p50 can be set against `cold`'s
// (the data-size target: 1,000,000 users within 1.5 × of 10,000).
import type { BenchOptions } from '../lib/options.ts'
import type { Scenario } from './types.ts'
import { appOnDataset, bigDataset, coldIds, single } from './seeded.ts'

interface ColdShape {
  name: string
  description: string
  users: (o: BenchOptions) => number
  /** seeds of the id permutations: the app's and the ceiling's (MySQL's buffer pool is shared) */
  seeds: [number, number]
  amount?: { run: number, warmup: number }
  note: (users: number) => string
}

function coldScenario (s: ColdShape): Scenario {
  return {
    name: s.name,
    description: s.description,
    reference: 'store-ceiling',
    async setup (ctx) {
      const users = s.users(ctx.opts)
      const app = await appOnDataset(ctx, { name: s.name, users })
      return {
        urls: app.urls,
        metricsUrls: app.urls,
        paths: single(coldIds(users, s.seeds[0])),
        // The ceiling's reads must be cold too (its own order: MySQL's buffer pool is shared).
        referencePaths: single(coldIds(users, s.seeds[1])),
        referenceMysqlUrl: app.mysqlUrl,
        samplePath: `/recommend/${users}`,
        amount: s.amount?.run,
        warmupAmount: s.amount?.warmup,
        notes: [s.note(users)],
        teardown: app.teardown
      }
    }
  }
}

export const cold = coldScenario({
  name: 'cold',
  description: 'every request an uncached user (MISS): MySQL + scoring, against the store ceiling',
  users: bigDataset,
  seeds: [2, 3],
  note: (users) => `${users.toLocaleString('en-US')} seeded users, each requested at most once`
})

export const cold10k = coldScenario({
  name: 'cold-10k',
  description: 'as cold, on 10,000 users (1,000 requests to warm up, 3,000 per run)',
  users: () => 10_000,
  seeds: [4, 5],
  amount: { run: 3000, warmup: 1000 },
  note: () => '10,000 seeded users, each requested at most once in 3 runs; a run is 3,000 requests'
})
