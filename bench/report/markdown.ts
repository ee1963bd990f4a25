// The Markdown report: one table, a row per scenario and one per reference it was measured against.
import { targetsTable } from './targets.ts'
import type { BenchReport, ScenarioResult } from './types.ts'

const dash = '–'
const f0 = (x: number | undefined) => x === undefined || !Number.isFinite(x) ? dash : Math.round(x).toLocaleString('en-US')
const f2 = (x: number | undefined) => x === undefined || !Number.isFinite(x) ? dash : x.toFixed(2)
const ms = (x: number | undefined) => x === undefined || !Number.isFinite(x) ? dash : (x < 10 ? x.toFixed(1) : x.toFixed(0))
const mb = (x: number | undefined) => x === undefined ? dash : (x / 1048576).toFixed(0)
const pct = (x: number) => `${(x * 100).toFixed(x >= 0.999 || x === 0 ? 0 : 1)} %`

export function formatMix (mix: Record<string, number> | undefined): string {
  if (mix === undefined) return dash
  const parts = Object.entries(mix).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${pct(v)}`)
  return parts.length === 0 ? 'no answers' : parts.join(', ')
}

const errs = (e?: number, t?: number, n?: number) => `${f0(e)} / ${f0(t)} / ${f0(n)}`

export const HEADER = ['scenario', 'req/s', 'ratio to baseline', 'p50 ms', 'p99 ms', 'errors / timeouts / non-2xx', 'EL p99 ms', 'CPU', 'RSS MB', 'tier mix']

export function rows (s: ScenarioResult): string[][] {
  const out: string[][] = []
  if (s.custom !== undefined) {
    out.push([s.name, `in-process, see "${s.custom.title}" below`, dash, dash, dash, dash, dash, dash, dash, dash])
    return out
  }
  if (s.error !== undefined && s.reqPerSec === undefined) {
    out.push([s.name, `failed: ${s.error.split('\n')[0]!.replace(/\|/g, '\\|')}`, dash, dash, dash, dash, dash, dash, dash, dash])
    return out
  }
  const ratios = s.runs.flatMap((r) => r.ratio === undefined ? [] : [r.ratio])
  const ratio = ratios.length > 1 ? `${f2(s.ratio)} (${f2(Math.min(...ratios))}–${f2(Math.max(...ratios))})` : f2(s.ratio)
  out.push([s.name, f0(s.reqPerSec), ratio, ms(s.latency?.p50), ms(s.latency?.p99), errs(s.errors, s.timeouts, s.non2xx), ms(s.eventLoopP99Ms), f2(s.cpu), mb(s.rssBytes), formatMix(s.tierMix)])
  const b = s.baseline
  if (b !== undefined) out.push([`${s.name}: ${b.label}`, f0(b.reqPerSec), '1.00', ms(b.latency.p50), ms(b.latency.p99), errs(b.errors, b.timeouts, b.non2xx), dash, dash, dash, dash])
  return out
}

export function table (report: BenchReport): string {
  const lines = [`| ${HEADER.join(' | ')} |`, `| ${HEADER.map(() => '---').join(' | ')} |`]
  for (const s of report.scenarios) for (const r of rows(s)) lines.push(`| ${r.join(' | ')} |`)
  for (const s of report.scenarios) {
    if (s.custom === undefined) continue
    const c = s.custom
    lines.push('', `${c.title}:`, '', `| ${c.columns.join(' | ')} |`, `| ${c.columns.map(() => '---').join(' | ')} |`)
    for (const r of c.rows) lines.push(`| ${r.map((x) => typeof x === 'number' ? (Math.abs(x) >= 100 ? f0(x) : f2(x)) : x).join(' | ')} |`)
  }
  return lines.join('\n')
}

/** What ran alongside the load, per run (the invalidation storm). */
function alongside (s: ScenarioResult): string[] {
  const out: string[] = []
  s.runs.forEach((r, i) => {
    if (r.alongside === undefined) return
    const f = Object.entries(r.alongside.figures).map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(1)) : v}`).join(', ')
    out.push(`- ${r.alongside.title}${s.runs.length > 1 ? ` (run ${i + 1})` : ''}: ${f}`, ...r.alongside.notes.map((n) => `  - ${n}`))
  })
  return out
}

export function markdown (report: BenchReport): string {
  const o = report.options
  const m = report.machine
  const lines = [
    `# npm run bench, ${report.startedAt}`,
    '',
    `${o.runs} run(s) of ${o.duration} s per scenario after a ${o.warmup} s warm-up (unless a scenario says otherwise), ${o.connections} connections, autocannon over 127.0.0.1; ` +
      `each run is paired with a run of the reference under the same settings, in alternating order; figures are medians over the runs, ratio = the median of req/s ÷ reference req/s (range in brackets).`,
    `Target: ${report.config.target}.`,
    ...report.config.notes.map((n) => `- ${n}`),
    '',
    table(report),
    '',
    'EL p99: event-loop delay p99 of the worst replica over the measured run (from its /metrics); CPU: CPU seconds per wall second, all replicas; RSS: the largest replica after the run; latency percentiles from autocannon.',
    '',
    `Machine: ${m.cpus} × ${m.cpuModel}, load average ${m.loadAvgBefore.map((x) => x.toFixed(2)).join(' ')} before` +
      `${m.loadAvgAfter ? `, ${m.loadAvgAfter.map((x) => x.toFixed(2)).join(' ')} after` : ''}; Node ${m.node}; commit ${m.gitCommit ?? 'unknown'}${m.gitDirty ? ' (with uncommitted changes)' : ''}.`,
    ''
  ]
  if (report.targets !== undefined && report.targets.length > 0) lines.push('Targets (issue 12; "not measured" where the scenario was not run or failed):', '', targetsTable(report.targets), '')
  for (const s of report.scenarios) {
    const extra = [...s.notes.map((n) => `- ${n}`), ...alongside(s), ...(s.error !== undefined ? [`- error: ${s.error}`] : [])]
    if (extra.length > 0) lines.push(`${s.name}: ${s.description}`, ...extra, '')
  }
  return lines.join('\n')
}
