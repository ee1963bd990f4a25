import t from 'tap'
import { AnswerLifetimes } from '../src/lib/cached-answer.ts'
import { scoringsOf, waitFor, withApp } from './helpers/app.ts'

// Answers are fresh for 1 s (L1 for 200 ms), then within a 60 s grace period.
const { app } = await withApp(t, { config: { L1_TTL_MS: 200, L2_TTL_S: 1, CACHE_GRACE_S: 60, CACHE_TTL_JITTER: 0 } })

t.test('past fresh the cached answer is served STALE at once and refreshed once in the background', async (t) => {
  const first = await app.inject('/recommend/71')
  t.equal(first.headers['x-cache'], 'MISS')
  t.match(first.headers['cache-control'], /^max-age=[01], stale-while-revalidate=60, stale-if-error=60$/)

  await new Promise((resolve) => setTimeout(resolve, 1100))
  const before = await scoringsOf([app])
  const stale = await Promise.all(Array.from({ length: 20 }, () => app.inject('/recommend/71')))
  t.ok(stale.every((r) => r.statusCode === 200 && r.headers['x-cache'] === 'STALE'), 'every concurrent reader gets the stale answer')
  t.ok(stale.every((r) => r.body === first.body), 'the old body, unchanged')
  t.match(stale[0]?.headers['cache-control'], /^max-age=0, stale-while-revalidate=(5[89]|60), stale-if-error=(5[89]|60)$/)

  await waitFor('the background refresh', async () => {
    const r = await app.inject('/recommend/71')
    return r.headers['x-cache'] === 'HIT-L1' || r.headers['x-cache'] === 'HIT-L2'
  })
  t.equal(await scoringsOf([app]) - before, 1, 'one refresh, not one per reader')
  const fresh = await app.inject('/recommend/71')
  t.not(fresh.json().metadata.generated_at, first.json().metadata.generated_at, 'a newer answer')
})

t.test('TTLs carry jitter so entries written together do not expire together', async (t) => {
  const lifetimes = new AnswerLifetimes({ l2TtlS: 600, graceS: 60, notFoundTtlMs: 1000, ttlJitter: 0.1 })
  const now = Date.now()
  const fresh = Array.from({ length: 200 }, () => lifetimes.stamp(200, { head: '{}', items: '', ends: [], tail: '' }).freshUntil - now)
  t.ok(fresh.every((ms) => ms >= 540_000 - 50 && ms <= 660_000 + 50), 'within ±10 %')
  t.ok(new Set(fresh.map((ms) => Math.round(ms / 1000))).size > 50, 'spread out')
})
