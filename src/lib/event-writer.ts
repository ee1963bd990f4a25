import type { Pool, PoolConnection, ResultSetHeader } from 'mysql2/promise'
import { RecError, unavailable } from './errors.ts'
import { MAX_USER_ID, invalidUserIdsMessage } from './user-id.ts'
import {
  MAX_EVENTS_PER_BATCH, checkPurchaseEvent, checkSearchEvent, type EntryError, type EventInput
} from '../schemas/events.ts'
import { acquireConnection, timedQuery } from './mysql-deadline.ts'

// The event schemas (and their compiled checks) are in schemas/events.ts, with the route's.
export { MAX_EVENTS_PER_BATCH, type EntryError, type EventInput }
export const MAX_FUTURE_SKEW_MS = 5 * 60_000
export const MAX_EVENT_AGE_MS = 365 * 86_400_000

/** A batch with bad entries: every one is named (in the body's `entries`, sent by the app's error
 *  handler as the error's details), and nothing was written. */
export class InvalidEventsError extends RecError {
  constructor (readonly entries: EntryError[], total: number) {
    super(400, 'REC_ERR_INVALID_EVENTS',
      `${entries.length} of ${total} event${total === 1 ? ' is' : 's are'} invalid; nothing was stored`, undefined, { entries })
  }
}

export interface StoredEvents {
  searches: number
  purchases: number
  /** distinct users with a stored event, in order of first appearance */
  userIds: number[]
}

export interface EventWriterOptions {
  /** bounds each query and the wait for a pooled connection */
  queryTimeoutMs: number
  now?: () => number
}

interface SearchRow { index: number, userId: number, category: string, query: string | undefined, at: Date }
interface PurchaseRow { index: number, userId: number, itemId: number, category: string | undefined, at: Date }
/** What the lookups found: category name → id, item id → its category. */
interface References { categoryIds: Map<string, number>, items: Map<number, { id: number, name: string }> }

/** Validates a batch of search and purchase events (shape, then users, categories and items with one
 *  query per table for the whole batch) and stores it in one transaction: either every event is
 *  written or none is. */
export class EventWriter {
  private readonly now: () => number

  constructor (private readonly pool: Pool, private readonly opts: EventWriterOptions) {
    this.now = opts.now ?? Date.now
  }

  async write (raw: unknown): Promise<StoredEvents> {
    if (!Array.isArray(raw)) throw new RecError(400, 'REC_ERR_INVALID_EVENTS', 'the body must be a JSON array of events')
    if (raw.length === 0) throw new RecError(400, 'REC_ERR_INVALID_EVENTS', 'the batch is empty: send 1 to 1000 events')
    if (raw.length > MAX_EVENTS_PER_BATCH) {
      throw new RecError(400, 'REC_ERR_TOO_MANY_EVENTS', `too many events: ${raw.length} (at most ${MAX_EVENTS_PER_BATCH} per call); split the batch`)
    }

    const errors = new Map<number, string[]>()
    const fail = (index: number, message: string) => {
      const list = errors.get(index)
      if (list) list.push(message)
      else errors.set(index, [message])
    }
    const invalid = () => new InvalidEventsError(
      [...errors].sort((a, b) => a[0] - b[0]).map(([index, list]) => ({ index, error: list.join('; ') })), raw.length)
    const { searches, purchases } = this.checkShapes(raw, fail)
    if (searches.length + purchases.length === 0) throw invalid()

    const conn = await this.acquire()
    let inTransaction = false
    try {
      // Checked even when some entries are already known to be bad, so that every bad entry is named.
      const refs = await this.checkReferences(conn, searches, purchases, fail)
      if (errors.size > 0) throw invalid()

      await this.query(conn, 'START TRANSACTION')
      inTransaction = true
      if (searches.length > 0) {
        await this.query(conn, 'INSERT INTO searches (user_id, query, category_id, searched_at) VALUES ?',
          [searches.map((s) => [s.userId, s.query ?? s.category, refs.categoryIds.get(s.category), s.at])])
      }
      if (purchases.length > 0) {
        await this.query(conn, 'INSERT INTO purchases (user_id, item_id, category_id, purchased_at) VALUES ?',
          [purchases.map((p) => [p.userId, p.itemId, refs.items.get(p.itemId)?.id, p.at])])
      }
      await this.query(conn, 'COMMIT')
    } catch (err) {
      await this.dispose(conn, inTransaction, err)
      throw mapDbError(err)
    }
    conn.release()

    const userIds = [...new Set([...searches, ...purchases].sort((a, b) => a.index - b.index).map((e) => e.userId))]
    return { searches: searches.length, purchases: purchases.length, userIds }
  }

  /** Shape and time checks, no I/O. Returns the well-formed entries; the rest are reported. */
  private checkShapes (raw: unknown[], fail: (index: number, message: string) => void): { searches: SearchRow[], purchases: PurchaseRow[] } {
    const now = this.now()
    const searches: SearchRow[] = []
    const purchases: PurchaseRow[] = []
    raw.forEach((entry, index) => {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return fail(index, 'must be an object')
      const type = (entry as { type?: unknown }).type
      if (type === undefined) return fail(index, 'missing field type ("search" or "purchase")')
      if (type !== 'search' && type !== 'purchase') return fail(index, `type must be "search" or "purchase", got ${preview(type)}`)
      const validator = type === 'search' ? checkSearchEvent : checkPurchaseEvent
      if (!validator.Check(entry)) return fail(index, describeErrors(validator.Errors(entry), entry))

      const ev = entry as EventInput
      let at: Date
      if (ev.at === undefined) {
        at = new Date(now)
      } else {
        const ms = Date.parse(ev.at)
        if (Number.isNaN(ms)) return fail(index, `at ${preview(ev.at)} is not a valid timestamp`)
        if (ms > now + MAX_FUTURE_SKEW_MS) return fail(index, `at ${ev.at} is more than 5 minutes in the future`)
        if (ms < now - MAX_EVENT_AGE_MS) return fail(index, `at ${ev.at} is more than 365 days in the past`)
        at = new Date(ms)
      }
      if (ev.type === 'search') searches.push({ index, userId: ev.user_id, category: ev.category, query: ev.query, at })
      else purchases.push({ index, userId: ev.user_id, itemId: ev.item_id, category: ev.category, at })
    })
    return { searches, purchases }
  }

  /** One query per table for the whole batch: the users, the searched categories and the items. */
  private async checkReferences (conn: PoolConnection, searches: SearchRow[], purchases: PurchaseRow[], fail: (index: number, message: string) => void): Promise<References> {
    const userIds = [...new Set([...searches, ...purchases].map((e) => e.userId))]
    const categoryNames = [...new Set(searches.map((s) => s.category))]
    const itemIds = [...new Set(purchases.map((p) => p.itemId))]

    const users = userIds.length === 0 ? [] : await this.select<{ id: number }>(conn, 'SELECT id FROM users WHERE id IN (?)', [userIds])
    const categories = categoryNames.length === 0 ? [] : await this.select<{ id: number, name: string }>(conn, 'SELECT id, name FROM categories WHERE name IN (?)', [categoryNames])
    const items = itemIds.length === 0 ? [] : await this.select<{ id: number, category_id: number, category: string }>(conn,
      'SELECT i.id, i.category_id, c.name AS category FROM items i JOIN categories c ON c.id = i.category_id WHERE i.id IN (?)', [itemIds])

    const knownUsers = new Set(users.map((u) => Number(u.id)))
    // Names are matched exactly: the column's collation would also match "Electronics" or
    // "electronics ", and a write API should not guess.
    const categoryIds = new Map(categories.map((c) => [c.name, Number(c.id)]))
    const itemCategories = new Map(items.map((i) => [Number(i.id), { id: Number(i.category_id), name: i.category }]))

    for (const s of searches) {
      if (!knownUsers.has(s.userId)) fail(s.index, `user ${s.userId} does not exist`)
      if (!categoryIds.has(s.category)) fail(s.index, `unknown category ${preview(s.category)}`)
    }
    for (const p of purchases) {
      if (!knownUsers.has(p.userId)) fail(p.index, `user ${p.userId} does not exist`)
      const item = itemCategories.get(p.itemId)
      if (!item) fail(p.index, `item ${p.itemId} does not exist`)
      else if (p.category !== undefined && p.category !== item.name) fail(p.index, `item ${p.itemId} is in category ${preview(item.name)}, not ${preview(p.category)}`)
    }
    return { categoryIds, items: itemCategories }
  }

  /** A pooled connection, waiting at most the query timeout; one that arrives too late is released. */
  private acquire (): Promise<PoolConnection> {
    return acquireConnection(this.pool, this.opts.queryTimeoutMs)
  }

  // The connection is destroyed after a timeout (see dispose), which makes the server roll back.
  private async query (conn: PoolConnection, sql: string, values?: unknown[]): Promise<ResultSetHeader> {
    return (await timedQuery(conn, sql, values, this.opts.queryTimeoutMs)) as unknown as ResultSetHeader
  }

  private select<T> (conn: PoolConnection, sql: string, values: unknown[]): Promise<T[]> {
    return timedQuery<T>(conn, sql, values, this.opts.queryTimeoutMs)
  }

  /** After a failure: roll back and return a healthy connection to the pool; destroy one whose state
   *  is unknown (a timed-out or broken query), which also ends its transaction on the server. */
  private async dispose (conn: PoolConnection, inTransaction: boolean, err: unknown): Promise<void> {
    if (!(err instanceof InvalidEventsError) && !isServerError(err)) {
      conn.destroy()
      return
    }
    if (inTransaction) {
      try {
        await this.query(conn, 'ROLLBACK')
      } catch {
        conn.destroy()
        return
      }
    }
    conn.release()
  }
}

/** An error the server answered with (bad SQL, constraint, lock wait): the connection is still usable. */
function isServerError (err: unknown): boolean {
  const e = err as { sqlState?: unknown, fatal?: unknown }
  return typeof e?.sqlState === 'string' && e.fatal !== true
}

function mapDbError (err: unknown): unknown {
  if (err instanceof RecError) return err
  const e = err as { errno?: number, code?: string, fatal?: boolean }
  // A user or item deleted between the check and the insert (foreign key).
  if (e?.errno === 1452) return Object.assign(new RecError(409, 'REC_ERR_CONFLICT', 'a referenced user, item or category was removed while the events were being stored; nothing was stored'), { cause: err })
  // Lock wait timeout, deadlock, query timeout, lost connection: nothing was committed, retry later.
  if (e?.errno === 1205 || e?.errno === 1213 || e?.code === 'PROTOCOL_SEQUENCE_TIMEOUT' || e?.fatal === true) {
    return Object.assign(unavailable('database'), { cause: err })
  }
  return err
}

function describeErrors (errors: Array<{ keyword: string, instancePath: string, message: string, params: unknown }>, entry: object): string {
  const out: string[] = []
  for (const e of errors) {
    const params = e.params as { requiredProperties?: string[], additionalProperties?: string[] }
    const field = e.instancePath.replace(/^\//, '').replaceAll('/', '.')
    if (e.keyword === 'boolean') continue // the "schema is false" twin of additionalProperties
    if (e.keyword === 'required' && params.requiredProperties) {
      const names = params.requiredProperties
      out.push(`missing field${names.length > 1 ? 's' : ''} ${names.join(', ')}`)
    } else if (e.keyword === 'additionalProperties' && params.additionalProperties) {
      const names = params.additionalProperties
      out.push(`unknown field${names.length > 1 ? 's' : ''} ${names.join(', ')}`)
    } else if (field === 'user_id') {
      // Named with the message every route gives for a bad id.
      out.push(`user_id ${e.message}: ${invalidUserIdsMessage([(entry as { user_id?: unknown }).user_id]).replace(/: expected .*/, '')} (events take a JSON integer from 1 to ${MAX_USER_ID})`)
    } else {
      out.push(field ? `${field} ${e.message}` : e.message)
    }
  }
  return [...new Set(out)].join('; ') || 'invalid event'
}

function preview (v: unknown): string {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
