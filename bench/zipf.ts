/** Seeded user-id samplers for the load generators: deterministic for a seed, so two runs (or two
 *  checkouts) see the same request sequence.
 *
 *  prng(seed)             uniform floats in [0, 1) (mulberry32)
 *  zipf(n, s, seed)       ids 1..n with P(k) ∝ 1/k^s, by inverse CDF over precomputed cumulative
 *                         weights and a binary search (O(n) set-up, O(log n) per draw)
 *  permutation(n, seed)   ids 1..n in a seeded random order, each once before any repeats: uniform
 *                         ids with no repeat within n draws (cold-cache benchmarks) */

/** mulberry32: a small, fast 32-bit PRNG with a good spread. */
export function prng (seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6D2B79F5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cumulative weights of 1..n under Zipf(s): cdf[k - 1] = Σ_{i<=k} 1/i^s (not normalised). */
export function zipfCdf (n: number, s: number): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`zipf: n must be a positive integer, got ${n}`)
  if (!(s >= 0)) throw new RangeError(`zipf: s must be >= 0, got ${s}`)
  const cdf = new Float64Array(n)
  let acc = 0
  for (let i = 0; i < n; i++) cdf[i] = (acc += 1 / Math.pow(i + 1, s))
  return cdf
}

/** The smallest k in 1..n with cdf[k - 1] >= x (x in [0, cdf[n - 1])). */
export function inverseCdf (cdf: Float64Array, x: number): number {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if ((cdf[mid] as number) < x) lo = mid + 1
    else hi = mid
  }
  return lo + 1
}

/** Ids 1..n with P(k) ∝ 1/k^s (s = 0 is uniform), by inverse CDF and binary search. */
export function zipf (n: number, s: number, seed: number): () => number {
  const cdf = zipfCdf(n, s)
  const total = cdf[n - 1] as number
  const rnd = prng(seed)
  return () => inverseCdf(cdf, rnd() * total)
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

/** Ids 1..n shuffled (Fisher-Yates with prng(seed)), drawn in order and cycled. */
export function permutation (n: number, seed: number): Permutation {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`permutation: n must be a positive integer, got ${n}`)
  const ids = new Int32Array(n)
  for (let i = 0; i < n; i++) ids[i] = i + 1
  const rnd = prng(seed)
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
