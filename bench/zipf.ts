/** Seeded user-id samplers for the load generators: deterministic for a seed, so two runs (or two
 *  checkouts) see the same request sequence.
 *
 *  zipf(n, s, seed)       ids 1..n with P(k) ∝ 1/k^s, by inverse CDF over precomputed cumulative
 *                         weights and a binary search (O(n) set-up, O(log n) per draw)
 *  permutation(n, seed)   ids 1..n in a seeded random order, each once before any repeats: uniform
 *                         ids with no repeat within n draws (cold-cache benchmarks)
 *
 *  The randomness is the seeder's (scripts/seed/prng.ts): one PRNG and one CDF search in the project. */

import { mulberry32, sampleCdf } from '../scripts/seed/prng.ts'

/** Cumulative weights of 1..n under Zipf(s): cdf[k - 1] = Σ_{i<=k} 1/i^s (not normalised). */
export function zipfCdf (n: number, s: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipf: n must be a positive integer, got ${n}`)
  if (!(s >= 0)) throw new RangeError(`zipf: s must be >= 0, got ${s}`)
  const cdf = new Float64Array(n)
  let acc = 0
  for (let i = 0; i < n; i++) cdf[i] = (acc += 1 / Math.pow(i + 1, s))
  return cdf
}

/** Ids 1..n with P(k) ∝ 1/k^s (s = 0 is uniform), by inverse CDF and binary search. */
export function zipf (n: number, s: number, seed: number): () => number {
  const cdf = zipfCdf(n, s)
  const total = cdf[n - 1] as number
  const rnd = mulberry32(seed)
  return () => sampleCdf(cdf, rnd() * total) + 1
}

/** P(id <= k) under Zipf(n, s): the share of draws that fall on the k hottest ids. */
export function zipfHeadShare (n: number, s: number, k: number): number {
  const cdf = zipfCdf(n, s)
  return (cdf[Math.min(n, Math.max(1, k)) - 1] as number) / (cdf[n - 1] as number)
}

export interface Permutation {
  /** The next id; after n draws the same order starts again (`wraps` counts how often). */
  (): number
  readonly drawn: number
  readonly wraps: number
}

/** Ids 1..n shuffled (Fisher-Yates with mulberry32(seed)), drawn in order and cycled. */
export function permutation (n: number, seed: number): Permutation {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`permutation: n must be a positive integer, got ${n}`)
  const ids = new Int32Array(n)
  for (let i = 0; i < n; i++) ids[i] = i + 1
  const rnd = mulberry32(seed)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    const t = ids[i] as number
    ids[i] = ids[j] as number
    ids[j] = t
  }
  let drawn = 0
  const next = (() => ids[drawn++ % n] as number) as Permutation
  Object.defineProperty(next, 'drawn', { get: () => drawn })
  Object.defineProperty(next, 'wraps', { get: () => Math.floor(Math.max(0, drawn - 1) / n) })
  return next
}
