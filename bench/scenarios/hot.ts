// `hot`: one user, read over and over: after the warm-up every answer comes from the in-process
// LRU (HIT-L1). What the cheapest answer costs next to a bare Fastify route sending the same bytes.
import type { Scenario } from './types.ts'

const USER = 7 // in the fixture (tools/fixture.ts: users 1..120 have events)

export const hot: Scenario = {
  name: 'hot',
  description: `one user (/recommend/${USER}), every answer HIT-L1 after the warm-up`,
  reference: 'baseline',
  async setup (ctx) {
    const path = `/recommend/${USER}`
    if (ctx.opts.url !== undefined) {
      return { urls: [ctx.opts.url], metricsUrls: [ctx.opts.url], paths: () => path, samplePath: path, teardown: async () => {} }
    }
    const replicas = await ctx.startApp({ replicas: ctx.opts.replicas, label: 'hot' })
    return {
      urls: replicas.map((r) => r.url),
      metricsUrls: replicas.map((r) => r.url),
      paths: () => path,
      samplePath: path,
      teardown: async () => { await Promise.all(replicas.map((r) => r.stop())) }
    }
  }
}

export default hot
