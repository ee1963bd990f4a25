// The targets (issue 12), checked against a report's figures: each met, missed, or not
// measured in this run (its scenario not run or failed). Printed with the table and kept in the
// JSON; never asserted by a test (timings on shared machines are for people to read).
import type { BenchReport, ScenarioResult } from './types.ts'

export interface TargetCheck { target: string, measured: string, met?: boolean }

/** The default L1_MAX_BYTES (src/config.ts): the memory target is the LRU's bytes + 250 MB. */
const DEFAULT_L1_BYTES = 64 * 1024 * 1024
const MB = 1024 * 1024

const f2 = (x: number) => x.toFixed(2)
const f0 = (x: number) => x.toFixed(0)

export function checkTargets (report: BenchReport): TargetCheck[] {
  const by = new Map(report.scenarios.filter((s) => s.error === undefined || s.runs.length > 0).map((s) => [s.name, s]))
  const out: TargetCheck[] = []
  const push = (target: string, s: Array<ScenarioResult | undefined>, f: (...s: ScenarioResult[]) => { measured: string, met: boolean }) => {
    if (s.some((x) => x === undefined || (x.runs.length === 0 && x.custom === undefined))) out.push({ target, measured: 'not measured in this run' })
    else out.push({ target, ...f(...(s as ScenarioResult[])) })
  }
  const ratio = (name: string, min: number, of = 'baseline') => push(`${name}: ≥ ${min} × ${of}`, [by.get(name)], (s) => ({ measured: `${f2(s.ratio ?? NaN)} ×`, met: (s.ratio ?? 0) >= min }))
  ratio('hot', 0.85)
  ratio('warm-l1', 0.85)
  ratio('l2-only', 0.5)
  ratio('cold', 0.5, 'store ceiling')
  push('cold: event-loop delay p99 < 20 ms', [by.get('cold')], (s) => ({ measured: `${f0(s.eventLoopP99Ms ?? NaN)} ms`, met: (s.eventLoopP99Ms ?? Infinity) < 20 }))
  for (const name of ['zipf', 'zipf-hash']) {
    push(`${name}: 0 non-2xx (and 0 errors)`, [by.get(name)], (s) => ({ measured: `${s.non2xx ?? NaN} non-2xx, ${s.errors ?? NaN} errors, ${s.timeouts ?? NaN} timeouts over ${s.runs.length} run(s)`, met: s.non2xx === 0 && s.errors === 0 }))
    push(`${name}: p99 < 250 ms`, [by.get(name)], (s) => ({ measured: `${f0(s.latency?.p99 ?? NaN)} ms`, met: (s.latency?.p99 ?? Infinity) < 250 }))
    push(`${name}: event-loop delay p99 < 20 ms on every replica`, [by.get(name)], (s) => ({ measured: `${f0(s.eventLoopP99Ms ?? NaN)} ms (worst replica, median run)`, met: (s.eventLoopP99Ms ?? Infinity) < 20 }))
    push(`${name}: every replica's RSS ≤ L1_MAX_BYTES + 250 MB (${f0((DEFAULT_L1_BYTES + 250 * MB) / MB)} MB)`, [by.get(name)], (s) => ({ measured: `${f0((s.rssBytes ?? NaN) / MB)} MB (largest replica, any run)`, met: (s.rssBytes ?? Infinity) <= DEFAULT_L1_BYTES + 250 * MB }))
  }
  push('L1 locality: zipf-hash L1 hit share ≥ 1.5 × zipf\'s (least_conn)', [by.get('zipf'), by.get('zipf-hash')], (lc, h) => {
    const a = lc.tierMix?.['HIT-L1'] ?? NaN
    const b = h.tierMix?.['HIT-L1'] ?? NaN
    return { measured: `${(100 * b).toFixed(1)} % vs ${(100 * a).toFixed(1)} %: ${f2(b / a)} ×`, met: b / a >= 1.5 }
  })
  push('data size: cold p50 on 1,000,000 users ≤ 1.5 × on 10,000', [by.get('cold'), by.get('cold-10k')], (big, small) => {
    const a = big.latency?.p50 ?? NaN
    const b = small.latency?.p50 ?? NaN
    const users = /([\d,]+) seeded users/.exec(big.notes.join(' '))?.[1] ?? '?'
    return { measured: `${a} ms (${users} users) vs ${b} ms: ${f2(a / b)} ×`, met: a / b <= 1.5 }
  })
  push('cache layer: L1-hit and L2-hit ops/s ≥ bentocache\'s', [by.get('cache-layer')], (s) => {
    const rows = (s.custom?.rows ?? []).filter((r) => r[0] === 'L1 hit' || r[0] === 'L2 hit')
    const ratios = rows.map((r) => Number(r[3]))
    return { measured: rows.map((r) => `${r[0]} ${f2(Number(r[3]))} ×`).join(', ') || 'no rows', met: ratios.length === 2 && ratios.every((x) => x >= 1) }
  })
  return out
}

export function targetsTable (checks: readonly TargetCheck[]): string {
  const lines = ['| target | measured | met |', '| --- | --- | --- |']
  for (const c of checks) lines.push(`| ${c.target} | ${c.measured} | ${c.met === undefined ? '–' : c.met ? 'yes' : '**no**'} |`)
  return lines.join('\n')
}
