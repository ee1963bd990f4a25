// `npm run bench` end to end, very short: the hot scenario with its own Redis, MySQL and app, the
// baseline in the same run, and the three reports. No time or throughput is asserted beyond > 0.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

t.test('npm run bench -- --quick --only hot writes JSON, Markdown and SVG reports', { timeout: 110_000 }, async (t) => {
  const out = mkdtempSync(join(os.tmpdir(), 'recsvc-bench-report-'))
  t.teardown(() => rmSync(out, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--only', 'hot', '--duration', '2', '--warmup', '1', '--connections', '10', '--out', out], {
    cwd: root,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT') })
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  t.equal(code, 0, `exit 0\n--- stderr\n${stderr}\n--- stdout\n${stdout}`)
  t.match(stderr, /scenario hot/, 'progress on stderr')
  t.match(stdout, /\| hot \|/, 'the Markdown table is printed')

  const files = readdirSync(out)
  const of = (ext: string) => files.filter((f) => f.endsWith(ext))
  t.equal(of('.json').length, 1, 'one JSON report')
  t.equal(of('.md').length, 1, 'one Markdown report')
  t.equal(of('.svg').length, 1, 'one SVG chart')

  const report = JSON.parse(readFileSync(join(out, of('.json')[0]!), 'utf8'))
  t.equal(typeof report.machine.cpus, 'number')
  t.equal(typeof report.machine.node, 'string')
  t.ok(Array.isArray(report.machine.loadAvgBefore))
  const hot = report.scenarios.find((s: { name: string }) => s.name === 'hot')
  t.ok(hot, 'the hot scenario is in the report')
  t.equal(hot.error, undefined, 'no error')
  t.equal(typeof hot.reqPerSec, 'number')
  t.ok(hot.reqPerSec > 0, 'req/s > 0')
  for (const k of ['p50', 'p97_5', 'p99', 'max']) t.equal(typeof hot.latency[k], 'number', `latency ${k}`)
  for (const k of ['errors', 'timeouts', 'non2xx']) t.equal(typeof hot[k], 'number', k)
  t.equal(hot.baseline.kind, 'baseline')
  t.ok(hot.baseline.reqPerSec > 0, 'baseline req/s > 0')
  t.equal(typeof hot.baseline.latency.p99, 'number')
  t.equal(typeof hot.ratio, 'number')
  t.ok(hot.ratio > 0, 'ratio > 0')
  t.equal(hot.sample.status, 200)
  t.ok(hot.tierMix['HIT-L1'] > 0.9, `HIT-L1 share > 0.9 (${JSON.stringify(hot.tierMix)})`)
  t.equal(hot.replicas.length, 1)
  t.equal(hot.replicas[0].scraped, true, '/metrics scraped before and after')
  t.equal(typeof hot.replicas[0].eventLoopP99Ms, 'number', 'event-loop delay p99')
  t.ok(hot.replicas[0].cpu > 0, 'CPU share > 0')
  t.ok(hot.replicas[0].rssBytes > 0, 'RSS > 0')
  t.equal(report.config.env.RATE_LIMIT_ENABLED, 'false', 'rate limits off, and said so')
  const target = (report.targets ?? []).find((c: { target: string }) => c.target.startsWith('hot:'))
  t.ok(target, 'the hot target is checked against the run')
  t.equal(typeof target?.met, 'boolean', 'met or missed, never left out')
  t.match(target?.measured, /^\d+\.\d\d ×$/, 'with the measured ratio')

  const md = readFileSync(join(out, of('.md')[0]!), 'utf8')
  t.match(md, /\| scenario \| req\/s \| ratio to baseline \| p50 ms \| p99 ms \|/, 'table header')
  t.match(md, /^\| hot \| [\d,]+ \| \d+\.\d\d \|/m, 'a row for hot with req/s and ratio')
  t.match(md, /^\| hot: baseline/m, 'a row for its baseline')
  t.match(md, /HIT-L1 \d/, 'tier mix')
  t.match(md, /rate limits are OFF/)
  t.match(md, /^\| hot: ≥ 0\.85 × baseline \| \d+\.\d\d × \| (yes|\*\*no\*\*) \|$/m, 'the targets table, met or missed')

  const svg = readFileSync(join(out, of('.svg')[0]!), 'utf8').trim()
  t.ok(svg.startsWith('<svg'), 'starts with <svg')
  t.ok(svg.endsWith('</svg>'), 'ends with </svg>')
  const opens = (svg.match(/<(rect|text|line|title|svg)\b/g) ?? []).length
  const closes = (svg.match(/<\/(rect|text|title|svg)>|\/>/g) ?? []).length
  t.equal(opens, closes, 'every element is closed')
  const bars = [...svg.matchAll(/<rect class="bar" data-series="([^"]+)"/g)].map((m) => m[1])
  t.same(bars.sort(), ['hot', 'hot:baseline'], 'a bar per measured series')
})
