// The data model and the rows drawn from it: which categories are popular, which items each holds
// and how popular they are, and every user's taste and events. Pure computation (no database), so
// the same --seed and --now give the same text whatever loads it; see the top of scripts/seed.ts for
// the shape of the data.

import { toSqlUtc } from '../../src/lib/global-stats-refresh.ts'
import { cdfOf, mix32, mulberry32, normal, pick, poisson, sampleCdf, shuffle } from './prng.ts'
import { type Batch, type Method, Sink, sqlStr } from './sink.ts'
import { ADJECTIVES, BRANDS, categoryNames, FIRST, LAST, QUERY_FORMS } from './vocabulary.ts'

const DAY_MS = 86_400_000
/** events fall in the WINDOW_DAYS before --now: the window the global stats look at */
const WINDOW_DAYS = 90

export interface Model {
  categories: Array<{ id: number, name: string, queries: string[] }>
  /** global category popularity (index = category id - 1) */
  categoryCdf: Float64Array
  /** per category (index = id - 1): item ids by popularity and their CDF, or null when it has no items */
  itemsByCategory: Array<{ ids: Uint32Array, cdf: Float64Array } | null>
  /** category popularity restricted to categories that have items */
  itemCategoryCdf: Float64Array | null
  itemCategoryIds: Uint16Array
  itemCategory: Uint16Array
}

export function buildModel (o: { items: number, categories: number, seed: number }): Model {
  const rng = mulberry32(mix32(o.seed, 0xC0FFEE))
  const C = o.categories
  const cats = categoryNames(C).map((c, i) => {
    const queries: string[] = []
    for (const term of c.terms) for (const [pre, post] of QUERY_FORMS) queries.push(`${pre}${term}${post}`.slice(0, 255))
    return { id: i + 1, name: c.name, queries }
  })
  // Zipf(1) over a seeded permutation: which category leads depends on the seed
  const rank = shuffle(rng, Array.from({ length: C }, (_v, i) => i))
  const weight = rank.map((r) => 1 / (r + 1))
  const categoryCdf = cdfOf(weight)

  // catalogue sizes ∝ sqrt(popularity), at least one item per category while there are enough items
  const M = o.items
  const share = cdfOf(weight.map((w) => Math.sqrt(w)))
  const counts = new Array<number>(C).fill(0)
  if (M > 0) {
    const floor = M >= C ? 1 : 0
    let left = M - floor * C
    let prev = 0
    const rema: Array<[number, number]> = []
    for (let c = 0; c < C; c++) {
      const exact = (share[c]! - prev) * (M - floor * C)
      prev = share[c]!
      counts[c] = floor + Math.floor(exact)
      left -= Math.floor(exact)
      rema.push([exact - Math.floor(exact), c])
    }
    rema.sort((a, b) => b[0] - a[0] || a[1] - b[1])
    for (let i = 0; left > 0; i = (i + 1) % C, left--) counts[rema[i]![1]]!++
  }
  const itemCategory = new Uint16Array(M)
  {
    let k = 0
    for (let c = 0; c < C; c++) for (let n = 0; n < counts[c]!; n++) itemCategory[k++] = c + 1
    shuffle(rng, itemCategory)
  }
  const members: number[][] = Array.from({ length: C }, () => [])
  for (let i = 0; i < M; i++) members[itemCategory[i]! - 1]!.push(i + 1)
  const itemsByCategory = members.map((ids) => {
    if (ids.length === 0) return null
    shuffle(rng, ids) // popularity rank order
    return { ids: Uint32Array.from(ids), cdf: cdfOf(ids.map((_id, r) => 1 / (r + 1) ** 1.1)) }
  })
  const withItems = cats.filter((c) => itemsByCategory[c.id - 1] !== null)
  return {
    categories: cats,
    categoryCdf,
    itemsByCategory,
    itemCategoryCdf: withItems.length ? cdfOf(withItems.map((c) => weight[c.id - 1]!)) : null,
    itemCategoryIds: Uint16Array.from(withItems.map((c) => c.id)),
    itemCategory
  }
}

/** Event ids run on across batches, in user order. */
export interface GenState { searchId: number, purchaseId: number }

/** Users [from, to] and all their events. Every user draws from its own stream, so the rows do not
 *  depend on the batch size; ids are assigned in user order. */
export function generateUsers (m: Model, o: { seed: number, now: number, searches: number, purchases: number }, from: number, to: number, st: GenState, method: Method): Batch[] {
  const users = new Sink('users', ['id', 'name', 'created_at'], method)
  const searches = new Sink('searches', ['id', 'user_id', 'query', 'category_id', 'searched_at'], method)
  const purchases = new Sink('purchases', ['id', 'user_id', 'item_id', 'category_id', 'purchased_at'], method)
  const q = method === 'insert' ? sqlStr : (s: string) => s
  const windowMs = WINDOW_DAYS * DAY_MS
  const taste: number[] = []
  const tasteCdf = [0.5, 0.8, 0.93, 1]
  const sCats: number[] = []
  const sTimes: number[] = []
  const sQueries: string[] = []
  const order: number[] = []
  const pRows: Array<[number, number, number]> = []

  for (let u = from; u <= to; u++) {
    const rng = mulberry32(mix32(o.seed, u))
    const created = o.now - windowMs - Math.floor(rng() * 400 * DAY_MS)
    users.add(`${u}${method === 'infile' ? '\t' : ','}${q(`${pick(rng, FIRST)} ${pick(rng, LAST)}`)}${method === 'infile' ? '\t' : ','}${q(toSqlUtc(new Date(created)))}`)

    // taste: 1-4 distinct categories by popularity, weighted 1, 1/2, 1/4, 1/8
    const r0 = rng()
    const k = Math.min(m.categories.length, r0 < 0.25 ? 1 : r0 < 0.65 ? 2 : r0 < 0.9 ? 3 : 4)
    taste.length = 0
    for (let tries = 0; taste.length < k && tries < 40; tries++) {
      const c = sampleCdf(m.categoryCdf, rng()) + 1
      if (!taste.includes(c)) taste.push(c)
    }
    const tc = taste.length === 1 ? [1] : tasteCdf.slice(0, taste.length).map((x, _i, a) => x / a[a.length - 1]!)
    const pickCategory = (): number => {
      if (rng() >= 0.85) return sampleCdf(m.categoryCdf, rng()) + 1
      const r = rng()
      let i = 0
      while (i < tc.length - 1 && r >= tc[i]!) i++
      return taste[i]!
    }

    // activity: log-normal with mean 1 (sigma 0.7), shared by both event kinds
    const activity = Math.exp(0.7 * normal(rng) - 0.245)
    const nS = poisson(rng, o.searches * activity)
    const nP = poisson(rng, o.purchases * activity)

    sCats.length = 0
    sTimes.length = 0
    sQueries.length = 0
    for (let i = 0; i < nS; i++) {
      const c = pickCategory()
      sCats.push(c)
      sTimes.push(o.now - 1 - Math.floor(rng() * (windowMs - 1)))
      sQueries.push(pick(rng, m.categories[c - 1]!.queries))
    }
    order.length = 0
    for (let i = 0; i < nS; i++) order.push(i)
    order.sort((a, b) => sTimes[a]! - sTimes[b]! || a - b)
    for (const i of order) {
      searches.add(method === 'infile'
        ? `${++st.searchId}\t${u}\t${sQueries[i]}\t${sCats[i]}\t${toSqlUtc(new Date(sTimes[i]!))}`
        : `${++st.searchId},${u},${sqlStr(sQueries[i]!)},${sCats[i]},'${toSqlUtc(new Date(sTimes[i]!))}'`)
    }

    pRows.length = 0
    if (m.itemCategoryCdf) {
      for (let i = 0; i < nP; i++) {
        let c: number
        let t: number
        if (nS > 0 && rng() < 0.6) {
          // bought after searching for it: within 3 days of one of the user's searches
          const j = Math.floor(rng() * nS)
          c = sCats[j]!
          t = sTimes[j]! + Math.floor(rng() * Math.min(3 * DAY_MS, o.now - 1 - sTimes[j]!))
        } else {
          c = pickCategory()
          t = o.now - 1 - Math.floor(rng() * (windowMs - 1))
        }
        let cat = m.itemsByCategory[c - 1]
        if (!cat) {
          c = m.itemCategoryIds[sampleCdf(m.itemCategoryCdf, rng())]!
          cat = m.itemsByCategory[c - 1]!
        }
        pRows.push([cat.ids[sampleCdf(cat.cdf, rng())]!, c, t])
      }
    }
    pRows.sort((a, b) => a[2] - b[2] || a[0] - b[0])
    for (const [item, c, t] of pRows) {
      purchases.add(method === 'infile'
        ? `${++st.purchaseId}\t${u}\t${item}\t${c}\t${toSqlUtc(new Date(t))}`
        : `${++st.purchaseId},${u},${item},${c},'${toSqlUtc(new Date(t))}'`)
    }
  }
  const n = to - from + 1
  return [users, searches, purchases].map((s) => {
    s.flush()
    return { table: s.table, columns: s.columns, rows: s.rows, parts: s.parts, users: s.table === 'users' ? n : 0 }
  })
}

/** Categories, then items in batches of 50,000 (one category's catalogue may be large). */
export function generateCatalog (m: Model, o: { seed: number, now: number }, method: Method): Batch[] {
  const cats = new Sink('categories', ['id', 'name'], method)
  for (const c of m.categories) cats.add(method === 'infile' ? `${c.id}\t${c.name}` : `${c.id},${sqlStr(c.name)}`)
  const items = new Sink('items', ['id', 'category_id', 'name', 'created_at'], method)
  const rng = mulberry32(mix32(o.seed, 0x17E35))
  const out: Batch[] = []
  const push = (s: Sink) => {
    s.flush()
    out.push({ table: s.table, columns: s.columns, rows: s.rows, parts: s.parts.splice(0), users: 0 })
    s.rows = 0
  }
  push(cats)
  for (let i = 0; i < m.itemCategory.length; i++) {
    const c = m.itemCategory[i]!
    const terms = m.categories[c - 1]!.queries
    // the plain term is the first query form
    const term = terms[Math.floor(rng() * (terms.length / QUERY_FORMS.length)) * QUERY_FORMS.length]!
    const name = `${pick(rng, BRANDS)} ${pick(rng, ADJECTIVES)} ${term}`.slice(0, 200)
    const created = toSqlUtc(new Date(o.now - WINDOW_DAYS * DAY_MS - Math.floor(rng() * 400 * DAY_MS)))
    items.add(method === 'infile' ? `${i + 1}\t${c}\t${name}\t${created}` : `${i + 1},${c},${sqlStr(name)},'${created}'`)
    if (items.rows >= 50_000) push(items)
  }
  if (items.rows > 0) push(items)
  return out
}
