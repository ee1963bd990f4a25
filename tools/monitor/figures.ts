/**
 * The monitor's arithmetic, as pure functions of parsed scrapes: per-second rates from the
 * difference between two consecutive scrapes of one replica (a counter that went down is a
 * restart, as Prometheus' rate() treats it), histogram quantiles by bucket interpolation (the
 * algorithm of PromQL's histogram_quantile), ratios, and the current value of gauges. A figure
 * whose series is absent from the scrape is `undefined` (rendered as '–'), never 0.
 */
import { labelKey, select, type Exposition, type Labels, type Matcher } from './exposition.ts'

export const TIERS = ['HIT-L1', 'HIT-L2', 'MISS', 'STALE', 'FALLBACK'] as const
export const DEPENDENCIES = ['redis', 'database'] as const
/** Requests the monitor (or Prometheus) makes itself are not traffic. */
export const TRAFFIC: Matcher = { route: '!/metrics' }

export interface Scrape {
  expo: Exposition
  /** when the scrape was taken (ms, any monotonic clock) */
  atMs: number
}

export interface Bucket { le: number, count: number }

// ------------------------------------------------------------------------------------------------
// gauges and counters

/** Sum of the samples named `name` matching `match`; undefined when there is none. */
export function gauge (expo: Exposition, name: string, match?: Matcher): number | undefined {
  const s = select(expo, name, match)
  if (s.length === 0) return undefined
  return s.reduce((a, x) => a + x.value, 0)
}

/** Whether the replica restarted between the two scrapes: its process start time changed, or a
 *  counter (`_total`, `_count`, `_bucket`) went down. */
export function restarted (prev: Exposition, cur: Exposition): boolean {
  const a = gauge(prev, 'process_start_time_seconds')
  const b = gauge(cur, 'process_start_time_seconds')
  if (a !== undefined && b !== undefined && a !== b) return true
  const before = new Map<string, number>()
  for (const s of prev.samples) if (isCounterLike(s.name, prev)) before.set(s.name + '{' + labelKey(s.labels) + '}', s.value)
  for (const s of cur.samples) {
    if (!isCounterLike(s.name, cur)) continue
    const p = before.get(s.name + '{' + labelKey(s.labels) + '}')
    if (p !== undefined && s.value < p) return true
  }
  return false
}

/** A sample that only grows while the process lives: a counter's, or a histogram's bucket or count.
 *  By the family's # TYPE when declared: prom-client's nodejs_active_handles_total is a gauge. */
function isCounterLike (name: string, expo: Exposition): boolean {
  for (const [family, suffix] of [[name, ''], [name.replace(/_total$/, ''), '_total'], [name.replace(/_(bucket|count)$/, ''), '_bucket/_count']] as const) {
    const type = expo.types.get(family)
    if (type === undefined) continue
    if (type === 'counter') return suffix !== '_bucket/_count'
    if (type === 'histogram' || type === 'summary') return suffix === '_bucket/_count'
    return false
  }
  return name.endsWith('_total') || name.endsWith('_count') || name.endsWith('_bucket')
}

/** Increase of one counter series: `cur - prev`, or `cur` after a reset (the counter restarted
 *  from 0) or when the series is new. */
export function increase (prev: number | undefined, cur: number, reset = false): number {
  if (reset || prev === undefined || cur < prev) return cur
  return cur - prev
}

export interface Delta { labels: Labels, delta: number }

/** Per-series increase of counter `name` between two scrapes, summed by the labels in `by`
 *  (none: one group). Undefined when the current scrape has no such series. */
export function increaseBy (prev: Exposition, cur: Exposition, name: string, opts: { match?: Matcher, by?: readonly string[], reset?: boolean } = {}): Map<string, Delta> | undefined {
  const now = select(cur, name, opts.match)
  if (now.length === 0) return undefined
  const before = new Map<string, number>()
  for (const s of select(prev, name, opts.match)) before.set(labelKey(s.labels), s.value)
  const by = opts.by ?? []
  const out = new Map<string, Delta>()
  for (const s of now) {
    const d = increase(before.get(labelKey(s.labels)), s.value, opts.reset)
    const groupLabels: Labels = {}
    for (const k of by) groupLabels[k] = s.labels[k] ?? ''
    const key = labelKey(groupLabels)
    const g = out.get(key)
    if (g) g.delta += d
    else out.set(key, { labels: groupLabels, delta: d })
  }
  return out
}

/** Total increase of counter `name` (all matching series); undefined when absent. */
export function totalIncrease (prev: Exposition, cur: Exposition, name: string, match?: Matcher, reset?: boolean): number | undefined {
  const m = increaseBy(prev, cur, name, { match, reset })
  if (m === undefined) return undefined
  let t = 0
  for (const d of m.values()) t += d.delta
  return t
}

/** Increase of histogram `name`'s buckets between two scrapes, summed by `le` over all matching
 *  series (`sum by (le) (increase(name_bucket[...]))`). Undefined when there are no buckets. */
export function histogramIncrease (prev: Exposition, cur: Exposition, name: string, match?: Matcher, reset?: boolean): Bucket[] | undefined {
  const m = increaseBy(prev, cur, `${name}_bucket`, { match, by: ['le'], reset })
  if (m === undefined) return undefined
  const out: Bucket[] = []
  for (const d of m.values()) {
    const le = d.labels.le === '+Inf' ? Infinity : Number(d.labels.le)
    if (!Number.isNaN(le)) out.push({ le, count: d.delta })
  }
  return out.sort((a, b) => a.le - b.le)
}

/** Adds bucket lists with the same layout (by `le`). */
export function addBuckets (lists: ReadonlyArray<readonly Bucket[] | undefined>): Bucket[] | undefined {
  const by = new Map<number, number>()
  let any = false
  for (const l of lists) {
    if (l === undefined) continue
    any = true
    for (const b of l) by.set(b.le, (by.get(b.le) ?? 0) + b.count)
  }
  if (!any) return undefined
  return [...by].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
}

/**
 * The q-quantile of cumulative buckets, as PromQL's histogram_quantile computes it: find the
 * bucket the rank falls in and interpolate linearly inside it (the lowest bucket starts at 0
 * unless its bound is <= 0; a rank in the +Inf bucket answers the highest finite bound).
 * Undefined when there is nothing to compute it from (no +Inf bucket, fewer than two buckets,
 * no observations).
 */
export function histogramQuantile (q: number, buckets: readonly Bucket[] | undefined): number | undefined {
  if (buckets === undefined || Number.isNaN(q)) return undefined
  if (q < 0) return -Infinity
  if (q > 1) return Infinity
  const merged = new Map<number, number>()
  for (const b of buckets) merged.set(b.le, (merged.get(b.le) ?? 0) + b.count)
  const bs = [...merged].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  if (bs.length < 2 || bs[bs.length - 1]!.le !== Infinity) return undefined
  // cumulative counts can be off by a little when scraped mid-update: make them monotonic
  for (let i = 1; i < bs.length; i++) if (bs[i]!.count < bs[i - 1]!.count) bs[i]!.count = bs[i - 1]!.count
  const observations = bs[bs.length - 1]!.count
  if (!(observations > 0)) return undefined
  let rank = q * observations
  let b = bs.findIndex((x) => x.count >= rank)
  if (b < 0) b = bs.length - 1
  if (b === bs.length - 1) return bs[bs.length - 2]!.le
  if (b === 0 && bs[0]!.le <= 0) return bs[0]!.le
  let start = 0
  const end = bs[b]!.le
  let count = bs[b]!.count
  if (b > 0) {
    start = bs[b - 1]!.le
    count -= bs[b - 1]!.count
    rank -= bs[b - 1]!.count
  }
  if (count <= 0) return end
  return start + (end - start) * (rank / count)
}

export function ratio (part: number | undefined, whole: number | undefined): number | undefined {
  if (part === undefined || whole === undefined || !(whole > 0)) return undefined
  return part / whole
}

// ------------------------------------------------------------------------------------------------
// one replica, and the total

/** Per-second rates over one scrape interval, plus the gauges of the latest scrape: the raw
 *  material of every figure, summable across replicas. */
export interface Rates {
  /** seconds between the two scrapes (0 for a replica scraped once so far) */
  seconds: number
  restarted: boolean
  requests?: number
  requests5xx?: number
  latency?: Bucket[]
  answers?: number
  answersByTier: Record<string, number>
  eventLoopDelay?: Bucket[]
  eventLoopBusy?: number
  rateLimited?: number
  rateLimitedByTier: Record<string, number>
  shed?: number
  shedByReason: Record<string, number>
  // gauges
  poolInUse?: number
  poolIdle?: number
  poolQueue?: number
  scorerQueue?: number
  scorerUtilization?: number
  subscriptionUp?: number
  statsAgeSeconds?: number
  rssBytes?: number
  /** dependency -> current breaker state (the state whose gauge is 1) */
  breakers: Record<string, string>
}

function perSecond (v: number | undefined, seconds: number): number | undefined {
  return v === undefined ? undefined : v / seconds
}

function scaleBuckets (b: Bucket[] | undefined, seconds: number): Bucket[] | undefined {
  return b?.map((x) => ({ le: x.le, count: x.count / seconds }))
}

function groupRates (m: Map<string, Delta> | undefined, label: string, seconds: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const d of m?.values() ?? []) out[d.labels[label] ?? ''] = (out[d.labels[label] ?? ''] ?? 0) + d.delta / seconds
  return out
}

export function gauges (cur: Exposition): Omit<Rates, 'seconds' | 'restarted' | 'answersByTier' | 'rateLimitedByTier' | 'shedByReason'> {
  const breakers: Record<string, string> = {}
  for (const s of select(cur, 'recsvc_circuit_breaker_state')) {
    if (s.value === 1 && s.labels.dependency !== undefined && s.labels.state !== undefined) breakers[s.labels.dependency] = s.labels.state
  }
  return {
    poolInUse: gauge(cur, 'recsvc_mysql_pool_connections', { state: 'in_use' }),
    poolIdle: gauge(cur, 'recsvc_mysql_pool_connections', { state: 'idle' }),
    poolQueue: gauge(cur, 'recsvc_mysql_pool_queue_requests'),
    scorerQueue: gauge(cur, 'recsvc_scorer_queue_size'),
    scorerUtilization: gauge(cur, 'recsvc_scorer_utilization_ratio'),
    subscriptionUp: gauge(cur, 'recsvc_invalidation_subscription_up'),
    statsAgeSeconds: gauge(cur, 'recsvc_stats_age_seconds'),
    rssBytes: gauge(cur, 'process_resident_memory_bytes'),
    breakers
  }
}

/** Rates of one replica between its previous and its current scrape (only gauges without a
 *  previous scrape). */
export function replicaRates (prev: Scrape | undefined, cur: Scrape): Rates {
  const g = gauges(cur.expo)
  const empty = { answersByTier: {}, rateLimitedByTier: {}, shedByReason: {} }
  if (prev === undefined || !(cur.atMs > prev.atMs)) return { seconds: 0, restarted: false, ...empty, ...g }
  const seconds = (cur.atMs - prev.atMs) / 1000
  const reset = restarted(prev.expo, cur.expo)
  const p = prev.expo
  const c = cur.expo
  const requests = totalIncrease(p, c, 'http_request_duration_seconds_count', TRAFFIC, reset)
  const requests5xx = requests === undefined ? undefined : (totalIncrease(p, c, 'http_request_duration_seconds_count', { ...TRAFFIC, status_code: /5\d\d/ }, reset) ?? 0)
  const answers = increaseBy(p, c, 'recsvc_answers_total', { by: ['tier'], reset })
  const rateLimited = increaseBy(p, c, 'recsvc_rate_limited_total', { by: ['tier'], reset })
  const shed = increaseBy(p, c, 'recsvc_shed_requests_total', { by: ['reason'], reset })
  const sum = (m: Map<string, Delta> | undefined): number | undefined => m === undefined ? undefined : [...m.values()].reduce((a, d) => a + d.delta, 0)
  return {
    seconds,
    restarted: reset,
    requests: perSecond(requests, seconds),
    requests5xx: perSecond(requests5xx, seconds),
    latency: scaleBuckets(histogramIncrease(p, c, 'http_request_duration_seconds', TRAFFIC, reset), seconds),
    answers: perSecond(sum(answers), seconds),
    answersByTier: groupRates(answers, 'tier', seconds),
    eventLoopDelay: scaleBuckets(histogramIncrease(p, c, 'recsvc_event_loop_delay_seconds', undefined, reset), seconds),
    eventLoopBusy: perSecond(totalIncrease(p, c, 'recsvc_event_loop_busy_seconds_total', undefined, reset), seconds),
    rateLimited: perSecond(sum(rateLimited), seconds),
    rateLimitedByTier: groupRates(rateLimited, 'tier', seconds),
    shed: perSecond(sum(shed), seconds),
    shedByReason: groupRates(shed, 'reason', seconds),
    ...g
  }
}

function addOpt (xs: ReadonlyArray<number | undefined>): number | undefined {
  let any = false
  let t = 0
  for (const x of xs) if (x !== undefined) { any = true; t += x }
  return any ? t : undefined
}

function meanOpt (xs: ReadonlyArray<number | undefined>): number | undefined {
  const d = xs.filter((x): x is number => x !== undefined)
  return d.length === 0 ? undefined : d.reduce((a, b) => a + b, 0) / d.length
}

function maxOpt (xs: ReadonlyArray<number | undefined>): number | undefined {
  const d = xs.filter((x): x is number => x !== undefined)
  return d.length === 0 ? undefined : Math.max(...d)
}

function addRecords (rs: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v
  return out
}

export interface TotalRates extends Omit<Rates, 'breakers'> {
  replicas: number
  /** dependency -> state -> replicas in it */
  breakers: Record<string, Record<string, number>>
  /** replicas reporting the subscription gauge */
  subscriptionReporting: number
}

/** The sum over replicas (rates of replicas with a previous scrape; gauges of all). Utilisations
 *  are averaged, the stats age is the oldest. */
export function totalRates (all: readonly Rates[]): TotalRates {
  const withRates = all.filter((r) => r.seconds > 0)
  const breakers: Record<string, Record<string, number>> = {}
  for (const r of all) {
    for (const [dep, state] of Object.entries(r.breakers)) {
      const b = (breakers[dep] ??= {})
      b[state] = (b[state] ?? 0) + 1
    }
  }
  return {
    replicas: all.length,
    seconds: withRates.length === 0 ? 0 : Math.max(...withRates.map((r) => r.seconds)),
    restarted: all.some((r) => r.restarted),
    requests: addOpt(withRates.map((r) => r.requests)),
    requests5xx: addOpt(withRates.map((r) => r.requests5xx)),
    latency: addBuckets(withRates.map((r) => r.latency)),
    answers: addOpt(withRates.map((r) => r.answers)),
    answersByTier: addRecords(withRates.map((r) => r.answersByTier)),
    eventLoopDelay: addBuckets(withRates.map((r) => r.eventLoopDelay)),
    eventLoopBusy: meanOpt(withRates.map((r) => r.eventLoopBusy)),
    rateLimited: addOpt(withRates.map((r) => r.rateLimited)),
    rateLimitedByTier: addRecords(withRates.map((r) => r.rateLimitedByTier)),
    shed: addOpt(withRates.map((r) => r.shed)),
    shedByReason: addRecords(withRates.map((r) => r.shedByReason)),
    poolInUse: addOpt(all.map((r) => r.poolInUse)),
    poolIdle: addOpt(all.map((r) => r.poolIdle)),
    poolQueue: addOpt(all.map((r) => r.poolQueue)),
    scorerQueue: addOpt(all.map((r) => r.scorerQueue)),
    scorerUtilization: meanOpt(all.map((r) => r.scorerUtilization)),
    subscriptionUp: addOpt(all.map((r) => r.subscriptionUp)),
    subscriptionReporting: all.filter((r) => r.subscriptionUp !== undefined).length,
    statsAgeSeconds: maxOpt(all.map((r) => r.statsAgeSeconds)),
    rssBytes: addOpt(all.map((r) => r.rssBytes)),
    breakers
  }
}

/** The figures a row shows, derived from rates (one replica's or the total's). */
export interface Figures {
  reqPerSec?: number
  successRate?: number
  p50?: number
  p95?: number
  p99?: number
  /** tier -> share of answers (0..1) */
  hitRatio: Record<string, number | undefined>
  eventLoopP99?: number
  eventLoopUtilization?: number
  rateLimitedPerSec?: number
  rateLimitedByTier: Record<string, number>
  shedPerSec?: number
}

export function figures (r: Rates | TotalRates): Figures {
  const hitRatio: Record<string, number | undefined> = {}
  for (const tier of TIERS) hitRatio[tier] = r.answers === undefined ? undefined : ratio(r.answersByTier[tier] ?? 0, r.answers)
  const ok = r.requests === undefined || r.requests5xx === undefined ? undefined : r.requests - r.requests5xx
  return {
    reqPerSec: r.requests,
    successRate: ratio(ok, r.requests),
    p50: histogramQuantile(0.5, r.latency),
    p95: histogramQuantile(0.95, r.latency),
    p99: histogramQuantile(0.99, r.latency),
    hitRatio,
    eventLoopP99: histogramQuantile(0.99, r.eventLoopDelay),
    eventLoopUtilization: r.eventLoopBusy,
    rateLimitedPerSec: r.rateLimited,
    rateLimitedByTier: r.rateLimitedByTier,
    shedPerSec: r.shed
  }
}
