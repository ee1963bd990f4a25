// GET /metrics as Prometheus reads it: a valid exposition (every family typed and described,
// counters ending in _total, histograms consistent, bounded labels with no user id), and known
// traffic moving the right series: answers by tier and status, latency by tier, per-route
// durations, Redis and MySQL calls by operation, the pool and the scorer, invalidations and their
// acks, the subscription, the breakers, the statistics, the event loop.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { parseExposition, type Exposition } from '../tools/monitor/exposition.ts'
import { adminHeaders, waitFor, withApp } from './helpers/app.ts'
import { COLD_USER, FIXTURE_USERS, MISSING_USER } from '../tools/fixture.ts'

const { apps } = await withApp(t, { replicas: 2 })
const app = apps[0]!
const peer = apps[1]!

async function scrape (a: FastifyInstance = app): Promise<{ text: string, expo: Exposition }> {
  const res = await a.inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  return { text: res.body, expo: parseExposition(res.body) }
}

/** The sum of a series' samples whose labels include `match`. */
function value (expo: Exposition, name: string, match: Record<string, string> = {}): number {
  return expo.samples
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
}

const has = (expo: Exposition, name: string) => expo.samples.some((s) => s.name === name)

/** The family a sample belongs to: histogram parts and counters' _total map to their TYPE line. */
function familyOf (expo: Exposition, sample: string): string | undefined {
  for (const candidate of [sample, sample.replace(/_(bucket|sum|count)$/, ''), sample.replace(/_total$/, '')]) {
    if (expo.types.has(candidate)) return candidate
  }
  return undefined
}

t.test('the exposition is valid: typed, described, conventional names, consistent histograms, bounded labels', async (t) => {
  await app.inject({ method: 'GET', url: '/recommend/1' })
  const { text, expo } = await scrape()
  t.same(expo.errors, [], 'every line parses')
  t.ok(expo.samples.length > 50, `${expo.samples.length} samples`)
  for (const s of expo.samples) {
    const family = familyOf(expo, s.name)
    if (family === undefined) { t.fail(`${s.name} has no # TYPE`); continue }
    if (!expo.help.has(family)) t.fail(`${family} has no # HELP`)
    const type = expo.types.get(family)
    if (type === 'counter' && !s.name.endsWith('_total')) t.fail(`counter ${s.name} does not end in _total`)
    if (s.name.startsWith('recsvc_') && type === 'gauge' && s.name.endsWith('_total')) t.fail(`gauge ${s.name} ends in _total`)
    for (const [k, v] of Object.entries(s.labels)) {
      if (k === 'user_id' || k === 'key' || k === 'api_key') t.fail(`${s.name} has an unbounded label ${k}`)
      if (k !== 'le' && k !== 'quantile' && k !== 'version' && /^\d{3,}$/.test(v) && !/^[1-5]\d\d$/.test(v)) t.fail(`${s.name}{${k}="${v}"} looks like an id`)
    }
  }
  // Histograms: cumulative buckets ending in +Inf equal to _count, per label set.
  const histograms = [...expo.types].filter(([, type]) => type === 'histogram').map(([name]) => name)
  t.ok(histograms.includes('http_request_duration_seconds'), 'per-route durations (fastify-metrics)')
  for (const h of histograms) {
    const groups = new Map<string, Array<{ le: number, v: number }>>()
    for (const s of expo.samples.filter((x) => x.name === `${h}_bucket`)) {
      const key = JSON.stringify(Object.entries(s.labels).filter(([k]) => k !== 'le').sort())
      const list = groups.get(key) ?? []
      list.push({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), v: s.value })
      groups.set(key, list)
    }
    for (const [key, buckets] of groups) {
      buckets.sort((a, b) => a.le - b.le)
      const ordered = buckets.every((b, i) => i === 0 || b.v >= buckets[i - 1]!.v)
      if (!ordered) t.fail(`${h}${key}: buckets not cumulative`)
      const labels = Object.fromEntries(JSON.parse(key) as Array<[string, string]>)
      const count = expo.samples.find((s) => s.name === `${h}_count` && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()))
      if (buckets.at(-1)?.le !== Infinity || count === undefined || count.value !== buckets.at(-1)?.v) t.fail(`${h}${key}: +Inf bucket and _count disagree`)
    }
  }
  t.match(text, /^# TYPE nodejs_heap_size_used_bytes gauge$/m, 'Node default metrics')
  t.match(text, /^# TYPE process_resident_memory_bytes gauge$/m)
  t.notMatch(text, /recsvc_event_loop_delay_p99_seconds/, 'no per-scrape-reset gauge: several scrapers read the same histogram')
})

t.test('answers by tier and status, single and batch alike, and their latency by tier', async (t) => {
  const before = (await scrape()).expo
  const u = 7
  t.equal((await app.inject({ method: 'GET', url: `/recommend/${u}` })).headers['x-cache'], 'MISS')
  t.equal((await app.inject({ method: 'GET', url: `/recommend/${u}` })).headers['x-cache'], 'HIT-L1')
  t.equal((await app.inject({ method: 'GET', url: `/recommend/${MISSING_USER}` })).statusCode, 404)
  const batch = await app.inject({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [u, 8, COLD_USER] } })
  t.equal(batch.statusCode, 200)
  const after = (await scrape()).expo
  const delta = (tier: string, status: string) => value(after, 'recsvc_answers_total', { tier, status }) - value(before, 'recsvc_answers_total', { tier, status })
  t.equal(delta('MISS', '200'), 3, 'MISS 200: user 7 once, users 8 and cold in the batch')
  t.equal(delta('HIT-L1', '200'), 2, 'HIT-L1 200: user 7 again, and in the batch')
  t.equal(delta('MISS', '404'), 1, 'the unknown user: a 404 answered by MySQL')
  const time = (tier: string, a: Exposition) => value(a, 'recsvc_answer_duration_seconds_count', { tier })
  t.equal(time('HIT-L1', after) - time('HIT-L1', before), 2, 'latency by tier: one observation per answer')
  t.equal(time('MISS', after) - time('MISS', before), 4)
  const route = (a: Exposition) => value(a, 'http_request_duration_seconds_count', { route: '/recommend/:id', status_code: '200' })
  t.equal(route(after) - route(before), 2, 'per-route request count by status')
  t.equal(value(after, 'http_request_duration_seconds_count', { route: '/recommend/:id', status_code: '404' }) -
    value(before, 'http_request_duration_seconds_count', { route: '/recommend/:id', status_code: '404' }), 1)
})

t.test('Redis and MySQL calls by operation, the pool, the scorer', async (t) => {
  const before = (await scrape()).expo
  const r = await app.inject({ method: 'GET', url: `/recommend/${FIXTURE_USERS - 3}` })
  t.equal(r.headers['x-cache'], 'MISS')
  const after = (await scrape()).expo
  const grew = (name: string, match: Record<string, string> = {}) => value(after, name, match) - value(before, name, match)
  t.ok(grew('recsvc_redis_command_duration_seconds_count') >= 2, 'Redis commands timed (lookup, write)')
  t.ok(after.samples.some((s) => s.name === 'recsvc_redis_command_duration_seconds_count' && s.labels.op === 'recLookup'), 'scripts are named after their command, not evalsha')
  t.ok(grew('recsvc_mysql_query_duration_seconds_count', { op: 'select' }) >= 1, 'the history SELECT timed')
  t.ok(has(after, 'recsvc_mysql_pool_connections'), 'pool connections')
  t.equal(value(after, 'recsvc_mysql_pool_connections', { state: 'in_use' }), 0, 'none in use between requests')
  t.ok(value(after, 'recsvc_mysql_pool_connections', { state: 'idle' }) >= 1, 'idle ones kept')
  t.equal(value(after, 'recsvc_mysql_pool_queue_requests'), 0)
  t.ok(grew('recsvc_scorer_task_duration_seconds_count') >= 1, 'scorer task run time')
  t.ok(has(after, 'recsvc_scorer_queue_size') && has(after, 'recsvc_scorer_utilization_ratio'), 'scorer queue and utilisation')
  const util = value(after, 'recsvc_scorer_utilization_ratio')
  t.ok(util >= 0 && util <= 1, `utilisation ${util} in 0..1`)
})

t.test('invalidations sent, received and acknowledged, with their latency; the subscription', async (t) => {
  const [a, b] = [app, peer]
  const beforeA = (await scrape(a)).expo
  const beforeB = (await scrape(b)).expo
  const res = await a.inject({ method: 'POST', url: '/invalidate-cache', headers: adminHeaders, payload: { user_ids: [1, 2, 3] } })
  t.equal(res.statusCode, 200)
  t.same(res.json().replicas, { acked: 2, expected: 2 })
  const afterA = (await scrape(a)).expo
  await waitFor('replica b counts the invalidation', async () => value((await scrape(b)).expo, 'recsvc_invalidations_received_total') - value(beforeB, 'recsvc_invalidations_received_total') === 3)
  t.equal(value(afterA, 'recsvc_invalidations_sent_total') - value(beforeA, 'recsvc_invalidations_sent_total'), 3, 'sent: 3 users')
  t.equal(value(afterA, 'recsvc_invalidation_acks_total', { result: 'acked' }) - value(beforeA, 'recsvc_invalidation_acks_total', { result: 'acked' }), 2, 'acked by both replicas')
  t.equal(value(afterA, 'recsvc_invalidation_acks_total', { result: 'missing' }) - value(beforeA, 'recsvc_invalidation_acks_total', { result: 'missing' }), 0)
  t.equal(value(afterA, 'recsvc_invalidation_ack_duration_seconds_count') - value(beforeA, 'recsvc_invalidation_ack_duration_seconds_count'), 1, 'one ack latency observed')
  t.equal(value(afterA, 'recsvc_invalidation_subscription_up'), 1, 'subscription up')
})

t.test('breakers, statistics and the event loop', async (t) => {
  const { expo } = await scrape()
  t.equal(value(expo, 'recsvc_circuit_breaker_state', { dependency: 'redis', state: 'closed' }), 1, 'redis breaker closed')
  t.equal(value(expo, 'recsvc_circuit_breaker_state', { dependency: 'database', state: 'closed' }), 1, 'database breaker closed')
  t.equal(value(expo, 'recsvc_circuit_breaker_state', { dependency: 'database', state: 'open' }), 0)
  t.ok(value(expo, 'recsvc_stats_version') >= 1, 'statistics loaded')
  const age = value(expo, 'recsvc_stats_age_seconds')
  t.ok(age >= 0 && age < 3600, `statistics age ${age} s`)
  const first = value(expo, 'recsvc_event_loop_delay_seconds_count')
  await new Promise((resolve) => setTimeout(resolve, 300))
  const second = (await scrape()).expo
  t.ok(value(second, 'recsvc_event_loop_delay_seconds_count') > first, 'the event-loop delay histogram keeps sampling between scrapes')
  t.ok(value(second, 'recsvc_event_loop_busy_seconds_total') > 0, 'event-loop busy time')
})
