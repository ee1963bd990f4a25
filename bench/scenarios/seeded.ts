// Shared by the scenarios over a seeded data set: the app on it (its own Redis key prefix, so no
// scenario sees another's cache), a pre-warm that reads every user once (filling L1 and Redis),
// and seeded request generators (the same sequence every run).
import { request } from 'undici'
import { mulberry32 } from '../../scripts/seed/prng.ts'
import { permutation } from '../zipf.ts'
import type { BenchOptions } from '../lib/options.ts'
import type { BenchContext } from './types.ts'

/** The large data set (cold, cold batches, zipf): 1,000,000 users, 100,000 with --quick. */
export const bigDataset = (o: BenchOptions) => o.quick ? 100_000 : 1_000_000

export async function appOnDataset (ctx: BenchContext, o: { name: string, users: number, replicas?: number, env?: Record<string, string> }) {
  const mysqlUrl = await ctx.dataset(o.users)
  const replicas = await ctx.startApp({ replicas: o.replicas ?? ctx.opts.replicas, label: o.name, env: { MYSQL_URL: mysqlUrl, REDIS_KEY_PREFIX: `bench-${o.name}-${process.pid}:`, ...o.env } })
  return { mysqlUrl, replicas, urls: replicas.map((r) => r.url), teardown: async () => { await Promise.all(replicas.map((r) => r.stop())) } }
}

/** Reads users 1..n once on every replica, 32 at a time: their answers are then in each LRU and in Redis. */
export async function prewarm (ctx: BenchContext, urls: string[], users: number): Promise<void> {
  const t = Date.now()
  for (const url of urls) {
    let next = 1
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next <= users) {
        const id = next++
        const res = await request(`${url}/recommend/${id}`, { headersTimeout: 30_000, bodyTimeout: 30_000 })
        await res.body.dump()
      }
    }))
  }
  ctx.log(`pre-warmed ${users} users on ${urls.length} replica(s) in ${((Date.now() - t) / 1000).toFixed(1)} s`)
}

/** Uniform ids 1..n from a seeded PRNG. */
export function uniformIds (n: number, seed = 1): () => number {
  const rnd = mulberry32(seed)
  return () => 1 + Math.floor(rnd() * n)
}

/** Ids 1..n each once, in a seeded random order: every request an id nobody asked for yet. */
export function coldIds (n: number, seed = 2): () => number {
  return permutation(n, seed)
}

export const single = (ids: () => number) => () => `/recommend/${ids()}`
export const batch = (ids: () => number, size: number) => () => `/batch-recommend?user_ids=${Array.from({ length: size }, ids).join(',')}`

