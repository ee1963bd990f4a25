// The seeder's randomness. Everything derives from mulberry32 streams keyed with mix32, so a user's
// rows depend only on (--seed, user id) and never on batch size, load method or connection count.
// Changing any function here changes every generated row: test/seed.test.ts pins reproducibility.

export type Rng = () => number

export function mulberry32 (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A 32-bit hash of two words: seeds an independent stream per user or purpose from one --seed. */
export function mix32 (a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9E3779B1) ^ Math.imul(b >>> 0, 0x85EBCA77)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7FEB352D)
  h ^= h >>> 15
  h = Math.imul(h, 0x846CA68B)
  h ^= h >>> 16
  return h >>> 0
}

export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!

/** In place (Fisher-Yates); generic over typed arrays too, which the model uses to save memory. */
export function shuffle<T, A extends { length: number, [i: number]: T }> (rng: Rng, xs: A): A {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    const t = xs[i]!
    xs[i] = xs[j]!
    xs[j] = t
  }
  return xs
}

/** Standard normal (Box-Muller); 1 - rng() keeps log() away from 0. */
export function normal (rng: Rng): number {
  const u = 1 - rng()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

/** Knuth's method; above lambda 60 it would loop long and underflow, so a normal approximation. */
export function poisson (rng: Rng, lambda: number): number {
  if (lambda <= 0) return 0
  if (lambda > 60) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal(rng)))
  const l = Math.exp(-lambda)
  let k = 0
  let p = rng()
  while (p > l) {
    k++
    p *= rng()
  }
  return k
}

/** cumulative weights, normalised to end at 1 */
export function cdfOf (weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length)
  let s = 0
  for (let i = 0; i < weights.length; i++) out[i] = (s += weights[i]!)
  for (let i = 0; i < out.length; i++) out[i]! /= s
  return out
}

/** The first index whose cumulative weight exceeds r (binary search: catalogues reach millions). */
export function sampleCdf (cdf: Float64Array, r: number): number {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (cdf[mid]! > r) hi = mid
    else lo = mid + 1
  }
  return lo
}
