import t from 'tap'
import { setImmediate, setTimeout as sleep } from 'node:timers/promises'
import { adminHeaders, withApp } from './helpers/app.ts'

// Fills race against invalidations on three replicas. Each round posts one new search for the user
// (which invalidates it everywhere) while reads keep filling the caches on all replicas. Every read
// that starts after an event's 2xx must include that event: search_count never goes backwards
// past the last acknowledged write.
const { apps } = await withApp(t, { replicas: 3, config: { LEASE_WAIT_MS: 50 } })

// Slow MySQL down on the way back (the query is real; its answer is held 0-15 ms), so fills that
// read the old events are still in flight when the invalidation lands: the race under test.
for (const app of apps) {
  const load = app.userStore.loadUsers.bind(app.userStore)
  app.userStore.loadUsers = async (...args) => {
    const rows = await load(...args)
    await sleep(Math.random() * 15)
    return rows
  }
}

const ROUNDS = 300
const USERS = [91, 92, 93]

t.test(`${ROUNDS} rounds of fills racing invalidations: no read older than the last acknowledged write`, async (t) => {
  const acked = new Map<number, number>()
  for (const u of USERS) acked.set(u, (await apps[0]!.inject(`/recommend/${u}`)).json().metadata.search_count)
  let stale = 0
  let reads = 0
  // A FALLBACK (no personalised answer in time on a loaded machine) is marked degraded and holds
  // no user data: it is not a stale read, but it is counted.
  let degraded = 0
  const isStale = (body: { metadata: { search_count: number, degraded: boolean } }, floor: number) => {
    if (body.metadata.degraded) { degraded++; return false }
    return body.metadata.search_count < floor
  }
  let stop = false

  // Readers: keep every replica's caches busy filling, and check each answer against the count
  // acknowledged before the read started.
  const readers = apps.map(async (app, i) => {
    let n = i
    while (!stop) {
      const u = USERS[n++ % USERS.length] as number
      const floor = acked.get(u) as number
      // Every limit is served by the one answer per user: after each invalidation the next reads
      // on every replica are fills racing the next write.
      const res = await app.inject(`/recommend/${u}?limit=${1 + (n % 40)}`)
      reads++
      // inject() of an LRU hit never touches I/O; yield so MySQL and Redis replies get processed,
      // as they would between real HTTP requests.
      await setImmediate()
      if (res.statusCode !== 200) continue
      if (isStale(res.json(), floor)) stale++
    }
  })

  for (let round = 0; round < ROUNDS; round++) {
    const u = USERS[round % USERS.length] as number
    const writer = apps[round % apps.length]!
    // Every replica starts a fill for the user (its caches were just emptied), and the event lands
    // while those fills are reading MySQL or scoring: the fills must not cache what they read.
    await writer.inject({ method: 'POST', url: `/invalidate-cache/${u}`, headers: adminHeaders })
    const fills = apps.map((app) => app.inject(`/recommend/${u}`))
    await sleep(Math.random() * 8)
    const res = await writer.inject({ method: 'POST', url: '/events', headers: adminHeaders, payload: [{ type: 'search', user_id: u, category: 'books' }] })
    if (res.statusCode !== 201) { t.fail(`event post failed: ${res.body}`); break }
    acked.set(u, (acked.get(u) as number) + 1)
    await Promise.all(fills)
    // Reads right after the ack, on every replica, must see it.
    for (const app of apps) {
      reads++
      if (isStale((await app.inject(`/recommend/${u}`)).json(), acked.get(u) as number)) stale++
    }
  }
  stop = true
  await Promise.all(readers)
  t.equal(stale, 0, `${reads} reads (${degraded} of them FALLBACK), none older than the last acknowledged invalidation`)
  t.ok(degraded < reads / 100, 'nearly all answers personalised')
  t.ok(reads > ROUNDS * 3)
})
