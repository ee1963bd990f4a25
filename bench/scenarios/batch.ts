// `batch-20`, `batch-100` (warm: 10,000 users cached) and `batch-20-cold`, `batch-100-cold` (every
// id uncached): GET /batch-recommend?user_ids=... Throughput in requests; the ids per second are
// `size` times that. The baseline serves the same batch body.
import type { Scenario } from './types.ts'
import { appOnDataset, batch, bigDataset, coldIds, prewarm, uniformIds } from './seeded.ts'
import { L1_FOR_10K } from './warm-l1.ts'

const USERS = 10_000

function warm (size: number): Scenario {
  return {
    name: `batch-${size}`,
    description: `batches of ${size} ids among ${USERS.toLocaleString('en-US')} cached users`,
    reference: 'baseline',
    async setup (ctx) {
      const app = await appOnDataset(ctx, { name: `batch-${size}`, users: USERS, env: L1_FOR_10K })
      await prewarm(ctx, app.urls, USERS)
      const ids = uniformIds(USERS, 10 + size)
      return { urls: app.urls, metricsUrls: app.urls, paths: batch(ids, size), samplePath: batch(uniformIds(USERS, 99), size)(), referencePaths: () => '/recommend/1', notes: [`${size} ids per request`, 'L1_MAX_BYTES=256 MiB, as warm-l1'], teardown: app.teardown }
    }
  }
}

function coldBatch (size: number): Scenario {
  return {
    name: `batch-${size}-cold`,
    description: `batches of ${size} uncached ids`,
    reference: 'baseline',
    async setup (ctx) {
      const users = bigDataset(ctx.opts)
      const app = await appOnDataset(ctx, { name: `batch-${size}-cold`, users })
      return { urls: app.urls, metricsUrls: app.urls, paths: batch(coldIds(users, 20 + size), size), samplePath: batch(coldIds(users, 90 + size), size)(), referencePaths: () => '/recommend/1', notes: [`${size} ids per request, each id at most once per run (ids repeat only past ${users.toLocaleString('en-US')})`], teardown: app.teardown }
    }
  }
}

export const batch20 = warm(20)
export const batch100 = warm(100)
export const batch20Cold = coldBatch(20)
export const batch100Cold = coldBatch(100)
