// A hand-written SVG bar chart of a report: for each scenario a bar for its req/s and one for its
// baseline's, labelled with req/s and p50/p99 latency. No chart package: rects and text.
import type { BenchReport } from './types.ts'

export interface Bar { scenario: string, series: string, label: string, reqPerSec: number, p50?: number, p99?: number, reference: boolean }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

export function bars (report: BenchReport): Bar[] {
  const out: Bar[] = []
  for (const s of report.scenarios) {
    if (s.reqPerSec === undefined) continue
    out.push({ scenario: s.name, series: s.name, label: s.name, reqPerSec: s.reqPerSec, p50: s.latency?.p50, p99: s.latency?.p99, reference: false })
    const b = s.baseline
    if (b !== undefined) out.push({ scenario: s.name, series: `${s.name}:${b.kind}`, label: b.label, reqPerSec: b.reqPerSec, p50: b.latency.p50, p99: b.latency.p99, reference: true })
  }
  return out
}

/** A step of 1, 2 or 5 × 10^k giving about `n` ticks up to `max`. */
function niceStep (max: number, n = 5): number {
  const raw = max / n
  const p = 10 ** Math.floor(Math.log10(raw))
  const m = raw / p
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p
}

export function svg (report: BenchReport): string {
  const bs = bars(report)
  const barW = 56
  const gap = 10
  const groupGap = 40
  const left = 70
  const top = 50
  const plotH = 260
  const groups = [...new Set(bs.map((b) => b.scenario))]
  let x = left + 20
  const placed: Array<Bar & { x: number }> = []
  for (const g of groups) {
    for (const b of bs.filter((b) => b.scenario === g)) { placed.push({ ...b, x }); x += barW + gap }
    x += groupGap - gap
  }
  const width = Math.max(x + 20, 360)
  const height = top + plotH + 90
  const maxV = Math.max(1, ...bs.map((b) => b.reqPerSec))
  const step = niceStep(maxV)
  const top1 = Math.ceil(maxV / step) * step
  const y = (v: number) => top + plotH - (v / top1) * plotH
  const fmt = (v: number) => Math.round(v).toLocaleString('en-US')
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<title>${esc(`npm run bench ${report.startedAt}: req/s per scenario and baseline`)}</title>`)
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`)
  out.push(`<text x="${left}" y="20" font-size="14" font-weight="bold">req/s per scenario and its baseline (same run, ${report.options.connections} connections, ${report.options.duration} s)</text>`)
  out.push(`<text x="${left}" y="36" fill="#555">labels: req/s, then latency p50 / p99 ms; grey = baseline</text>`)
  for (let v = 0; v <= top1 + 1e-9; v += step) {
    out.push(`<line x1="${left}" x2="${width - 10}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end" fill="#555">${fmt(v)}</text>`)
  }
  out.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`)
  out.push(`<line x1="${left}" x2="${width - 10}" y1="${top + plotH}" y2="${top + plotH}" stroke="#333"/>`)
  for (const b of placed) {
    const h = (b.reqPerSec / top1) * plotH
    const by = top + plotH - h
    const cx = b.x + barW / 2
    out.push(`<rect class="bar" data-series="${esc(b.series)}" data-req-per-sec="${b.reqPerSec.toFixed(1)}" x="${b.x}" y="${by.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${b.reference ? '#9e9e9e' : '#3b75af'}"><title>${esc(`${b.label}: ${fmt(b.reqPerSec)} req/s`)}</title></rect>`)
    out.push(`<text x="${cx}" y="${(by - 18).toFixed(1)}" text-anchor="middle">${fmt(b.reqPerSec)}</text>`)
    const lat = `${b.p50 ?? '–'} / ${b.p99 ?? '–'} ms`
    out.push(`<text x="${cx}" y="${(by - 5).toFixed(1)}" text-anchor="middle" fill="#555">${esc(lat)}</text>`)
    out.push(`<text x="${cx}" y="${top + plotH + 16}" text-anchor="middle">${esc(b.reference ? 'baseline' : b.label)}</text>`)
  }
  for (const g of groups) {
    const xs = placed.filter((b) => b.scenario === g).map((b) => b.x)
    const cx = (Math.min(...xs) + Math.max(...xs) + barW) / 2
    out.push(`<text x="${cx}" y="${top + plotH + 34}" text-anchor="middle" font-weight="bold">${esc(g)}</text>`)
  }
  if (placed.length === 0) out.push(`<text x="${left + 20}" y="${top + plotH / 2}">no scenario was measured</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
