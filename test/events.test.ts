import t from 'tap'
import mysql from 'mysql2/promise'
import { adminHeaders, ADMIN_TOKEN, withApp } from './helpers/app.ts'
import { DAY, MISSING_USER } from '../tools/fixture.ts'

const { app, services } = await withApp(t)

const db = await mysql.createConnection({ uri: services.mysql.url, timezone: 'Z' })
t.teardown(() => db.end())

interface Rec {
  recommendations: { recommended_categories: string[], category_scores: Array<{ category: string }>, items: Array<{ item_id: number }> }
  metadata: { search_count: number, purchase_count: number }
}

const post = (payload: unknown, headers: { authorization?: string } = adminHeaders) =>
  app.inject({ method: 'POST', url: '/events', headers, payload: payload as object })

async function counts (): Promise<{ searches: number, purchases: number }> {
  const [[s], [p]] = await Promise.all([
    db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM searches').then(([r]) => r),
    db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM purchases').then(([r]) => r)
  ])
  return { searches: Number(s?.n), purchases: Number(p?.n) }
}

type Asserts = Pick<typeof t, 'equal'>

/** Reads twice so the answer is cached, and checks it is: the next read must come from L1. */
async function warm (t: Asserts, userId: number, query = ''): Promise<Rec> {
  await app.inject(`/recommend/${userId}${query}`)
  const again = await app.inject(`/recommend/${userId}${query}`)
  t.equal(again.headers['x-cache'], 'HIT-L1', `user ${userId} is cached before the events`)
  return again.json()
}

t.test('a search in a new category: the next read is a MISS that shows it', async (t) => {
  // user 20 leans to sports and touched kitchen; garden is new
  const before = await warm(t, 20)
  t.notOk(before.recommendations.recommended_categories.includes('garden'))

  const res = await post([{ type: 'search', user_id: 20, category: 'garden' }])
  t.equal(res.statusCode, 201)
  t.match(res.json(), { stored: { searches: 1, purchases: 0 }, invalidated: [20], replicas: { acked: Number, expected: Number } })

  const after = await app.inject('/recommend/20')
  t.equal(after.headers['x-cache'], 'MISS')
  const body: Rec = after.json()
  t.ok(body.recommendations.recommended_categories.includes('garden'))
  t.ok(body.recommendations.category_scores.some((s) => s.category === 'garden'))
  t.equal(body.metadata.search_count, before.metadata.search_count + 1)

  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT query, category_id, searched_at FROM searches WHERE user_id = 20 ORDER BY id DESC LIMIT 1')
  t.equal(rows[0]?.query, 'garden', 'the query defaults to the category name')
  t.equal(rows[0]?.category_id, 3)
  t.ok(Math.abs((rows[0]?.searched_at as Date).getTime() - Date.now()) < 60_000, 'at defaults to now')
})

t.test('a purchase counts, and the bought item is no longer recommended', async (t) => {
  // user 21 leans to kitchen (items 601..605) and bought 601
  const before = await warm(t, 21, '?limit=100')
  t.ok(before.recommendations.items.some((i) => i.item_id === 602), 'item 602 is recommended before')

  const at = new Date(Date.now() - 2 * DAY).toISOString()
  const res = await post([{ type: 'purchase', user_id: 21, item_id: 602, category: 'kitchen', at }])
  t.equal(res.statusCode, 201)
  t.match(res.json(), { stored: { searches: 0, purchases: 1 }, invalidated: [21] })

  const after = await app.inject('/recommend/21?limit=100')
  t.equal(after.headers['x-cache'], 'MISS')
  const body: Rec = after.json()
  t.equal(body.metadata.purchase_count, before.metadata.purchase_count + 1)
  t.notOk(body.recommendations.items.some((i) => i.item_id === 602))

  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT category_id, purchased_at FROM purchases WHERE user_id = 21 AND item_id = 602')
  t.equal(rows.length, 1)
  t.equal(rows[0]?.category_id, 6, 'the category comes from the item')
  t.equal((rows[0]?.purchased_at as Date).toISOString(), at, 'at is stored as given, in UTC')
})

t.test('a batch with bad entries names exactly those and writes nothing', async (t) => {
  const before = await counts()
  await warm(t, 22)
  const res = await post([
    { type: 'search', user_id: 22, category: 'books' },
    { type: 'search', user_id: MISSING_USER, category: 'books' },
    { type: 'purchase', user_id: 22, item_id: 101 },
    { type: 'purchase', user_id: 22, item_id: 99_999 },
    { type: 'search', user_id: 22, category: 'books', query: 'novels' },
    { type: 'search', user_id: 22 },
    { type: 'purchase', user_id: 23, item_id: 205, at: new Date(Date.now() - DAY).toISOString() }
  ])
  t.equal(res.statusCode, 400)
  const body = res.json()
  t.equal(body.code, 'REC_ERR_INVALID_EVENTS')
  t.equal(body.statusCode, 400)
  t.equal(body.error, 'Bad Request')
  t.match(body.message, /3 of 7 events are invalid/)
  t.same(body.entries.map((e: { index: number }) => e.index), [1, 3, 5])
  t.match(body.entries, [
    { index: 1, error: new RegExp(`user ${MISSING_USER} does not exist`) },
    { index: 3, error: /item 99999 does not exist/ },
    { index: 5, error: /missing field category/ }
  ])
  t.same(await counts(), before, 'nothing was written')
  t.equal((await app.inject('/recommend/22')).headers['x-cache'], 'HIT-L1', 'nothing was invalidated')
})

t.test('each kind of bad entry is rejected', async (t) => {
  const before = await counts()
  const now = Date.now()
  const cases: Array<[string, unknown, RegExp]> = [
    ['unknown user', { type: 'search', user_id: MISSING_USER, category: 'books' }, /user 999999 does not exist/],
    ['unknown category', { type: 'search', user_id: 1, category: 'spaceships' }, /unknown category "spaceships"/],
    ['category names match exactly', { type: 'search', user_id: 1, category: 'Books' }, /unknown category "Books"/],
    ['unknown item', { type: 'purchase', user_id: 1, item_id: 424242 }, /item 424242 does not exist/],
    ['purchase category disagrees with the item', { type: 'purchase', user_id: 1, item_id: 101, category: 'books' }, /item 101 is in category "electronics", not "books"/],
    ['missing user_id', { type: 'search', category: 'books' }, /missing field user_id/],
    ['missing item_id', { type: 'purchase', user_id: 1 }, /missing field item_id/],
    ['missing type', { user_id: 1, category: 'books' }, /missing field type/],
    ['unknown type', { type: 'click', user_id: 1, category: 'books' }, /type must be "search" or "purchase"/],
    ['user_id of the wrong type', { type: 'search', user_id: '1', category: 'books' }, /user_id must be integer/],
    ['item_id of the wrong type', { type: 'purchase', user_id: 1, item_id: 1.5 }, /item_id must be integer/],
    ['user_id out of range', { type: 'search', user_id: 2 ** 31, category: 'books' }, /user_id/],
    ['unknown field', { type: 'search', user_id: 1, category: 'books', item_id: 101 }, /unknown field item_id/],
    ['query too long', { type: 'search', user_id: 1, category: 'books', query: 'x'.repeat(256) }, /query/],
    ['not an object', 42, /must be an object/],
    ['timestamp without zone', { type: 'search', user_id: 1, category: 'books', at: '2025-01-01T10:00:00' }, /at must match format/],
    ['not a timestamp', { type: 'search', user_id: 1, category: 'books', at: 'yesterday' }, /at must match format/],
    ['future timestamp', { type: 'search', user_id: 1, category: 'books', at: new Date(now + 10 * 60_000).toISOString() }, /more than 5 minutes in the future/],
    ['timestamp older than 365 days', { type: 'purchase', user_id: 1, item_id: 101, at: new Date(now - 400 * DAY).toISOString() }, /more than 365 days in the past/]
  ]
  for (const [name, entry, error] of cases) {
    const res = await post([{ type: 'search', user_id: 1, category: 'books' }, entry])
    t.equal(res.statusCode, 400, name)
    t.equal(res.json().code, 'REC_ERR_INVALID_EVENTS', name)
    t.same(res.json().entries.map((e: { index: number }) => e.index), [1], name)
    t.match(res.json().entries[0].error, error, name)
  }

  const slightlyAhead = await post([{ type: 'search', user_id: 1, category: 'books', at: new Date(now + 60_000).toISOString() }])
  t.equal(slightlyAhead.statusCode, 201, 'a clock up to 5 minutes ahead is tolerated')
  before.searches += 1

  const tooMany = await post(Array.from({ length: 1001 }, () => ({ type: 'search', user_id: 1, category: 'books' })))
  t.equal(tooMany.statusCode, 400)
  t.equal(tooMany.json().code, 'REC_ERR_TOO_MANY_EVENTS')
  t.match(tooMany.json().message, /too many events: 1001 \(at most 1000 per call\)/)
  t.equal((await post([])).statusCode, 400, 'an empty batch')
  t.equal((await post({ type: 'search', user_id: 1, category: 'books' })).statusCode, 400, 'an object instead of an array')
  t.same(await counts(), before, 'none of the bad batches wrote anything')
})

t.test('1000 events in one call are stored in one go', async (t) => {
  const before = await counts()
  const events = Array.from({ length: 1000 }, (_v, i) => i % 2 === 0
    ? { type: 'search', user_id: 40 + (i % 10), category: 'music', query: `q${i}` }
    : { type: 'purchase', user_id: 40 + (i % 10), item_id: 701 })
  const res = await post(events)
  t.equal(res.statusCode, 201)
  t.same(res.json().stored, { searches: 500, purchases: 500 })
  t.same(res.json().invalidated, [40, 41, 42, 43, 44, 45, 46, 47, 48, 49])
  t.same(await counts(), { searches: before.searches + 500, purchases: before.purchases + 500 })
})

t.test('the admin token is required', async (t) => {
  const before = await counts()
  const event = [{ type: 'search', user_id: 1, category: 'books' }]
  for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token!!' }, { authorization: ADMIN_TOKEN }]) {
    const res = await post(event, headers)
    t.equal(res.statusCode, 401)
    t.match(res.headers['content-type'], /application\/json/)
    t.equal(res.json().code, 'REC_ERR_UNAUTHORIZED')
  }
  t.same(await counts(), before)
})

t.test('events for several users invalidate every one of them', async (t) => {
  const users = [30, 31, 32]
  for (const id of users) await warm(t, id)
  await warm(t, 33)
  const res = await post([
    { type: 'search', user_id: 30, category: 'toys', query: 'lego' },
    { type: 'purchase', user_id: 31, item_id: 405 },
    { type: 'search', user_id: 32, category: 'toys' },
    { type: 'search', user_id: 30, category: 'books' }
  ])
  t.equal(res.statusCode, 201)
  t.same(res.json().stored, { searches: 3, purchases: 1 })
  t.same(res.json().invalidated, users)
  for (const id of users) t.equal((await app.inject(`/recommend/${id}`)).headers['x-cache'], 'MISS', `user ${id} is recomputed`)
  t.equal((await app.inject('/recommend/33')).headers['x-cache'], 'HIT-L1', 'other users keep their cached answers')
})

/** Records (and optionally rewrites) the statements sent on connections taken from the app's pool. */
function spyOnStatements (t: { teardown: (fn: () => void) => void }, rewrite = (sql: string) => sql): string[] {
  const statements: string[] = []
  const pool = app.mysql
  const getConnection = pool.getConnection.bind(pool)
  pool.getConnection = async () => {
    const conn = await getConnection()
    const query = conn.query.bind(conn) as (...args: unknown[]) => unknown
    ;(conn as unknown as { query: unknown }).query = (opts: { sql: string, timeout?: number }, ...rest: unknown[]) => {
      statements.push(opts.sql.trim().split(/\s+/).slice(0, 3).join(' '))
      return query({ ...opts, sql: rewrite(opts.sql) }, ...rest)
    }
    t.teardown(() => { (conn as unknown as { query: unknown }).query = query })
    return conn
  }
  t.teardown(() => { pool.getConnection = getConnection })
  return statements
}

t.test('a batch is checked with one query per table and written in one transaction', async (t) => {
  const statements = spyOnStatements(t)
  const events = Array.from({ length: 300 }, (_v, i) => i % 3 === 0
    ? { type: 'purchase', user_id: 50 + (i % 20), item_id: 100 * (1 + (i % 8)) + 1 + (i % 5) }
    : { type: 'search', user_id: 50 + (i % 20), category: ['books', 'garden', 'toys', 'music'][i % 4] })
  const res = await post(events)
  t.equal(res.statusCode, 201)
  t.same(statements, [
    'SELECT id FROM', 'SELECT id, name', 'SELECT i.id, i.category_id,',
    'START TRANSACTION', 'INSERT INTO searches', 'INSERT INTO purchases', 'COMMIT'
  ])
})

t.test('a failure after the first insert rolls the whole batch back', async (t) => {
  const before = await counts()
  await warm(t, 60)
  const statements = spyOnStatements(t, (sql) => sql.replace('INSERT INTO purchases', 'INSERT INTO no_such_table'))
  const res = await post([{ type: 'search', user_id: 60, category: 'books' }, { type: 'purchase', user_id: 60, item_id: 201 }])
  t.equal(res.statusCode, 500)
  t.same(statements.slice(-3), ['INSERT INTO searches', 'INSERT INTO purchases', 'ROLLBACK'])
  t.same(await counts(), before, 'the search written first was rolled back')
  t.equal((await app.inject('/recommend/60')).headers['x-cache'], 'HIT-L1', 'nothing was invalidated')
  for (let i = 0; i < 8; i++) t.equal((await post([{ type: 'search', user_id: 60, category: 'books' }])).statusCode, 201, 'the connection went back to the pool')
})
