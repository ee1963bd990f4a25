import type { GlobalStats, ItemRecommendation, PurchaseEvent, RecommendationBody, ScoreTask, SearchEvent } from './types.ts'

/** What scoring needs: the task with its history unpacked, minus the shared statistics, which
 *  the worker entry parses and caches. */
export type ScoreInput = Omit<ScoreTask, 'statsBuffer' | 'statsVersion' | 'history'> & { searches: SearchEvent[], purchases: PurchaseEvent[] }

const DAY_MS = 86_400_000
const TOP_CATEGORIES = 10
const EXPLORE_COUNT = 5
/** how many of the user's top categories seed the co-occurrence step of exploration */
const COOCCURRENCE_SEEDS = 3

const round4 = (x: number): number => Math.round(x * 1e4) / 1e4

// Code-unit order rather than localeCompare: locale-independent and cheap, so every replica agrees.
const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

interface Ranked { category: string, score: number }
const byScoreThenName = (a: Ranked, b: Ranked): number => b.score - a.score || byName(a.category, b.category)

interface ItemCandidate { itemId: number, category: string, score: number }
const byScoreThenId = (a: ItemCandidate, b: ItemCandidate): number => b.score - a.score || a.itemId - b.itemId

interface CategoryAcc extends Ranked {
  /** decayed search weight alone: orders searched-never-purchased explore candidates */
  search: number
  purchased: boolean
}

/** Inserts x into `out` (sorted by cmp, at most k long) after every element that is not worse,
 *  dropping whatever falls off the end. Keeps the k best of n without sorting all n: a binary
 *  search per insertion, since k goes up to MAX_LIMIT (100) for items. */
function insertTopK<T> (out: T[], x: T, k: number, cmp: (a: T, b: T) => number): void {
  const last = out[out.length - 1]
  if (out.length >= k && (last === undefined || cmp(x, last) >= 0)) return
  let lo = 0
  let hi = out.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (cmp(x, out[mid]!) < 0) hi = mid
    else lo = mid + 1
  }
  out.splice(lo, 0, x)
  if (out.length > k) out.pop()
}

function topK<T> (xs: Iterable<T>, k: number, cmp: (a: T, b: T) => number): T[] {
  const out: T[] = []
  if (k > 0) for (const x of xs) insertTopK(out, x, k, cmp)
  return out
}

/** base × 2^(-age/halfLife); events stamped in the future (clock skew) count as brand new. */
function decay (base: number, ageMs: number, halfLifeMs: number): number {
  return ageMs <= 0 ? base : base * 2 ** (-ageMs / halfLifeMs)
}

// A ratio to the best in its group; when the best is 0 every member is equally (un)popular.
const ratio = (x: number, top: number): number => (top > 0 ? x / top : 1)

function accumulate (acc: Map<string, CategoryAcc>, category: string): CategoryAcc {
  let a = acc.get(category)
  if (a === undefined) {
    a = { category, score: 0, search: 0, purchased: false }
    acc.set(category, a)
  }
  return a
}

export function scoreUser (task: ScoreInput, stats: GlobalStats): RecommendationBody {
  const { searches, purchases, now, weights } = task
  const coldStart = searches.length === 0 && purchases.length === 0

  const acc = new Map<string, CategoryAcc>()
  const bought = new Set<number>()
  let searchWeight = 0
  let purchaseWeight = 0
  const searchHalfLifeMs = weights.searchHalfLifeDays * DAY_MS
  for (const s of searches) {
    const w = decay(weights.searchBase, now - s.at, searchHalfLifeMs)
    searchWeight += w
    const a = accumulate(acc, s.category)
    a.score += w
    a.search += w
  }
  const purchaseHalfLifeMs = weights.purchaseHalfLifeDays * DAY_MS
  for (const p of purchases) {
    const w = decay(weights.purchaseBase, now - p.at, purchaseHalfLifeMs)
    purchaseWeight += w
    const a = accumulate(acc, p.category)
    a.score += w
    a.purchased = true
    bought.add(p.itemId)
  }

  // categoryPopularity is already best-first, so cold start needs no ranking of its own.
  const recommended: Ranked[] = coldStart
    ? stats.categoryPopularity.slice(0, TOP_CATEGORIES)
    : topK(acc.values(), TOP_CATEGORIES, byScoreThenName)
  const recommendedNames = recommended.map((r) => r.category)

  return {
    user_id: task.userId,
    recommendations: {
      weightage: round4(searchWeight + purchaseWeight),
      search_weight: round4(searchWeight),
      purchase_weight: round4(purchaseWeight),
      recommended_categories: recommendedNames,
      explore_categories: explore(recommendedNames, acc, stats, coldStart),
      category_scores: recommended.map((r) => ({ category: r.category, score: round4(r.score) })),
      items: items(recommended, bought, stats, task.limit)
    },
    metadata: {
      search_count: searches.length,
      purchase_count: purchases.length,
      cold_start: coldStart,
      model_version: task.modelVersion,
      generated_at: new Date(now).toISOString(),
      degraded: false
    }
  }
}

/** Up to 5 categories outside `recommended`, no duplicates, from three sources in priority order:
 *  1. the user's searched-but-never-purchased categories (search score desc, then name);
 *  2. categories co-occurring with the user's top 3 (sum of `users` across them desc, then name),
 *     skipped on cold start, where exploration is simply the next most popular categories;
 *  3. global popularity order. */
function explore (recommended: string[], acc: Map<string, CategoryAcc>, stats: GlobalStats, coldStart: boolean): string[] {
  const taken = new Set(recommended)
  const out: string[] = []
  const take = (category: string): void => {
    if (out.length < EXPLORE_COUNT && !taken.has(category)) {
      taken.add(category)
      out.push(category)
    }
  }

  const searchedOnly: Ranked[] = []
  for (const a of acc.values()) {
    if (!a.purchased && !taken.has(a.category)) {
      insertTopK(searchedOnly, { category: a.category, score: a.search }, EXPLORE_COUNT, byScoreThenName)
    }
  }
  for (const r of searchedOnly) take(r.category)

  if (!coldStart && out.length < EXPLORE_COUNT) {
    const shared = new Map<string, number>()
    for (const seed of recommended.slice(0, COOCCURRENCE_SEEDS)) {
      for (const c of stats.cooccurrence[seed] ?? []) {
        if (!taken.has(c.category)) shared.set(c.category, (shared.get(c.category) ?? 0) + c.users)
      }
    }
    const ranked = topK(Array.from(shared, ([category, score]) => ({ category, score })), EXPLORE_COUNT - out.length, byScoreThenName)
    for (const r of ranked) take(r.category)
  }

  for (const p of stats.categoryPopularity) {
    if (out.length >= EXPLORE_COUNT) break
    take(p.category)
  }
  return out
}

/** Top `limit` items of the recommended categories, excluding bought ones.
 *  score = (categoryScore / topCategoryScore) × (item.score / score of the category's most popular
 *  item, bought or not), so it lies in (0, 1]; ranked by score desc, then item_id asc. */
function items (recommended: Ranked[], bought: Set<number>, stats: GlobalStats, limit: number): ItemRecommendation[] {
  const best: ItemCandidate[] = []
  const topCategoryScore = recommended[0]?.score ?? 0
  for (const r of recommended) {
    const list = stats.itemsByCategory[r.category]
    const first = list?.[0]
    if (list === undefined || first === undefined) continue
    const factor = ratio(r.score, topCategoryScore)
    for (const item of list) {
      if (bought.has(item.itemId)) continue
      const score = factor * ratio(item.score, first.score)
      // Lists are best-first, so once an item scores strictly below the current cut-off no later
      // one in this category can enter (ties may still win on item id, hence "strictly").
      const cutoff = best.length >= limit ? best[best.length - 1] : undefined
      if (limit <= 0 || (cutoff !== undefined && score < cutoff.score)) break
      insertTopK(best, { itemId: item.itemId, category: r.category, score }, limit, byScoreThenId)
    }
  }
  return best.map((c) => ({ item_id: c.itemId, category: c.category, score: round4(c.score), reason: `popular in ${c.category}` }))
}
