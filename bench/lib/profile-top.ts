// Self time per function of a V8 .cpuprofile (node --cpu-prof), the top N, and grouped by where
// the code lives (recsvc, fastify, node_modules package, node:internal, GC, idle).
//   npx tsx bench/lib/profile-top.ts FILE.cpuprofile [--top 30]
import { readFileSync } from 'node:fs'
import { isMain } from '../../scripts/lib/is-main.ts'

interface Node { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: Node[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export function group (url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC'
  if (fn === '(idle)') return 'idle'
  if (fn === '(program)') return '(program)'
  if (url === '') return `(native) ${fn}`
  if (url.startsWith('node:')) return 'node:internal'
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)
  if (m !== null) return m[m.length - 1]!.replace('node_modules/', '')
  return 'recsvc'
}

export function topOf (file: string, top = 30): string {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fns = new Map<string, number>()
  const groups = new Map<string, number>()
  for (const [id, t] of self) {
    const n = byId.get(id)!
    const { functionName, url, lineNumber } = n.callFrame
    const short = url.replace(/^file:\/\/.*?\/(node_modules|dist|src|workers)\//, '$1/')
    const k = `${functionName || '(anonymous)'} ${short}:${lineNumber + 1}`
    fns.set(k, (fns.get(k) ?? 0) + t)
    const g = group(url, functionName)
    groups.set(g, (groups.get(g) ?? 0) + t)
  }
  const pct = (t: number) => `${(100 * t / total).toFixed(1).padStart(5)} %`
  const lines = [`${file}: ${(total / 1e6).toFixed(1)} s sampled`, '', 'by group:']
  for (const [g, t] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, 20)) lines.push(`  ${pct(t)}  ${g}`)
  lines.push('', `top ${top} functions (self time):`)
  for (const [k, t] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`)
  return lines.join('\n')
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2)
  const i = args.indexOf('--top')
  const top = i >= 0 ? Number(args[i + 1]) : 30
  for (const f of args.filter((a, j) => !a.startsWith('--') && (i < 0 || j !== i + 1))) console.log(topOf(f, top), '\n')
}
