import mysql from 'mysql2/promise'
import { migrate } from '../src/lib/migrations.ts'
import { refreshGlobalStats } from '../src/lib/global-stats-refresh.ts'

export const DAY = 86_400_000

/** A small, exact data set for integration tests: known users with known events, so answers can be
 *  asserted. Users 1..FIXTURE_USERS have events; COLD_USER exists with none; MISSING_USER does not exist. */
export const FIXTURE_USERS = 120
export const COLD_USER = 5000
export const MISSING_USER = 999_999
export const CATEGORIES = ['electronics', 'books', 'garden', 'toys', 'sports', 'kitchen', 'music', 'fashion'] as const

export async function loadFixture (mysqlUrl: string, now = Date.now()): Promise<void> {
  await migrate(mysqlUrl)
  const db = await mysql.createConnection({ uri: mysqlUrl, timezone: 'Z' })
  try {
    await db.query('INSERT INTO categories (id, name) VALUES ?', [CATEGORIES.map((name, i) => [i + 1, name])])
    // 5 items per category: item id = category * 100 + n
    const items = CATEGORIES.flatMap((_c, i) => [1, 2, 3, 4, 5].map((n) => [(i + 1) * 100 + n, i + 1, `item ${(i + 1) * 100 + n}`]))
    await db.query('INSERT INTO items (id, category_id, name) VALUES ?', [items])
    const users = [...Array.from({ length: FIXTURE_USERS }, (_v, i) => [i + 1, `user ${i + 1}`]), [COLD_USER, 'cold user']]
    await db.query('INSERT INTO users (id, name) VALUES ?', [users])
    const searches: unknown[][] = []
    const purchases: unknown[][] = []
    for (let u = 1; u <= FIXTURE_USERS; u++) {
      // Each user leans to one category (u mod 8) and touches the next one a little.
      const main = (u % CATEGORIES.length) + 1
      const side = ((u + 1) % CATEGORIES.length) + 1
      searches.push([u, `${CATEGORIES[main - 1]} deals`, main, new Date(now - 1 * DAY)])
      searches.push([u, `${CATEGORIES[main - 1]} best`, main, new Date(now - 7 * DAY)])
      searches.push([u, `${CATEGORIES[side - 1]} ideas`, side, new Date(now - 2 * DAY)])
      purchases.push([u, main * 100 + 1 + (u % 3), main, new Date(now - 14 * DAY)])
    }
    await db.query('INSERT INTO searches (user_id, query, category_id, searched_at) VALUES ?', [searches])
    await db.query('INSERT INTO purchases (user_id, item_id, category_id, purchased_at) VALUES ?', [purchases])
    await refreshGlobalStats(db as unknown as mysql.Pool, { now: new Date(now) })
  } finally {
    await db.end()
  }
}
