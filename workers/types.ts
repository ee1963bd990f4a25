// The contract between the main thread (which fetches) and the scoring worker (which only computes).
// Everything here is plain data so it crosses the thread boundary by structured clone.
import type { Recommendation } from '../src/schemas/recommendation.ts'

export interface ScoringWeights {
  searchBase: number
  searchHalfLifeDays: number
  purchaseBase: number
  purchaseHalfLifeDays: number
}

export interface SearchEvent {
  category: string
  /** epoch milliseconds */
  at: number
}

export interface PurchaseEvent {
  itemId: number
  category: string
  /** epoch milliseconds */
  at: number
}

export interface PopularItem {
  itemId: number
  category: string
  /** recency-weighted purchase count, computed in SQL */
  score: number
}

/** Global statistics, refreshed in the background. Shared with the workers as UTF-8 JSON in a
 *  SharedArrayBuffer with a version, so a task carries a reference (no copy) and a worker parses
 *  the statistics once per version, not once per task. */
export interface GlobalStats {
  /** category names by global popularity, best first (ties broken by name) */
  categoryPopularity: Array<{ category: string, score: number }>
  /** for each category: the categories users also engage with, with the number of shared users */
  cooccurrence: Record<string, Array<{ category: string, users: number }>>
  /** per category: its most popular items, best first (ties broken by item id) */
  itemsByCategory: Record<string, PopularItem[]>
}

/** A user's events as typed arrays (see history-wire.ts): what crosses to the worker thread. */
export interface PackedHistory {
  /** the distinct category names of this user's events; the *Cat arrays index into it */
  categories: string[]
  searchCat: Uint32Array
  searchAt: Float64Array
  purchaseCat: Uint32Array
  purchaseAt: Float64Array
  purchaseItem: Float64Array
}

export interface ScoreTask {
  userId: number
  history: PackedHistory
  /** max items to return (1..100); the service always asks for MAX_LIMIT and cuts per request */
  limit: number
  /** epoch ms: the clock is passed in so results are reproducible */
  now: number
  weights: ScoringWeights
  modelVersion: string
  statsVersion: number
  /** UTF-8 JSON of GlobalStats; shared memory, so posting it to a worker copies nothing */
  statsBuffer: SharedArrayBuffer
}

/** The answer's wire shape, derived from its schema (src/schemas/recommendation.ts, which imports
 *  only TypeBox and framework-free lib/ modules): the worker builds exactly what the route sends.
 *  A type-only import, so nothing of it is loaded here. */
export type RecommendationBody = Recommendation
export type ItemRecommendation = RecommendationBody['recommendations']['items'][number]
export type CategoryScore = RecommendationBody['recommendations']['category_scores'][number]
