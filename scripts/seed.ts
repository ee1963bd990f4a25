// `npm run seed`: fills the database with realistic, reproducible demo data.
//
//   npm run seed -- [--users N] [--items M] [--categories C] [--searches-per-user S]
//                   [--purchases-per-user P] [--seed X] [--now ISO] [--reset] [--mysql-url URL]
//                   [--method auto|infile|insert] [--concurrency K] [--no-stats]
//
// What it makes:
// - categories with real names (electronics, books, ...; "kids books", "vintage electronics", ... when
//   more are asked for), whose popularity follows a Zipf law;
// - items, each in one category (bigger catalogues in popular categories), with Zipf-like popularity
//   inside their category;
// - users, each with a taste: 1-4 preferred categories drawn by popularity; 85% of their events fall in
//   those, the rest anywhere;
// - searches (query text for the category) and purchases (an item of the category, often a few hours or
//   days after a search in the same category), spread over the 90 days before --now; per-user counts
//   vary around the means (log-normal activity × Poisson), so some users have no events at all.
//
// The same --seed and --now give identical rows (every id is explicit, every user's events come from
// that user's own PRNG stream), whatever the batch size, method or number of connections.
//
// Loading: LOAD DATA LOCAL INFILE streamed from memory (about 2x faster than multi-row INSERT: 1M users
// in ~55 s against ~115 s on MariaDB 10.11, 2 cores)
// when the server allows it, else multi-row INSERTs of ~1 MB; FK and unique checks off for the
// session; generation of the next batch overlaps the loading of the previous ones on K connections.
// refreshGlobalStats runs at the end.
//
// seed(opts) is the same as a function, for tests and scripts/stack.ts.

import { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { migrate, PROJECT_TABLES } from '../src/lib/migrations.ts'
import { refreshGlobalStats, toSqlUtc } from '../src/lib/global-stats.ts'
import { isMain } from './lib/is-main.ts'

export interface SeedOptions {
  /** database URL (the database is created when missing); default $MYSQL_URL or mysql://root@127.0.0.1:3306/recsvc */
  mysqlUrl?: string
  users?: number
  items?: number
  categories?: number
  /** mean searches per user (default 10) */
  searchesPerUser?: number
  /** mean purchases per user (default 4) */
  purchasesPerUser?: number
  /** PRNG seed (default 42) */
  seed?: number
  /** the anchor of all timestamps (default: now) */
  now?: Date
  /** drop this project's tables (and only those) first, then migrate again */
  reset?: boolean
  /** 'infile' = LOAD DATA LOCAL INFILE, 'insert' = multi-row INSERT, 'auto' = infile when the server allows it */
  method?: 'auto' | 'infile' | 'insert'
  /** loading connections (default 2) */
  concurrency?: number
  /** users per generated batch (default 5000) */
  batchUsers?: number
  /** run refreshGlobalStats at the end (default true) */
  stats?: boolean
  /** progress on stderr: true, false, or 'auto' (default: a bar on a TTY, else a line every 5 s) */
  progress?: boolean | 'auto'
  /** where messages go (default: stderr) */
  log?: (line: string) => void
}

export interface SeedResult {
  users: number
  items: number
  categories: number
  searches: number
  purchases: number
  /** all rows written by the load (stats tables excluded) */
  rows: number
  method: 'infile' | 'insert'
  loadMs: number
  rowsPerSec: number
  statsMs: number
  now: Date
}

export const SEED_DEFAULTS = {
  users: 10_000,
  items: 5_000,
  categories: 24,
  searchesPerUser: 10,
  purchasesPerUser: 4,
  seed: 42,
  concurrency: 2,
  batchUsers: 5_000
} as const

const DAY_MS = 86_400_000
const WINDOW_DAYS = 90

// ---------------------------------------------------------------------------------------------
// PRNG: mulberry32, and a 32-bit mix to derive independent streams (per user, per purpose)

export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function mix32 (a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9E3779B1) ^ Math.imul(b >>> 0, 0x85EBCA77)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7FEB352D)
  h ^= h >>> 15
  h = Math.imul(h, 0x846CA68B)
  h ^= h >>> 16
  return h >>> 0
}

type Rng = () => number

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!

function shuffle<T, A extends { length: number, [i: number]: T }> (rng: Rng, xs: A): A {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1))
    const t = xs[i]!
    xs[i] = xs[j]!
    xs[j] = t
  }
  return xs
}

function normal (rng: Rng): number {
  const u = 1 - rng()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng())
}

function poisson (rng: Rng, lambda: number): number {
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
function cdfOf (weights: ArrayLike<number>): Float64Array {
  const out = new Float64Array(weights.length)
  let s = 0
  for (let i = 0; i < weights.length; i++) out[i] = (s += weights[i]!)
  for (let i = 0; i < out.length; i++) out[i]! /= s
  return out
}

function sampleCdf (cdf: Float64Array, r: number): number {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (cdf[mid]! > r) hi = mid
    else lo = mid + 1
  }
  return lo
}

// ---------------------------------------------------------------------------------------------
// vocabulary

const CATALOG: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['electronics', ['wireless headphones', 'laptop', 'smartphone', '4k tv', 'bluetooth speaker', 'usb c charger', 'smartwatch', 'tablet']],
  ['books', ['mystery novel', 'cookbook', 'fantasy series', 'biography', 'self help book', 'science fiction', 'history book', 'poetry']],
  ['clothing', ['winter jacket', 'jeans', 't-shirt', 'summer dress', 'hoodie', 'raincoat', 'wool sweater', 'chinos']],
  ['shoes', ['running shoes', 'sneakers', 'hiking boots', 'sandals', 'loafers', 'slippers', 'trail runners']],
  ['home', ['throw pillow', 'bath towels', 'scented candle', 'wall art', 'area rug', 'curtains', 'storage baskets']],
  ['kitchen', ['air fryer', 'chef knife', 'coffee maker', 'blender', 'cast iron pan', 'food storage containers', 'stand mixer']],
  ['garden', ['garden hose', 'pruning shears', 'raised bed', 'tomato seeds', 'lawn mower', 'planters', 'compost bin']],
  ['toys', ['lego set', 'board game', 'jigsaw puzzle', 'doll house', 'rc car', 'plush toy', 'building blocks']],
  ['sports', ['yoga mat', 'dumbbells', 'tennis racket', 'football', 'bike helmet', 'resistance bands', 'jump rope']],
  ['beauty', ['moisturizer', 'lipstick', 'sunscreen', 'shampoo', 'perfume', 'face serum', 'nail polish']],
  ['health', ['vitamin d', 'protein powder', 'first aid kit', 'thermometer', 'fish oil', 'blood pressure monitor']],
  ['grocery', ['coffee beans', 'olive oil', 'green tea', 'pasta', 'dark chocolate', 'granola', 'hot sauce']],
  ['pet supplies', ['dog food', 'cat litter', 'dog leash', 'bird feeder', 'aquarium filter', 'cat tree', 'chew toys']],
  ['automotive', ['phone mount', 'tire inflator', 'dash cam', 'car wax', 'seat covers', 'jump starter']],
  ['office', ['ergonomic chair', 'notebook', 'gel pens', 'desk lamp', 'printer paper', 'monitor stand']],
  ['music', ['acoustic guitar', 'vinyl record', 'digital piano', 'drum sticks', 'ukulele', 'guitar strings']],
  ['movies', ['blu-ray', 'box set', 'documentary', 'classic films', 'animated movie', 'criterion collection']],
  ['video games', ['rpg', 'racing game', 'controller', 'gaming headset', 'strategy game', 'console']],
  ['jewelry', ['silver necklace', 'hoop earrings', 'engagement ring', 'charm bracelet', 'pendant']],
  ['watches', ['dive watch', 'automatic watch', 'fitness tracker', 'watch strap', 'chronograph']],
  ['baby', ['stroller', 'diapers', 'baby monitor', 'car seat', 'baby carrier', 'high chair']],
  ['furniture', ['sofa', 'bookshelf', 'standing desk', 'bed frame', 'dining table', 'office chair']],
  ['tools', ['cordless drill', 'screwdriver set', 'tool box', 'step ladder', 'socket set', 'stud finder']],
  ['outdoors', ['camping tent', 'sleeping bag', 'hiking backpack', 'trekking poles', 'headlamp', 'water filter']],
  ['crafts', ['yarn', 'acrylic paint', 'sewing machine', 'sketchbook', 'glue gun', 'embroidery kit']],
  ['travel', ['carry on luggage', 'travel pillow', 'packing cubes', 'passport holder', 'travel adapter']],
  ['appliances', ['washing machine', 'refrigerator', 'robot vacuum', 'dishwasher', 'microwave', 'dehumidifier']],
  ['cameras', ['mirrorless camera', 'tripod', 'prime lens', 'memory card', 'camera bag', 'action camera']],
  ['lighting', ['led bulbs', 'floor lamp', 'string lights', 'smart bulb', 'desk light', 'motion sensor light']],
  ['bags', ['backpack', 'tote bag', 'crossbody bag', 'laptop sleeve', 'duffel bag', 'wallet']],
  ['software', ['antivirus', 'photo editor', 'office suite', 'vpn subscription', 'password manager']],
  ['party supplies', ['balloons', 'birthday candles', 'party favors', 'paper plates', 'banner']]
]
const NAME_MODIFIERS = ['kids', 'vintage', 'outdoor', 'smart', 'eco', 'premium', 'travel', 'mini', 'professional', 'budget', 'luxury', 'handmade']
const QUERY_FORMS: ReadonlyArray<readonly [string, string]> = [
  ['', ''], ['', ''], ['', ''], ['best ', ''], ['cheap ', ''], ['', ' deals'], ['', ' reviews'],
  ['buy ', ''], ['', ' sale'], ['used ', ''], ['', ' gift'], ['', ' near me'], ['top rated ', ''], ['', ' 2025']
]
const BRANDS = ['Acme', 'Nordic', 'Zenith', 'Apex', 'Lumen', 'Orbit', 'Summit', 'Vertex', 'Koala', 'Maple', 'Harbor', 'Cobalt', 'Juniper', 'Atlas', 'Pioneer', 'Willow']
const ADJECTIVES = ['Classic', 'Pro', 'Ultra', 'Compact', 'Deluxe', 'Essential', 'Lite', 'Max', 'Eco', 'Prime', 'Signature', 'Everyday']
const FIRST = ['Ada', 'Ben', 'Chloe', 'Dev', 'Elena', 'Farid', 'Grace', 'Hiro', 'Ines', 'Jonas', 'Kira', 'Liam', 'Maya', 'Noah', 'Olga', 'Priya', 'Quinn', 'Rosa', 'Sam', 'Tariq', 'Uma', 'Victor', 'Wen', 'Yara', 'Zoe']
const LAST = ['Smith', 'Garcia', 'Kim', 'Novak', 'Okafor', 'Rossi', 'Schmidt', 'Tanaka', 'Silva', 'Dubois', 'Jensen', 'Kowalski', 'Nguyen', 'Patel', 'Haddad', 'Larsen']

/** C category names with their search terms: the catalogue first, then "modifier base", then "base N". */
export function categoryNames (count: number): Array<{ name: string, terms: readonly string[] }> {
  const out: Array<{ name: string, terms: readonly string[] }> = []
  for (const [name, terms] of CATALOG) {
    if (out.length >= count) return out
    out.push({ name, terms })
  }
  for (const m of NAME_MODIFIERS) {
    for (const [name, terms] of CATALOG) {
      if (out.length >= count) return out
      out.push({ name: `${m} ${name}`, terms: terms.map((t) => `${m} ${t}`) })
    }
  }
  for (let n = 2; out.length < count; n++) {
    for (const [name, terms] of CATALOG) {
      if (out.length >= count) return out
      out.push({ name: `${name} ${n}`, terms })
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// batches of rows, in the format of the chosen load method

type Method = 'infile' | 'insert'

const sqlStr = (s: string): string => `'${s.replace(/[\\']/g, (c) => '\\' + c)}'`

/** Rows of one table: TSV for LOAD DATA, or INSERT statements of about 1 MB. */
class Sink {
  rows = 0
  readonly parts: string[] = []
  private cur = ''
  private curRows = 0
  constructor (readonly table: string, readonly columns: readonly string[], readonly method: Method) {}
  /** `fields` already formatted for the method (numbers as text; strings quoted for INSERT) */
  add (fields: string): void {
    this.rows++
    if (this.method === 'infile') {
      this.cur += fields + '\n'
      return
    }
    this.cur += this.curRows === 0 ? `(${fields})` : `,(${fields})`
    if (++this.curRows >= 20_000 || this.cur.length >= 1_000_000) this.flush()
  }

  flush (): void {
    if (this.cur.length === 0) return
    this.parts.push(this.method === 'infile'
      ? this.cur
      : `INSERT INTO ${this.table} (${this.columns.join(', ')}) VALUES ${this.cur}`)
    this.cur = ''
    this.curRows = 0
  }
}

interface Batch { table: string, columns: readonly string[], rows: number, parts: string[], users: number }

// ---------------------------------------------------------------------------------------------
// the data model

interface Model {
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

function buildModel (o: Required<Pick<SeedOptions, 'items' | 'categories' | 'seed'>>): Model {
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

interface GenState { searchId: number, purchaseId: number }

/** Users [from, to] and all their events. Every user draws from its own stream, so the rows do not
 *  depend on the batch size; ids are assigned in user order. */
function generateUsers (m: Model, o: { seed: number, now: number, searches: number, purchases: number }, from: number, to: number, st: GenState, method: Method): Batch[] {
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

function generateCatalog (m: Model, o: { seed: number, now: number }, method: Method): Batch[] {
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

// ---------------------------------------------------------------------------------------------
// loading

async function load (conn: mysql.Connection, b: Batch, method: Method): Promise<void> {
  for (const part of b.parts) {
    if (method === 'insert') {
      await conn.query(part)
    } else {
      await conn.query({
        sql: `LOAD DATA LOCAL INFILE 'recsvc-seed-${b.table}' INTO TABLE ${b.table} CHARACTER SET utf8mb4
              FIELDS TERMINATED BY '\\t' ESCAPED BY '' LINES TERMINATED BY '\\n' (${b.columns.join(', ')})`,
        infileStreamFactory: () => Readable.from([Buffer.from(part, 'utf8')])
      })
    }
  }
}

function dbName (url: string): { db: string, serverUrl: string } {
  const u = new URL(url)
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''))
  if (!db) throw new Error(`the MySQL URL names no database: ${url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@')}`)
  u.pathname = '/'
  return { db, serverUrl: u.toString() }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

class Progress {
  private readonly started = performance.now()
  private lastDraw = 0
  private lastLine = 0
  rows = 0
  users = 0
  constructor (private readonly totalUsers: number, private readonly mode: 'bar' | 'lines' | 'off', private readonly log: (l: string) => void) {}
  update (force = false): void {
    if (this.mode === 'off') return
    const now = performance.now()
    const secs = (now - this.started) / 1000
    const frac = this.totalUsers > 0 ? this.users / this.totalUsers : 1
    const rate = secs > 0 ? this.rows / secs : 0
    const eta = frac > 0 && frac < 1 ? ` eta ${Math.round(secs / frac - secs)}s` : ''
    const text = `${(frac * 100).toFixed(1).padStart(5)}% users ${fmt(this.users)}/${fmt(this.totalUsers)} rows ${fmt(this.rows)} ${fmt(rate)} rows/s${eta}`
    if (this.mode === 'bar') {
      if (!force && now - this.lastDraw < 100) return
      this.lastDraw = now
      const width = 30
      const full = Math.round(frac * width)
      process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${text}\x1b[K`)
    } else {
      if (!force && now - this.lastLine < 5000) return
      this.lastLine = now
      this.log(`seed: ${text}`)
    }
  }

  done (): void {
    if (this.mode === 'bar') process.stderr.write('\n')
  }
}

/** Seeds the database; see the top of this file. Refuses a database that already has data unless reset. */
export async function seed (opts: SeedOptions = {}): Promise<SeedResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + '\n'))
  const url = opts.mysqlUrl ?? process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/recsvc'
  const int = (name: string, v: number | undefined, dflt: number, min: number, max: number): number => {
    const x = v ?? dflt
    if (!Number.isInteger(x) || x < min || x > max) throw new RangeError(`${name} must be an integer in ${min}..${max} (got ${v})`)
    return x
  }
  const num = (name: string, v: number | undefined, dflt: number): number => {
    const x = v ?? dflt
    if (!Number.isFinite(x) || x < 0 || x > 10_000) throw new RangeError(`${name} must be a number in 0..10000 (got ${v})`)
    return x
  }
  const users = int('users', opts.users, SEED_DEFAULTS.users, 0, 4_000_000_000)
  const items = int('items', opts.items, SEED_DEFAULTS.items, 0, 4_000_000_000)
  const categories = int('categories', opts.categories, SEED_DEFAULTS.categories, 1, 65_535)
  const searchesPerUser = num('searchesPerUser', opts.searchesPerUser, SEED_DEFAULTS.searchesPerUser)
  const purchasesPerUser = num('purchasesPerUser', opts.purchasesPerUser, SEED_DEFAULTS.purchasesPerUser)
  const seedValue = int('seed', opts.seed, SEED_DEFAULTS.seed, -(2 ** 31), 2 ** 32 - 1)
  const concurrency = int('concurrency', opts.concurrency, SEED_DEFAULTS.concurrency, 1, 64)
  const batchUsers = int('batchUsers', opts.batchUsers, SEED_DEFAULTS.batchUsers, 1, 1_000_000)
  const nowDate = opts.now ?? new Date()
  const now = nowDate.getTime()
  if (!Number.isFinite(now)) throw new RangeError('now is not a valid date')

  // database, reset, schema
  const { db, serverUrl } = dbName(url)
  {
    const conn = await mysql.createConnection({ uri: serverUrl, connectTimeout: 10_000 })
    try {
      await conn.query(`CREATE DATABASE IF NOT EXISTS \`${db.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`)
      if (opts.reset) {
        await conn.query(`USE \`${db.replace(/`/g, '``')}\``)
        await conn.query('SET SESSION foreign_key_checks = 0')
        await conn.query(`DROP TABLE IF EXISTS ${PROJECT_TABLES.map((t) => `\`${t}\``).join(', ')}`)
        log(`seed: dropped this project's tables in ${db}`)
      }
    } finally {
      await conn.end()
    }
  }
  await migrate(url, { log: (m) => log(`seed: migrate: ${m}`) })

  const conns: mysql.Connection[] = []
  try {
    for (let i = 0; i < concurrency; i++) {
      const c = await mysql.createConnection({ uri: url, timezone: 'Z', connectTimeout: 10_000 })
      conns.push(c)
      await c.query('SET SESSION foreign_key_checks = 0, unique_checks = 0')
    }
    const main = conns[0]!
    const [nonEmpty] = await main.query<mysql.RowDataPacket[]>(
      `SELECT 'categories' AS t FROM categories HAVING COUNT(*) > 0
       UNION ALL SELECT 'items' FROM items HAVING COUNT(*) > 0
       UNION ALL SELECT 'users' FROM users HAVING COUNT(*) > 0
       UNION ALL SELECT 'searches' FROM searches HAVING COUNT(*) > 0
       UNION ALL SELECT 'purchases' FROM purchases HAVING COUNT(*) > 0`)
    if (nonEmpty.length > 0) {
      throw new Error(`database ${db} already has data (${nonEmpty.map((r) => r.t).join(', ')}); pass --reset to start over`)
    }

    let method: Method = opts.method === 'insert' ? 'insert' : 'infile'
    if (method === 'infile') {
      const [rows] = await main.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.local_infile AS v')
      const v = String(rows[0]?.v ?? '0').toUpperCase()
      const allowed = v === '1' || v === 'ON'
      if (!allowed) {
        if (opts.method === 'infile') throw new Error('the server has local_infile disabled; use --method insert')
        method = 'insert'
      }
    }

    const model = buildModel({ items, categories, seed: seedValue })
    const tty = process.stderr.isTTY === true
    const mode = opts.progress === false ? 'off' : opts.progress === true ? (tty ? 'bar' : 'lines') : (tty ? 'bar' : 'lines')
    const progress = new Progress(users, mode, log)
    log(`seed: ${fmt(users)} users, ${fmt(items)} items, ${categories} categories, ~${searchesPerUser} searches and ~${purchasesPerUser} purchases per user, seed ${seedValue}, now ${nowDate.toISOString()}, ${method}, ${concurrency} connection(s)`)
    const started = performance.now()
    const totals: Record<string, number> = { categories: 0, items: 0, users: 0, searches: 0, purchases: 0 }

    // Up to K loads in flight, one per connection; the next batch is generated meanwhile.
    const idle = [...conns]
    const inflight = new Set<Promise<void>>()
    let failed: unknown
    const submit = async (bs: Batch[]) => {
      for (const b of bs) {
        if (b.rows === 0) continue
        while (idle.length === 0 && !failed) await Promise.race(inflight)
        if (failed) throw failed
        const conn = idle.pop()!
        const p: Promise<void> = load(conn, b, method).then(() => {
          totals[b.table] = (totals[b.table] ?? 0) + b.rows
          progress.rows += b.rows
          progress.users += b.users
          progress.update()
          idle.push(conn)
        }, (err: unknown) => { failed ??= err }).finally(() => { inflight.delete(p) })
        inflight.add(p)
      }
    }

    try {
      await submit(generateCatalog(model, { seed: seedValue, now }, method))
      const st: GenState = { searchId: 0, purchaseId: 0 }
      const gen = { seed: seedValue, now, searches: searchesPerUser, purchases: purchasesPerUser }
      for (let from = 1; from <= users; from += batchUsers) {
        const to = Math.min(users, from + batchUsers - 1)
        await submit(generateUsers(model, gen, from, to, st, method))
        // let the sockets drain between batches
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    } finally {
      await Promise.all(inflight)
    }
    if (failed) throw failed
    progress.update(true)
    progress.done()
    const loadMs = performance.now() - started
    const rows = Object.values(totals).reduce((a, b) => a + b, 0)
    const rowsPerSec = rows / Math.max(loadMs / 1000, 1e-3)
    log(`seed: loaded ${fmt(rows)} rows (${Object.entries(totals).map(([t, n]) => `${t} ${fmt(n)}`).join(', ')}) in ${(loadMs / 1000).toFixed(1)} s: ${fmt(rowsPerSec)} rows/s`)

    await main.query('ANALYZE TABLE categories, items, users, searches, purchases')

    let statsMs = 0
    if (opts.stats !== false) {
      const ts = performance.now()
      const r = await refreshGlobalStats(main, { now: nowDate })
      statsMs = performance.now() - ts
      log(`seed: global stats (${fmt(r.items)} items, ${r.categories} categories, ${r.pairs} pairs) in ${(statsMs / 1000).toFixed(1)} s`)
    }
    return {
      users: totals.users!,
      items: totals.items!,
      categories: totals.categories!,
      searches: totals.searches!,
      purchases: totals.purchases!,
      rows,
      method,
      loadMs: Math.round(loadMs),
      rowsPerSec: Math.round(rowsPerSec),
      statsMs: Math.round(statsMs),
      now: nowDate
    }
  } finally {
    await Promise.all(conns.map((c) => c.end().catch(() => c.destroy())))
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage: npm run seed -- [options]
  --users N               users (default ${SEED_DEFAULTS.users})
  --items M               items (default ${SEED_DEFAULTS.items})
  --categories C          categories (default ${SEED_DEFAULTS.categories})
  --searches-per-user S   mean searches per user (default ${SEED_DEFAULTS.searchesPerUser})
  --purchases-per-user P  mean purchases per user (default ${SEED_DEFAULTS.purchasesPerUser})
  --seed X                PRNG seed (default ${SEED_DEFAULTS.seed})
  --now ISO               timestamps end here (default: now); same --seed and --now = same data
  --reset                 drop this project's tables first (nothing else), then migrate
  --mysql-url URL         default $MYSQL_URL or mysql://root@127.0.0.1:3306/recsvc
  --method M              auto (default) | infile | insert
  --concurrency K         loading connections (default ${SEED_DEFAULTS.concurrency})
  --batch-users N         users per batch (default ${SEED_DEFAULTS.batchUsers})
  --no-stats              skip refreshGlobalStats at the end`

export async function main (argv = process.argv.slice(2)): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      users: { type: 'string' },
      items: { type: 'string' },
      categories: { type: 'string' },
      'searches-per-user': { type: 'string' },
      'purchases-per-user': { type: 'string' },
      seed: { type: 'string' },
      now: { type: 'string' },
      reset: { type: 'boolean' },
      'mysql-url': { type: 'string' },
      method: { type: 'string' },
      concurrency: { type: 'string' },
      'batch-users': { type: 'string' },
      'no-stats': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help) {
    console.log(USAGE)
    return
  }
  const n = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    const x = Number(v.replace(/_/g, ''))
    if (v.trim() === '' || !Number.isFinite(x)) throw new RangeError(`--${name} must be a number (got ${v})`)
    return x
  }
  const method = values.method
  if (method !== undefined && method !== 'auto' && method !== 'infile' && method !== 'insert') throw new RangeError(`--method must be auto, infile or insert (got ${method})`)
  let now: Date | undefined
  if (values.now !== undefined) {
    now = new Date(values.now)
    if (Number.isNaN(now.getTime())) throw new RangeError(`--now must be an ISO date (got ${values.now})`)
  }
  const r = await seed({
    mysqlUrl: values['mysql-url'],
    users: n('users', values.users),
    items: n('items', values.items),
    categories: n('categories', values.categories),
    searchesPerUser: n('searches-per-user', values['searches-per-user']),
    purchasesPerUser: n('purchases-per-user', values['purchases-per-user']),
    seed: n('seed', values.seed),
    now,
    reset: values.reset === true,
    method,
    concurrency: n('concurrency', values.concurrency),
    batchUsers: n('batch-users', values['batch-users']),
    stats: values['no-stats'] !== true
  })
  const total = r.loadMs + r.statsMs
  console.log(`seeded ${fmt(r.rows)} rows in ${(r.loadMs / 1000).toFixed(1)} s (${fmt(r.rowsPerSec)} rows/s, ${r.method})` +
    (r.statsMs ? `, global stats ${(r.statsMs / 1000).toFixed(1)} s, total ${(total / 1000).toFixed(1)} s` : ''))
}

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`seed failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
