import t from 'tap'
import score, { scoreOne } from '../workers/score.ts'
import { toAnswerBody } from '../workers/answer-body.ts'
import { packHistory, unpackHistory } from '../workers/history-wire.ts'
import { scoreUser, type ScoreInput } from '../workers/scoring.ts'
import type { GlobalStats, PopularItem, ScoreTask, ScoringWeights } from '../workers/types.ts'

// Every expected number below is derived by hand from the spec's formulas; they are not snapshots.
// Unless a test says otherwise: search = 1 × 2^(-age/7d), purchase = 3 × 2^(-age/14d),
// item score = (categoryScore / topCategoryScore) × (item.score / category's top item.score),
// floats rounded to 4 decimals after ranking.

const DAY = 86_400_000
const NOW = Date.UTC(2024, 5, 15, 12, 0, 0)
const ISO_NOW = '2024-06-15T12:00:00.000Z'
const W: ScoringWeights = { searchBase: 1, searchHalfLifeDays: 7, purchaseBase: 3, purchaseHalfLifeDays: 14 }

const ago = (days: number): number => NOW - days * DAY
const item = (itemId: number, category: string, score: number): PopularItem => ({ itemId, category, score })
const input = (over: Partial<ScoreInput>): ScoreInput =>
  ({ userId: 42, searches: [], purchases: [], limit: 10, now: NOW, weights: W, modelVersion: 'decay-test', ...over })

// Fixture A: four categories, some purchases, a future event.
const statsA: GlobalStats = {
  categoryPopularity: [
    { category: 'books', score: 50 }, { category: 'sports', score: 40 }, { category: 'music', score: 30 },
    { category: 'toys', score: 20 }, { category: 'kitchen', score: 10 }, { category: 'garden', score: 5 }
  ],
  cooccurrence: {
    books: [{ category: 'toys', users: 40 }, { category: 'music', users: 12 }, { category: 'garden', users: 9 }, { category: 'art', users: 5 }],
    toys: [{ category: 'books', users: 40 }, { category: 'art', users: 7 }, { category: 'music', users: 3 }],
    games: [{ category: 'film', users: 2 }, { category: 'music', users: 1 }],
    garden: [{ category: 'never-seeded', users: 1000 }]
  },
  itemsByCategory: {
    books: [item(101, 'books', 10), item(102, 'books', 8), item(103, 'books', 5)],
    toys: [item(201, 'toys', 20), item(202, 'toys', 10)],
    games: [item(301, 'games', 4), item(302, 'games', 4)],
    garden: [item(401, 'garden', 7)]
  }
}
const taskA = input({
  searches: [
    { category: 'books', at: NOW }, // 1 × 2^0 = 1
    { category: 'books', at: ago(7) }, // 1 × 2^(-7/7) = 0.5
    { category: 'toys', at: ago(14) }, // 1 × 2^(-14/7) = 0.25
    { category: 'games', at: NOW + DAY } // future: age 0 → 1
  ],
  purchases: [
    { itemId: 101, category: 'books', at: ago(14) }, // 3 × 2^(-14/14) = 1.5
    { itemId: 401, category: 'garden', at: ago(28) }, // 3 × 2^(-28/14) = 0.75
    { itemId: 202, category: 'toys', at: ago(7) } // 3 × 2^(-7/14) = 3 × 0.70710678 = 2.12132034
  ]
})
t.test('decay, category ranking, explore, items and metadata on a mixed history', async (t) => {
  t.strictSame(scoreUser(taskA, statsA), {
    user_id: 42,
    recommendations: {
      weightage: 7.1213, // 2.75 + 4.37132034
      search_weight: 2.75, // 1 + 0.5 + 0.25 + 1
      purchase_weight: 4.3713, // 1.5 + 0.75 + 2.12132034
      // books 1 + 0.5 + 1.5 = 3; toys 0.25 + 2.1213 = 2.3713; games 1; garden 0.75
      recommended_categories: ['books', 'toys', 'games', 'garden'],
      category_scores: [
        { category: 'books', score: 3 },
        { category: 'toys', score: 2.3713 },
        { category: 'games', score: 1 },
        { category: 'garden', score: 0.75 }
      ],
      // no searched-only category outside the recommended ones (games is recommended);
      // co-occurrence of the top 3 (books, toys, games; not garden): music 12+3+1 = 16, art 5+7 = 12,
      // film 2 (toys, books, garden are recommended); then popularity: sports, kitchen (music taken)
      explore_categories: ['music', 'art', 'film', 'sports', 'kitchen'],
      // 101, 202, 401 were bought. The divisor is the category's top item even when bought (101: 10).
      items: [
        { item_id: 102, category: 'books', score: 0.8, reason: 'popular in books' }, // 3/3 × 8/10
        { item_id: 201, category: 'toys', score: 0.7904, reason: 'popular in toys' }, // 2.37132034/3 × 20/20 = 0.79044011
        { item_id: 103, category: 'books', score: 0.5, reason: 'popular in books' }, // 3/3 × 5/10
        { item_id: 301, category: 'games', score: 0.3333, reason: 'popular in games' }, // 1/3 × 4/4, tie → id
        { item_id: 302, category: 'games', score: 0.3333, reason: 'popular in games' }
      ]
    },
    metadata: { search_count: 4, purchase_count: 3, cold_start: false, model_version: 'decay-test', generated_at: ISO_NOW, degraded: false }
  })
})

t.test('decay uses the configured weights and fractional ages', async (t) => {
  const r = scoreUser(input({
    weights: { searchBase: 2, searchHalfLifeDays: 1, purchaseBase: 10, purchaseHalfLifeDays: 2 },
    searches: [
      { category: 'a', at: ago(2) }, // 2 × 2^(-2/1) = 0.5
      { category: 'b', at: ago(0.5) } // 2 × 2^(-0.5/1) = 1.41421356
    ],
    purchases: [{ itemId: 1, category: 'c', at: ago(1) }] // 10 × 2^(-1/2) = 7.07106781
  }), statsA)
  t.equal(r.recommendations.search_weight, 1.9142) // 0.5 + 1.41421356
  t.equal(r.recommendations.purchase_weight, 7.0711)
  t.equal(r.recommendations.weightage, 8.9853) // 8.98528137
  t.strictSame(r.recommendations.category_scores, [
    { category: 'c', score: 7.0711 }, { category: 'b', score: 1.4142 }, { category: 'a', score: 0.5 }
  ])
})

// Fixture B: more than 10 categories, ties, searched-only and searched-then-bought categories.
const statsB: GlobalStats = {
  categoryPopularity: [{ category: 'p1', score: 100 }],
  cooccurrence: {
    alpha: [{ category: 'x', users: 10 }, { category: 'beta', users: 50 }, { category: 'y', users: 5 }],
    beta: [{ category: 'y', users: 8 }, { category: 'j', users: 100 }],
    zeta: [{ category: 'x', users: 1 }, { category: 'w', users: 15 }]
  },
  itemsByCategory: {}
}
const searchesB = [
  ...['alpha', 'alpha', 'alpha', 'zeta', 'zeta', 'beta', 'beta', 'k', 'j', 'i', 'h', 'g', 'f', 'e', 'd', 'c']
    .map((category) => ({ category, at: NOW })), // 1 each
  { category: 'aa', at: ago(7) }, // 0.5
  { category: 'l', at: ago(70) } // 2^(-70/7) = 2^-10 = 0.0009765625
]
const purchasesB = [{ itemId: 7, category: 'l', at: ago(140) }] // 3 × 2^(-140/14) = 3/1024 = 0.0029296875
const taskB = input({ searches: searchesB, purchases: purchasesB })

t.test('top 10 by score with ties by name; explore: searched-only, then co-occurrence, max 5', async (t) => {
  t.strictSame(scoreUser(taskB, statsB), {
    user_id: 42,
    recommendations: {
      weightage: 16.5039, // 16.5009765625 + 0.0029296875 = 16.50390625
      search_weight: 16.501, // 16 × 1 + 0.5 + 0.0009765625
      purchase_weight: 0.0029,
      // alpha 3, beta 2 = zeta 2 (name), then c..k at 1 cut to ten: j, k fall off
      recommended_categories: ['alpha', 'beta', 'zeta', 'c', 'd', 'e', 'f', 'g', 'h', 'i'],
      category_scores: [
        { category: 'alpha', score: 3 }, { category: 'beta', score: 2 }, { category: 'zeta', score: 2 },
        ...['c', 'd', 'e', 'f', 'g', 'h', 'i'].map((category) => ({ category, score: 1 }))
      ],
      // searched-only: j 1, k 1 (name), aa 0.5 (score before name); l was also bought, so not here.
      // co-occurrence of alpha, beta, zeta: w 15, y 5+8 = 13, x 10+1 = 11 (beta recommended, j taken);
      // only two slots remain, so x and p1 are left out.
      explore_categories: ['j', 'k', 'aa', 'w', 'y'],
      items: []
    },
    metadata: { search_count: 18, purchase_count: 1, cold_start: false, model_version: 'decay-test', generated_at: ISO_NOW, degraded: false }
  })
})

t.test('output does not depend on event order and does not mutate its inputs', async (t) => {
  const statsCopy = structuredClone(statsA)
  const taskCopy = structuredClone(taskA)
  const expected = scoreUser(taskA, statsA)
  const shuffled = { ...taskA, searches: [...taskA.searches].reverse(), purchases: [...taskA.purchases].reverse() }
  t.strictSame(scoreUser(shuffled, statsA), expected)
  t.strictSame(scoreUser(taskA, statsA), expected)
  t.strictSame(statsA, statsCopy)
  t.strictSame(taskA, taskCopy)
  const b = scoreUser({ ...taskB, searches: [...searchesB].reverse() }, statsB)
  t.strictSame(b, scoreUser(taskB, statsB))
})

t.test('explore falls back to co-occurrence ties by name, then global popularity, without duplicates', async (t) => {
  const r = scoreUser(input({ searches: [{ category: 'alpha', at: NOW }] }), {
    categoryPopularity: [
      { category: 'p1', score: 100 }, { category: 'p2', score: 90 }, { category: 'alpha', score: 80 },
      { category: 'p3', score: 70 }, { category: 'p4', score: 60 }
    ],
    // alpha itself is recommended; r and q tie at 3 → name order
    cooccurrence: { alpha: [{ category: 'alpha', users: 99 }, { category: 'p2', users: 4 }, { category: 'r', users: 3 }, { category: 'q', users: 3 }] },
    itemsByCategory: {}
  })
  t.strictSame(r.recommendations.recommended_categories, ['alpha'])
  t.strictSame(r.recommendations.explore_categories, ['p2', 'q', 'r', 'p1', 'p3']) // p2 not repeated, alpha skipped
})

t.test('equal item scores across categories are ordered by item id, not by category', async (t) => {
  const r = scoreUser(input({ searches: [{ category: 'b', at: NOW }, { category: 'a', at: NOW }] }), {
    categoryPopularity: [],
    cooccurrence: {},
    itemsByCategory: { a: [item(9, 'a', 2)], b: [item(5, 'b', 6), item(6, 'b', 3)] }
  })
  t.strictSame(r.recommendations.recommended_categories, ['a', 'b']) // 1 = 1, by name
  t.strictSame(r.recommendations.items, [
    { item_id: 5, category: 'b', score: 1, reason: 'popular in b' }, // 1/1 × 6/6
    { item_id: 9, category: 'a', score: 1, reason: 'popular in a' }, // 1/1 × 2/2
    { item_id: 6, category: 'b', score: 0.5, reason: 'popular in b' } // 1/1 × 3/6
  ])
})

t.test('limit caps the item list, keeping the best', async (t) => {
  const ids = (limit: number): number[] => scoreUser({ ...taskA, limit }, statsA).recommendations.items.map((i) => i.item_id)
  t.strictSame(ids(1), [102])
  t.strictSame(ids(3), [102, 201, 103])
  t.strictSame(ids(4), [102, 201, 103, 301])
  t.strictSame(ids(100), [102, 201, 103, 301, 302])
})

t.test('cold start: popularity drives categories, explore and items', async (t) => {
  // p01 … p16 with popularity 16 … 1
  const categoryPopularity = Array.from({ length: 16 }, (_, i) => ({ category: `p${String(i + 1).padStart(2, '0')}`, score: 16 - i }))
  const stats: GlobalStats = {
    categoryPopularity,
    cooccurrence: { p01: [{ category: 'zz', users: 1000 }] }, // ignored on cold start
    itemsByCategory: { p01: [item(1, 'p01', 4), item(2, 'p01', 2)], p02: [item(3, 'p02', 9)] }
  }
  t.strictSame(scoreUser(input({ userId: 7, limit: 2, modelVersion: 'm2' }), stats), {
    user_id: 7,
    recommendations: {
      weightage: 0,
      search_weight: 0,
      purchase_weight: 0,
      recommended_categories: categoryPopularity.slice(0, 10).map((c) => c.category),
      explore_categories: ['p11', 'p12', 'p13', 'p14', 'p15'],
      category_scores: categoryPopularity.slice(0, 10), // 16 … 7, already round
      items: [
        { item_id: 1, category: 'p01', score: 1, reason: 'popular in p01' }, // 16/16 × 4/4
        { item_id: 3, category: 'p02', score: 0.9375, reason: 'popular in p02' } // 15/16 × 9/9
        // item 2: 16/16 × 2/4 = 0.5 is cut by limit 2
      ]
    },
    metadata: { search_count: 0, purchase_count: 0, cold_start: true, model_version: 'm2', generated_at: ISO_NOW, degraded: false }
  })
  const empty = scoreUser(input({}), { categoryPopularity: [], cooccurrence: {}, itemsByCategory: {} })
  t.strictSame(empty.recommendations, {
    weightage: 0, search_weight: 0, purchase_weight: 0, recommended_categories: [], explore_categories: [], category_scores: [], items: []
  })
})

/** The task as the service sends it: history packed into typed arrays, statistics shared. */
const wire = (x: ScoreInput, statsVersion: number, statsBuffer: SharedArrayBuffer): ScoreTask => {
  const { searches, purchases, ...rest } = x
  return { ...rest, history: packHistory(searches, purchases), statsVersion, statsBuffer }
}

const shared = (text: string): SharedArrayBuffer => {
  const bytes = Buffer.from(text)
  const buffer = new SharedArrayBuffer(bytes.length)
  new Uint8Array(buffer).set(bytes)
  return buffer
}

t.test('worker entry parses stats once per version, from shared memory', async (t) => {
  const task = wire(taskA, 1, shared(JSON.stringify(statsA)))
  const first = scoreOne(task)
  t.strictSame(first, toAnswerBody(scoreUser(taskA, statsA)), 'the serialized answer')
  // Same version: the buffer is not looked at again, so garbage is harmless.
  t.strictSame(scoreOne({ ...task, statsBuffer: shared('not json {') }), first)
  // New version: parsed, and a parse failure surfaces.
  t.throws(() => scoreOne({ ...task, statsVersion: 2, statsBuffer: shared('not json {') }), SyntaxError)
  const noItems: GlobalStats = { ...statsA, itemsByCategory: {} }
  t.strictSame(scoreOne({ ...task, statsVersion: 2, statsBuffer: shared(JSON.stringify(noItems)) }).items, '')
  t.strictSame(scoreOne({ ...task, statsVersion: 2, statsBuffer: shared('still not json') }).items, '')
})

t.test('the worker entry scores a batch, in order', async (t) => {
  const statsBuffer = shared(JSON.stringify(statsA))
  const inputs = [taskA, { ...taskA, userId: 2 }, { ...taskA, userId: 3, searches: [] }]
  t.strictSame(score(inputs.map((x) => wire(x, 7, statsBuffer))), inputs.map((x) => toAnswerBody(scoreUser(x, statsA))))
})

t.test('a history survives packing for the worker unchanged', async (t) => {
  const { searches, purchases } = taskA
  t.ok(searches.length > 0 && purchases.length > 0)
  t.strictSame(unpackHistory(packHistory(searches, purchases)), { searches, purchases })
  t.strictSame(unpackHistory(packHistory([], [])), { searches: [], purchases: [] })
})
