/**
 * The monitor's screen: three tables (traffic, capacity, protection), one row per replica plus a
 * total row, from the figures of figures.ts. Pure: a frame model in, a string out. A figure that
 * is undefined (its series absent, or nothing to compute it from) shows as '–'.
 */
import { DEPENDENCIES, TIERS, figures, type Rates, type TotalRates } from './figures.ts'

export const DASH = '–'
export const RATE_LIMIT_TIERS = ['anonymous', 'free', 'premium', 'enterprise', 'admin'] as const

export interface TargetView {
  /** short name (host:port) */
  name: string
  up: boolean
  /** why it is DOWN */
  error?: string
  /** undefined while DOWN */
  rates?: Rates
}

export interface FrameModel {
  targets: TargetView[]
  total: TotalRates
  intervalMs: number
  frame: number
  at: Date
}

/** `width`: the terminal's columns (undefined when not a terminal) */
export interface RenderOptions { color: boolean, width?: number }

type Color = 'red' | 'green' | 'yellow' | 'dim' | 'bold' | 'cyan'
const SGR: Record<Color, string> = { red: '31', green: '32', yellow: '33', dim: '2', bold: '1', cyan: '36' }

interface Cell { text: string, color?: Color, left?: boolean }
/** A row whose last cell may run past its column (a DOWN target's error). */
interface Row { cells: Cell[], tail?: Cell }

// ------------------------------------------------------------------------------------------------
// number formats

export function fmtRate (x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return DASH
  if (x >= 10_000) return `${(x / 1000).toFixed(1)}k`
  if (x >= 100) return x.toFixed(0)
  return x.toFixed(1)
}

export function fmtPercent (x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return DASH
  const p = x * 100
  if (p >= 99.95 && p < 100) return '99.9%'
  return p === 100 ? '100%' : `${p.toFixed(1)}%`
}

export function fmtSeconds (s: number | undefined): string {
  if (s === undefined || Number.isNaN(s)) return DASH
  if (s === Infinity) return '+Inf'
  const ms = s * 1000
  if (ms < 10) return `${ms.toFixed(2)}ms`
  if (ms < 1000) return `${ms.toFixed(ms < 100 ? 1 : 0)}ms`
  return `${s.toFixed(2)}s`
}

export function fmtAge (s: number | undefined): string {
  if (s === undefined || s === -Infinity) return DASH
  if (Number.isNaN(s)) return 'never' // recsvc_stats_age_seconds is NaN until the stats are computed
  if (s === Infinity) return '+Inf'
  if (s < 120) return `${s.toFixed(0)}s`
  if (s < 7200) return `${(s / 60).toFixed(0)}m`
  return `${(s / 3600).toFixed(1)}h`
}

export function fmtBytes (b: number | undefined): string {
  if (b === undefined || !Number.isFinite(b)) return DASH
  if (b >= 1024 ** 3) return `${(b / 1024 ** 3).toFixed(2)}GiB`
  return `${(b / 1024 ** 2).toFixed(0)}MiB`
}

function fmtInt (x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? DASH : String(Math.round(x))
}

// ------------------------------------------------------------------------------------------------
// cells

const dash: Cell = { text: DASH, color: 'dim' }
const num = (text: string, color?: Color): Cell => (text === DASH ? dash : { text, color })

function successColor (x: number | undefined): Color | undefined {
  if (x === undefined) return undefined
  return x >= 0.99 ? 'green' : x >= 0.95 ? 'yellow' : 'red'
}

function stateColor (state: string): Color {
  return state === 'closed' ? 'green' : state === 'open' ? 'red' : 'yellow'
}

const DEP_SHORT: Record<string, string> = { database: 'db' }

function breakersCell (b: Record<string, string>): Cell {
  const deps = [...DEPENDENCIES.filter((d) => d in b), ...Object.keys(b).filter((d) => !(DEPENDENCIES as readonly string[]).includes(d)).sort()]
  if (deps.length === 0) return dash
  const worst = deps.map((d) => b[d]!).sort((x, y) => rank(y) - rank(x))[0]!
  return { text: deps.map((d) => `${DEP_SHORT[d] ?? d}=${b[d]}`).join(' '), color: stateColor(worst), left: true }
}

function totalBreakersCell (b: Record<string, Record<string, number>>): Cell {
  const deps = Object.keys(b).sort((x, y) => depOrder(x) - depOrder(y))
  if (deps.length === 0) return dash
  let worst = 'closed'
  const parts = deps.map((d) => {
    const states = Object.entries(b[d]!).sort(([x], [y]) => rank(y) - rank(x))
    if (rank(states[0]![0]) > rank(worst)) worst = states[0]![0]
    const text = states.length === 1 ? states[0]![0] : states.map(([s, n]) => `${s}×${n}`).join(',')
    return `${DEP_SHORT[d] ?? d}=${text}`
  })
  return { text: parts.join(' '), color: stateColor(worst), left: true }
}

function depOrder (d: string): number {
  const i = (DEPENDENCIES as readonly string[]).indexOf(d)
  return i < 0 ? 99 : i
}

function rank (state: string): number {
  return state === 'open' ? 2 : state === 'closed' ? 0 : 1
}

function subCell (up: number | undefined, reporting?: number): Cell {
  if (up === undefined) return dash
  if (reporting !== undefined) return { text: `${up}/${reporting}`, color: up === reporting ? 'green' : 'red' }
  return up >= 1 ? { text: 'up', color: 'green' } : { text: 'down', color: 'red' }
}

function poolCell (r: { poolInUse?: number, poolIdle?: number, poolQueue?: number }): Cell {
  if (r.poolInUse === undefined && r.poolIdle === undefined && r.poolQueue === undefined) return dash
  return { text: `${fmtInt(r.poolInUse)}/${fmtInt(r.poolIdle)}/${fmtInt(r.poolQueue)}`, color: (r.poolQueue ?? 0) > 0 ? 'yellow' : undefined }
}

// ------------------------------------------------------------------------------------------------
// tables

function trafficRow (name: Cell, state: Cell, r: Rates | TotalRates): Row {
  const f = figures(r)
  return {
    cells: [
      name, state,
      num(fmtRate(f.reqPerSec)),
      num(fmtPercent(f.successRate), successColor(f.successRate)),
      num(fmtSeconds(f.p50)), num(fmtSeconds(f.p95)), num(fmtSeconds(f.p99)),
      ...TIERS.map((t) => num(fmtPercent(f.hitRatio[t])))
    ]
  }
}

function capacityRow (name: Cell, r: Rates | TotalRates, total: boolean): Row {
  const f = figures(r)
  const t = r as TotalRates
  return {
    cells: [
      name,
      poolCell(r),
      num(fmtInt(r.scorerQueue), (r.scorerQueue ?? 0) > 0 ? 'yellow' : undefined),
      num(fmtPercent(r.scorerUtilization)),
      num(fmtSeconds(f.eventLoopP99)),
      num(fmtPercent(f.eventLoopUtilization)),
      num(fmtBytes(r.rssBytes)),
      num(fmtAge(r.statsAgeSeconds)),
      total ? subCell(r.subscriptionUp, t.subscriptionReporting) : subCell(r.subscriptionUp),
      total ? totalBreakersCell(t.breakers) : breakersCell((r as Rates).breakers)
    ]
  }
}

function protectionRow (name: Cell, r: Rates | TotalRates): Row {
  const f = figures(r)
  const byTier = (tier: string): Cell => f.rateLimitedPerSec === undefined ? dash : num(fmtRate(f.rateLimitedByTier[tier] ?? 0), (f.rateLimitedByTier[tier] ?? 0) > 0 ? 'yellow' : undefined)
  const reasons = Object.entries(r.shedByReason).filter(([, v]) => v > 0).map(([k, v]) => `${k}:${fmtRate(v)}`).join(' ')
  return {
    cells: [
      name,
      num(fmtRate(f.rateLimitedPerSec), (f.rateLimitedPerSec ?? 0) > 0 ? 'yellow' : undefined),
      ...RATE_LIMIT_TIERS.map(byTier),
      num(fmtRate(f.shedPerSec), (f.shedPerSec ?? 0) > 0 ? 'red' : undefined),
      reasons === '' ? (f.shedPerSec === undefined ? dash : { text: '', left: true }) : { text: reasons, left: true, color: 'red' }
    ]
  }
}

function paint (text: string, color: Color | undefined, on: boolean): string {
  return on && color !== undefined && text !== '' ? `\x1b[${SGR[color]}m${text}\x1b[0m` : text
}

function width (s: string): number {
  return [...s].length
}

function table (header: string[], rows: Row[], opts: RenderOptions, leftCols: number): string[] {
  const widths = header.map((h) => width(h))
  for (const r of rows) r.cells.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, width(c.text)) })
  const pad = (c: Cell, i: number, last: boolean): string => {
    const w = widths[i] ?? 0
    const left = c.left === true || i < leftCols
    const fill = ' '.repeat(Math.max(0, w - width(c.text)))
    const body = paint(c.text, c.color, opts.color)
    if (last && left) return body
    return left ? body + fill : fill + body
  }
  const line = (cells: Cell[], tail?: Cell): string => {
    const parts = cells.map((c, i) => pad(c, i, tail === undefined && i === cells.length - 1))
    if (tail !== undefined) {
      // the tail (a DOWN target's error) fills the rest of the line, truncated to the terminal
      const used = cells.reduce((a, _c, i) => a + (widths[i] ?? 0) + 2, 0)
      const room = opts.width === undefined ? 200 : Math.max(30, opts.width - used - 1)
      parts.push(paint(truncate(tail.text, room), tail.color, opts.color))
    }
    return parts.join('  ').replace(/\s+$/, '')
  }
  const out = [line(header.map((h) => ({ text: h, color: 'bold' as const })))]
  for (const r of rows) out.push(line(r.cells, r.tail))
  return out
}

function truncate (s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim()
  return width(one) <= n ? one : [...one].slice(0, Math.max(1, n - 1)).join('') + '…'
}

export function renderFrame (m: FrameModel, opts: RenderOptions): string {
  const up = m.targets.filter((t) => t.up).length
  const down = m.targets.length - up
  const lines: string[] = []
  const clock = m.at.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
  const summary = `${m.targets.length} target${m.targets.length === 1 ? '' : 's'}: ${up} up` + (down > 0 ? `, ${down} down` : '')
  lines.push(`${paint('recsvc monitor', 'bold', opts.color)}  ${clock}  every ${(m.intervalMs / 1000).toFixed(1)}s  frame ${m.frame}  ${paint(summary, down > 0 ? 'red' : 'green', opts.color)}`)
  const restarted = m.targets.filter((t) => t.rates?.restarted === true).map((t) => t.name)
  if (restarted.length > 0) lines.push(paint(`restarted since the last scrape (counters reset): ${restarted.join(', ')}`, 'yellow', opts.color))
  const nameCell = (t: TargetView): Cell => ({ text: t.name })
  const totalName: Cell = { text: `TOTAL (${m.total.replicas})`, color: 'bold' }
  const upRows = m.targets.filter((t) => t.up && t.rates !== undefined)

  // traffic
  const traffic: Row[] = m.targets.map((t) => t.up && t.rates !== undefined
    ? trafficRow(nameCell(t), { text: 'UP', color: 'green' }, t.rates)
    : { cells: [nameCell(t), { text: 'DOWN', color: 'red' }], tail: { text: t.error ?? 'unreachable', color: 'red' } })
  traffic.push(trafficRow(totalName, { text: `${up}/${m.targets.length}`, color: down > 0 ? 'red' : 'green' }, m.total))
  lines.push('')
  lines.push(...table(['TARGET', 'STATE', 'REQ/S', 'OK%', 'P50', 'P95', 'P99', ...TIERS], traffic, opts, 2))

  // capacity
  const capacity: Row[] = upRows.map((t) => capacityRow(nameCell(t), t.rates!, false))
  capacity.push(capacityRow(totalName, m.total, true))
  lines.push('')
  lines.push(...table(['TARGET', 'POOL use/idle/q', 'SCORER-Q', 'SCORER%', 'EL-P99', 'ELU', 'RSS', 'STATS-AGE', 'SUB', 'BREAKERS'], capacity, opts, 1))

  // protection
  const protection: Row[] = upRows.map((t) => protectionRow(nameCell(t), t.rates!))
  protection.push(protectionRow(totalName, m.total))
  lines.push('')
  lines.push(...table(['TARGET', 'LIMITED/S', ...RATE_LIMIT_TIERS, 'SHED/S', 'SHED REASONS'], protection, opts, 1))
  lines.push('')
  lines.push(paint(`rates over the last scrape interval; latency and OK% exclude /metrics; ${DASH} = series absent or no data`, 'dim', opts.color))
  return lines.join('\n')
}
