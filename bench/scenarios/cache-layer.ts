// `cache-layer` (issue 12, scenario 9): the tiered cache alone, in the bench process, against
// bentocache configured the same way on the same Redis (bench/cache-layer.ts measures both).
import { measureCacheLayer } from '../cache-layer.ts'
import type { Scenario } from './types.ts'

export const cacheLayer: Scenario = {
  name: 'cache-layer',
  description: 'our tiered cache\'s get (L1 hit, L2 hit, miss with a loader) against bentocache, ops/s in-process',
  async setup () { throw new Error('cache-layer is measured in-process (custom)') },
  async custom (ctx) {
    const { redisUrl } = await ctx.services()
    const runs = ctx.opts.runs
    const seconds = ctx.opts.quick ? 1 : 2
    const r = await measureCacheLayer({ redisUrl, seconds, runs, log: ctx.log, keyPrefix: `bench-cache-layer-${process.pid}:` })
    return {
      title: 'cache layer (ops/s in one process, same Redis)',
      columns: ['case', 'recsvc ops/s', 'bentocache ops/s', 'ratio'],
      rows: r.rows.map((x) => [x.case, x.oursOpsPerSec, x.bentoOpsPerSec, x.ratio]),
      notes: [...r.notes, `${runs} run(s) of ${seconds} s per case and library, medians`],
      data: r
    }
  }
}
