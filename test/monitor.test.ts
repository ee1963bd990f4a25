import t from 'tap'
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseExposition, parseSampleLine, parseValue, select } from '../tools/monitor/exposition.ts'
import { figures, histogramIncrease, histogramQuantile, increase, replicaRates, restarted, totalRates, type Bucket } from '../tools/monitor/figures.ts'
import { DASH, renderFrame } from '../tools/monitor/render.ts'
import { normaliseTarget, parseOptions } from '../tools/monitor.ts'
import { withApp } from './helpers/app.ts'
import { getFreePort } from './helpers/services.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

// ------------------------------------------------------------------------------------------------
// (a) parser and figures on hand-written expositions

t.test('exposition parser: comments, labels with escapes, special values, timestamps', async (t) => {
  const text = [
    '# HELP http_request_duration_seconds request duration in seconds \\\\ with a \\n newline',
    '# TYPE http_request_duration_seconds histogram',
    '# just a comment',
    '',
    'http_request_duration_seconds_bucket{le="0.1",method="GET",route="/recommend/:id",status_code="200"} 3',
    'http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/recommend/:id",status_code="200"} 4',
    'weird{path="a\\"b\\\\c\\nd",empty="",} 1.5e3 1700000000000',
    'nan_metric NaN',
    'ninf{x="y"} -Inf',
    '  spaced_metric  { a = "1" , b="2" }   7  ',
    'no_value{a="1"}',
    'bad{a="unterminated} 1',
    'colon:name:total 2'
  ].join('\n')
  const e = parseExposition(text)
  t.equal(e.types.get('http_request_duration_seconds'), 'histogram')
  t.equal(e.help.get('http_request_duration_seconds'), 'request duration in seconds \\ with a \n newline')
  t.equal(e.samples.length, 7, 'the good lines')
  t.equal(e.errors.length, 2, 'the two bad lines are reported, not fatal')
  t.match(e.errors[0], /^line 11: missing value/)
  t.match(e.errors[1], /^line 12: unterminated/)
  const inf = select(e, 'http_request_duration_seconds_bucket', { le: '+Inf' })
  t.equal(inf.length, 1)
  t.equal(inf[0]!.value, 4)
  const weird = select(e, 'weird')[0]!
  t.same(weird.labels, { path: 'a"b\\c\nd', empty: '' })
  t.equal(weird.value, 1500)
  t.equal(weird.timestampMs, 1_700_000_000_000)
  t.ok(Number.isNaN(select(e, 'nan_metric')[0]!.value))
  t.equal(select(e, 'ninf')[0]!.value, -Infinity)
  t.same(select(e, 'spaced_metric')[0]!.labels, { a: '1', b: '2' })
  t.equal(select(e, 'colon:name:total')[0]!.value, 2)
  t.equal(parseValue('+Inf'), Infinity)
  t.throws(() => parseValue('12abc'))
  t.throws(() => parseSampleLine('m{a="1",a="2"} 1'), /duplicate label/)
  t.same(select(e, 'http_request_duration_seconds_bucket', { route: '!/metrics', status_code: /2\d\d/ }).length, 2, 'negative and regexp matchers')
})

const near = (a: number | undefined, b: number): boolean => a !== undefined && Math.abs(a - b) < 1e-9

t.test('histogram_quantile: interpolation inside the bucket, as PromQL does it', async (t) => {
  const b: Bucket[] = [{ le: 0.1, count: 10 }, { le: 0.2, count: 20 }, { le: 0.4, count: 30 }, { le: Infinity, count: 30 }]
  t.ok(near(histogramQuantile(0.25, b), 0.075), 'rank 7.5 in the lowest bucket, which starts at 0')
  t.ok(near(histogramQuantile(0.5, b), 0.15), 'rank 15: halfway through (0.1, 0.2]')
  t.ok(near(histogramQuantile(0.99, b), 0.394), 'rank 29.7: 97% through (0.2, 0.4]')
  t.ok(near(histogramQuantile(1, b), 0.4), 'q=1: the bound of the first bucket holding every observation')
  t.ok(near(histogramQuantile(0.5, [...b].reverse()), 0.15), 'bucket order does not matter')
  t.equal(histogramQuantile(0.5, [{ le: 0.1, count: 1 }, { le: Infinity, count: 10 }]), 0.1, 'a rank in +Inf answers the highest finite bound')
  t.equal(histogramQuantile(0.5, [{ le: -1, count: 5 }, { le: 1, count: 10 }, { le: Infinity, count: 10 }]), -1, 'a rank in a bucket with a bound <= 0 answers that bound')
  t.ok(near(histogramQuantile(0.5, [{ le: 1, count: 4 }, { le: 2, count: 3 }, { le: Infinity, count: 8 }]), 1), 'non-monotonic counts are made monotonic first')
  t.equal(histogramQuantile(1.5, b), Infinity)
  t.equal(histogramQuantile(-0.5, b), -Infinity)
  t.equal(histogramQuantile(0.5, [{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }]), undefined, 'no observations')
  t.equal(histogramQuantile(0.5, [{ le: 0.1, count: 3 }, { le: 0.2, count: 4 }]), undefined, 'no +Inf bucket')
  t.equal(histogramQuantile(0.5, [{ le: Infinity, count: 4 }]), undefined, 'fewer than two buckets')
  t.equal(histogramQuantile(0.5, undefined), undefined, 'absent histogram')
})

/** A hand-written /metrics of one replica. */
function expo (o: { start?: number, ok: number, err: number, fast: number, slow: number, l1: number, miss: number, busy?: number, eld?: [number, number, number], limited?: number }): string {
  const total = o.ok + o.err
  const lines = [
    '# TYPE process_start_time_seconds gauge',
    `process_start_time_seconds ${o.start ?? 1000}`,
    'process_resident_memory_bytes 104857600',
    '# TYPE http_request_duration_seconds histogram'
  ]
  // /recommend/:id: `fast` requests <= 5 ms, `slow` in (50 ms, 100 ms]; 5xx all fast
  const okFast = o.fast - o.err
  for (const [code, fast, slow] of [['200', okFast, o.slow], ['503', o.err, 0]] as const) {
    const l = `method="GET",route="/recommend/:id",status_code="${code}"`
    lines.push(`http_request_duration_seconds_bucket{le="0.005",${l}} ${fast}`)
    lines.push(`http_request_duration_seconds_bucket{le="0.05",${l}} ${fast}`)
    lines.push(`http_request_duration_seconds_bucket{le="0.1",${l}} ${fast + slow}`)
    lines.push(`http_request_duration_seconds_bucket{le="+Inf",${l}} ${fast + slow}`)
    lines.push(`http_request_duration_seconds_count{${l}} ${fast + slow}`)
    lines.push(`http_request_duration_seconds_sum{${l}} 0`)
  }
  if (total !== o.fast + o.slow) throw new Error('bad fixture')
  // scrapes of /metrics: never traffic
  lines.push('http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/metrics",status_code="200"} 999')
  lines.push('http_request_duration_seconds_count{method="GET",route="/metrics",status_code="200"} 999')
  lines.push(`recsvc_answers_total{tier="HIT-L1",status="200"} ${o.l1}`)
  lines.push(`recsvc_answers_total{tier="MISS",status="200"} ${o.miss}`)
  if (o.busy !== undefined) lines.push(`recsvc_event_loop_busy_seconds_total ${o.busy}`)
  if (o.eld !== undefined) {
    lines.push(`recsvc_event_loop_delay_seconds_bucket{le="0.01"} ${o.eld[0]}`)
    lines.push(`recsvc_event_loop_delay_seconds_bucket{le="0.1"} ${o.eld[1]}`)
    lines.push(`recsvc_event_loop_delay_seconds_bucket{le="+Inf"} ${o.eld[2]}`)
  }
  if (o.limited !== undefined) lines.push(`recsvc_rate_limited_total{tier="free"} ${o.limited}`)
  lines.push('recsvc_circuit_breaker_state{dependency="redis",state="closed"} 1')
  lines.push('recsvc_circuit_breaker_state{dependency="redis",state="open"} 0')
  lines.push('recsvc_mysql_pool_connections{state="in_use"} 2')
  lines.push('recsvc_mysql_pool_connections{state="idle"} 3')
  return lines.join('\n') + '\n'
}

const at = (ms: number, text: string): { expo: ReturnType<typeof parseExposition>, atMs: number } => ({ expo: parseExposition(text), atMs: ms })

t.test('figures from two consecutive scrapes: req/s, success rate, quantiles, hit ratio per tier, gauges', async (t) => {
  const a = at(0, expo({ ok: 100, err: 0, fast: 90, slow: 10, l1: 40, miss: 60, busy: 10, eld: [100, 110, 110], limited: 5 }))
  // over 2 s: 20 more requests (16 fast incl. 2 errors, 4 slow), 15 L1 hits + 5 misses
  const b = at(2000, expo({ ok: 118, err: 2, fast: 106, slow: 14, l1: 55, miss: 65, busy: 11, eld: [150, 160, 160], limited: 9 }))
  const r = replicaRates(a, b)
  t.equal(r.seconds, 2)
  t.equal(r.restarted, false)
  const f = figures(r)
  t.equal(f.reqPerSec, 10, '20 requests in 2 s; /metrics excluded')
  t.equal(f.successRate, 0.9, '2 of 20 were 5xx')
  t.ok(near(f.p50, 0.005 * (10 / 16)), 'p50 in the lowest bucket: rank 10 of 16 in (0, 5ms]')
  t.ok(near(f.p95, 0.05 + 0.05 * ((19 - 16) / 4)), 'p95 in (50ms, 100ms]')
  t.ok(near(f.p99, 0.05 + 0.05 * ((19.8 - 16) / 4)))
  t.equal(f.hitRatio['HIT-L1'], 0.75)
  t.equal(f.hitRatio.MISS, 0.25)
  t.equal(f.hitRatio['HIT-L2'], 0, 'a tier with no series while answers exist is 0%')
  t.equal(f.eventLoopUtilization, 0.5, '1 busy second in 2')
  t.ok(near(f.eventLoopP99, 0.01 * (49.5 / 50)), 'event-loop p99 from the delta of its buckets, not the cumulative ones')
  t.equal(f.rateLimitedPerSec, 2)
  t.same(f.rateLimitedByTier, { free: 2 })
  t.equal(f.shedPerSec, undefined, 'no shed series: undefined, not 0')
  t.equal(r.poolInUse, 2)
  t.equal(r.poolIdle, 3)
  t.equal(r.poolQueue, undefined)
  t.same(r.breakers, { redis: 'closed' })
  t.equal(r.rssBytes, 104857600)
  t.equal(histogramIncrease(a.expo, b.expo, 'http_request_duration_seconds', { route: '/recommend/:id' })!.find((x) => x.le === Infinity)!.count, 20)
})

t.test('a counter that went down between scrapes is a restart: the new values count from 0', async (t) => {
  const a = at(0, expo({ ok: 1000, err: 0, fast: 900, slow: 100, l1: 500, miss: 500, busy: 50 }))
  const b = at(1000, expo({ start: 2000, ok: 8, err: 0, fast: 8, slow: 0, l1: 6, miss: 2, busy: 0.25 }))
  t.ok(restarted(a.expo, b.expo), 'new process start time')
  const r = replicaRates(a, b)
  t.equal(r.restarted, true)
  const f = figures(r)
  t.equal(f.reqPerSec, 8, 'not negative: 8 requests since the restart')
  t.equal(f.successRate, 1)
  t.equal(f.hitRatio['HIT-L1'], 0.75)
  t.equal(f.eventLoopUtilization, 0.25)
  // without process_start_time_seconds, a counter going down still reads as a restart
  const strip = (s: string): string => s.split('\n').filter((l) => !l.startsWith('process_start')).join('\n')
  t.ok(restarted(parseExposition(strip(expo({ ok: 10, err: 0, fast: 10, slow: 0, l1: 1, miss: 1 }))), parseExposition(strip(expo({ ok: 3, err: 0, fast: 3, slow: 0, l1: 1, miss: 1 })))))
  // prom-client's nodejs_active_handles_total is a gauge despite its name: it going down is no restart
  const handles = (n: number) => parseExposition(`# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total ${n}\n# TYPE recsvc_answers_total counter\nrecsvc_answers_total{tier="HIT-L1",status="200"} ${10 + n}\n`)
  t.notOk(restarted(handles(9), handles(12)), 'counters grew')
  t.notOk(restarted(handles(12), parseExposition(`# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 4\n# TYPE recsvc_answers_total counter\nrecsvc_answers_total{tier="HIT-L1",status="200"} 30\n`)), 'a gauge named _total went down: not a restart')
  t.equal(increase(10, 3), 3, 'per series too')
  t.equal(increase(10, 13), 3)
  t.equal(increase(undefined, 4), 4, 'a series that appeared counts from 0')
})

t.test('absent series are undefined and render as a dash; the frame survives a DOWN target', async (t) => {
  const only = 'process_resident_memory_bytes 52428800\n'
  const r = replicaRates(at(0, only), at(1000, only))
  const f = figures(r)
  for (const k of ['reqPerSec', 'successRate', 'p50', 'p95', 'p99', 'eventLoopP99', 'eventLoopUtilization', 'rateLimitedPerSec', 'shedPerSec'] as const) t.equal(f[k], undefined, `${k} undefined`)
  t.same(f.hitRatio, { 'HIT-L1': undefined, 'HIT-L2': undefined, MISS: undefined, STALE: undefined, FALLBACK: undefined })
  t.equal(r.poolInUse, undefined)
  t.equal(r.scorerQueue, undefined)
  t.equal(r.subscriptionUp, undefined)
  t.same(r.breakers, {})
  const first = replicaRates(undefined, at(0, only))
  t.equal(first.seconds, 0, 'one scrape: gauges only')
  t.equal(figures(first).reqPerSec, undefined)

  const full = replicaRates(at(0, expo({ ok: 10, err: 0, fast: 10, slow: 0, l1: 5, miss: 5 })), at(1000, expo({ ok: 20, err: 0, fast: 20, slow: 0, l1: 10, miss: 10 })))
  const screen = renderFrame({
    targets: [
      { name: 'a:1', up: true, rates: r },
      { name: 'b:2', up: true, rates: full },
      { name: 'c:3', up: false, error: 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:3' }
    ],
    total: totalRates([r, full]),
    intervalMs: 1000,
    frame: 1,
    at: new Date(0)
  }, { color: false })
  t.notMatch(screen, /\x1b\[/, 'no escape codes with color off')
  t.notMatch(screen, /undefined|NaN/)
  t.match(screen, /^a:1 +UP +– +– +– +– +– +– +– +– +– +–$/m, 'the replica without series: all dashes')
  t.match(screen, /^b:2 +UP +10\.0 +100% /m)
  t.match(screen, /^c:3 +DOWN +ECONNREFUSED connect ECONNREFUSED 127\.0\.0\.1:3$/m)
  t.match(screen, /^TOTAL \(2\) +2\/3 +10\.0 +100% /m, 'the total sums the UP replicas')
  t.match(screen, /^a:1 +– +– +– +– +– +50MiB/m, 'capacity row: RSS of the replica with only that')
  t.match(screen, new RegExp(`${DASH} = series absent`))
})

t.test('totals: rates add up, quantiles come from the summed buckets', async (t) => {
  const one = replicaRates(at(0, expo({ ok: 0, err: 0, fast: 0, slow: 0, l1: 0, miss: 0 })), at(1000, expo({ ok: 10, err: 0, fast: 10, slow: 0, l1: 10, miss: 0 })))
  const two = replicaRates(at(0, expo({ ok: 0, err: 0, fast: 0, slow: 0, l1: 0, miss: 0 })), at(2000, expo({ ok: 20, err: 0, fast: 0, slow: 20, l1: 0, miss: 20 })))
  const total = totalRates([one, two])
  const f = figures(total)
  t.equal(f.reqPerSec, 20, '10/s + 10/s')
  t.equal(f.hitRatio['HIT-L1'], 0.5)
  t.ok(near(f.p50, 0.005), 'half the traffic <= 5 ms: p50 at the top of the lowest bucket')
  t.ok(near(f.p99, 0.05 + 0.05 * ((19.8 - 10) / 10)))
  t.same(total.breakers, { redis: { closed: 2 } })
  t.equal(total.poolInUse, 4)
})

t.test('options', async (t) => {
  const o = parseOptions(['--targets', 'http://127.0.0.1:3001,127.0.0.1:3002/', '--url', 'http://localhost:8080/custom/metrics', '--frames', '3', '--interval', '250'], {}, true)
  t.same(o.targets, ['http://localhost:8080/custom/metrics', 'http://127.0.0.1:3001/metrics', 'http://127.0.0.1:3002/metrics'])
  t.equal(o.frames, 3)
  t.equal(o.intervalMs, 250)
  t.equal(o.timeoutMs, 250)
  t.equal(o.color, true)
  t.equal(parseOptions(['--once', '--no-color'], {}, true).frames, 1)
  t.equal(parseOptions(['--no-color'], {}, true).color, false)
  t.equal(parseOptions([], { NO_COLOR: '1' }, true).color, false)
  t.equal(parseOptions([], {}, false).color, false, 'no color when not a TTY')
  t.same(parseOptions([], {}, false).targets, ['http://127.0.0.1:3000/metrics'])
  t.equal(parseOptions([], {}, false).frames, undefined, 'runs until stopped')
  t.throws(() => parseOptions(['--interval', '0']), /--interval/)
  t.throws(() => parseOptions(['--bogus']))
  t.equal(normaliseTarget('http://h:1'), 'http://h:1/metrics')
})

// ------------------------------------------------------------------------------------------------
// (b) the real thing

t.test('captures its screen against a running instance', async (t) => {
  const { app } = await withApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const addr = app.server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no port')
  const url = `http://127.0.0.1:${addr.port}`
  const dead = `http://127.0.0.1:${await getFreePort()}`

  for (let u = 1; u <= 20; u++) t.equal((await fetch(`${url}/recommend/${u}`)).status, 200, `GET /recommend/${u}`)
  // keep traffic flowing while the monitor takes its scrapes: misses (new users) and LRU hits
  let stop = false
  const traffic = (async () => {
    let u = 21
    while (!stop) {
      const user = u % 2 === 0 && u <= 120 ? u : 1 + (u % 20) // new users (MISS) and the 20 above (HIT-L1)
      u++
      await (await fetch(`${url}/recommend/${user}`)).arrayBuffer()
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()

  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/monitor.ts', '--targets', `${url},${dead}`, '--frames', '2', '--interval', '500', '--no-color'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  stop = true
  await traffic
  t.equal(code, 0, `monitor exited cleanly ${stderr}`)
  t.equal(stderr, '')
  t.notMatch(stdout, /\x1b\[/, 'plain output when not a TTY and --no-color')

  const frames = stdout.trimEnd().split(/\n\n(?=recsvc monitor )/)
  t.equal(frames.length, 2, 'two frames, separated by a blank line')
  const last = frames[1]!
  t.comment(`captured frame:\n${last}`)
  const host = new URL(url).host
  const deadHost = new URL(dead).host
  t.match(last, /^recsvc monitor .* frame 2 +2 targets: 1 up, 1 down$/m)
  t.match(last, /^TARGET +STATE +REQ\/S +OK% +P50 +P95 +P99 +HIT-L1 +HIT-L2 +MISS +STALE +FALLBACK$/m, 'tier columns')
  const row = last.split('\n').find((l) => l.startsWith(host + ' '))
  t.ok(row, 'a row for the replica')
  const cells = row!.trim().split(/\s+/)
  t.equal(cells[1], 'UP')
  t.match(cells[2], /^\d+(\.\d)?k?$/, 'a req/s figure')
  t.ok(Number(cells[2]) > 0, `traffic seen: ${cells[2]} req/s`)
  t.match(cells[3], /^\d+(\.\d)?%$/, 'a success rate')
  for (const q of cells.slice(4, 7)) t.match(q, /^\d+(\.\d+)?(ms|s)$/, `a latency figure: ${q}`)
  for (const share of cells.slice(7, 12)) t.match(share, /^(\d+(\.\d)?%|–)$/, `a tier share: ${share}`)
  t.match(last, new RegExp(`^${deadHost.replace(/\./g, '\\.')} +DOWN +.*ECONNREFUSED`, 'm'), 'the dead target is DOWN with its error')
  t.match(last, /^TOTAL \(1\) +1\/2 +\d/m, 'and the total row still renders')
  t.match(last, /^TARGET +POOL use\/idle\/q +SCORER-Q +SCORER% +EL-P99 +ELU +RSS +STATS-AGE +SUB +BREAKERS$/m)
  t.match(last, new RegExp(`^${host.replace(/\./g, '\\.')} +\\S+ +\\S+ +\\S+ +\\S+ +\\S+ +\\d+MiB`, 'm'), 'RSS of the replica')
  t.match(last, /^TARGET +LIMITED\/S +anonymous +free +premium +enterprise +admin +SHED\/S +SHED REASONS$/m)
})
