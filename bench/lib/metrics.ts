// A replica's /metrics before and after a measured run, and what the bench reports from the pair:
// event-loop delay p99 (bucket deltas of recsvc_event_loop_delay_seconds, interpolated as PromQL's
// histogram_quantile), CPU (process_cpu_seconds_total delta / wall time between the scrapes), RSS
// after, and the tier mix from the deltas of recsvc_answers_total{tier,status}. Parsing is
// tools/monitor/exposition.ts, the arithmetic tools/monitor/figures.ts (the monitor's, so the two
// agree).
import { parseExposition, type Exposition } from '../../tools/monitor/exposition.ts'
import { gauge, histogramIncrease, histogramQuantile, increaseBy, restarted, TIERS, type Scrape } from '../../tools/monitor/figures.ts'

export async function scrape (baseUrl: string, timeoutMs = 5000): Promise<Scrape | undefined> {
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })
    const text = await res.text()
    if (res.status !== 200) return undefined
    const atMs = performance.now()
    const expo = parseExposition(text)
    if (expo.samples.length === 0) return undefined
    return { expo, atMs }
  } catch {
    return undefined
  }
}

export interface ReplicaFigures {
  url: string
  /** false when /metrics could not be read before and after (e.g. behind nginx) */
  scraped: boolean
  restarted?: boolean
  seconds?: number
  /** event-loop delay p99 over the run, ms */
  eventLoopP99Ms?: number
  /** CPU seconds used per wall second (1 = one core busy) */
  cpu?: number
  rssBytes?: number
  /** answers during the run, by tier */
  answers?: Record<string, number>
  /** share of each tier among the answers during the run (0..1) */
  tierMix?: Record<string, number>
  /** answers by "tier status" */
  answersByStatus?: Record<string, number>
}

export function replicaFigures (url: string, before: Scrape | undefined, after: Scrape | undefined): ReplicaFigures {
  if (before === undefined || after === undefined) return { url, scraped: false }
  const a: Exposition = before.expo
  const b: Exposition = after.expo
  const seconds = (after.atMs - before.atMs) / 1000
  const reset = restarted(a, b)
  const out: ReplicaFigures = { url, scraped: true, restarted: reset, seconds }
  const el = histogramQuantile(0.99, histogramIncrease(a, b, 'recsvc_event_loop_delay_seconds', undefined, reset))
  if (el !== undefined) out.eventLoopP99Ms = el * 1000
  const c0 = gauge(a, 'process_cpu_seconds_total')
  const c1 = gauge(b, 'process_cpu_seconds_total')
  if (c0 !== undefined && c1 !== undefined && seconds > 0) out.cpu = (reset ? c1 : c1 - c0) / seconds
  out.rssBytes = gauge(b, 'process_resident_memory_bytes')
  const byStatus = increaseBy(a, b, 'recsvc_answers_total', { by: ['tier', 'status'], reset })
  if (byStatus !== undefined) {
    const answers: Record<string, number> = Object.fromEntries(TIERS.map((t) => [t, 0]))
    const st: Record<string, number> = {}
    for (const d of byStatus.values()) {
      const tier = d.labels.tier ?? ''
      answers[tier] = (answers[tier] ?? 0) + d.delta
      if (d.delta > 0) st[`${tier} ${d.labels.status ?? ''}`] = d.delta
    }
    out.answers = answers
    out.answersByStatus = st
    out.tierMix = mix(answers)
  }
  return out
}

export function mix (answers: Record<string, number>): Record<string, number> {
  const total = Object.values(answers).reduce((s, x) => s + x, 0)
  return Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, total > 0 ? v / total : 0]))
}

/** The tier mix over all replicas (weighted by answers), undefined when none reported it. */
export function totalMix (replicas: readonly ReplicaFigures[]): Record<string, number> | undefined {
  const sum: Record<string, number> = {}
  let any = false
  for (const r of replicas) {
    if (r.answers === undefined) continue
    any = true
    for (const [k, v] of Object.entries(r.answers)) sum[k] = (sum[k] ?? 0) + v
  }
  return any ? mix(sum) : undefined
}
