/**
 * `npm run monitor`: a live terminal view of the recsvc replicas, from their GET /metrics only.
 *
 *   npm run monitor -- --url http://localhost:8080            one target (e.g. through NGINX)
 *   npm run monitor -- --targets http://127.0.0.1:3001,http://127.0.0.1:3002   replicas directly
 *   options: --interval MS (default 1000)  --timeout MS (default min(2000, interval))
 *            --once | --frames N (render N frames, then exit)  --no-color
 *
 * Every interval it scrapes each target (in parallel, with a timeout; a target that fails shows
 * as DOWN with the error while the others keep updating) and renders rates from the difference
 * between that scrape and the previous one: the first frame comes one interval after a baseline
 * scrape. On a TTY the screen is redrawn in place; otherwise frames are printed one after the
 * other, separated by a blank line.
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { parseExposition } from './monitor/exposition.ts'
import { replicaRates, totalRates, type Rates, type Scrape } from './monitor/figures.ts'
import { renderFrame, type TargetView } from './monitor/render.ts'

const USAGE = `usage: npm run monitor -- [--url URL]... [--targets URL,URL,...] [--interval MS] [--timeout MS] [--once | --frames N] [--no-color]
  a URL without a path scrapes URL/metrics; default target http://127.0.0.1:3000`

export interface MonitorOptions {
  targets: string[]
  intervalMs: number
  timeoutMs: number
  frames?: number
  color: boolean
}

export function normaliseTarget (raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  const u = new URL(withScheme)
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/metrics'
  return u.toString()
}

export function parseOptions (argv: string[], env: NodeJS.ProcessEnv = process.env, isTTY = process.stdout.isTTY === true): MonitorOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', multiple: true },
      targets: { type: 'string', multiple: true },
      interval: { type: 'string' },
      timeout: { type: 'string' },
      once: { type: 'boolean' },
      frames: { type: 'string' },
      'no-color': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    },
    allowPositionals: false,
    strict: true
  })
  if (values.help === true) throw new UsageError('')
  const raw = [...(values.url ?? []), ...(values.targets ?? []).flatMap((t) => t.split(','))].map((s) => s.trim()).filter((s) => s !== '')
  const targets = (raw.length > 0 ? raw : ['http://127.0.0.1:3000']).map((t) => {
    try { return normaliseTarget(t) } catch { throw new UsageError(`not a URL: ${t}`) }
  })
  const intervalMs = positiveInt(values.interval ?? '1000', '--interval')
  const timeoutMs = values.timeout === undefined ? Math.min(2000, intervalMs) : positiveInt(values.timeout, '--timeout')
  let frames: number | undefined
  if (values.frames !== undefined) frames = positiveInt(values.frames, '--frames')
  if (values.once === true) frames = 1
  const color = values['no-color'] !== true && env.NO_COLOR === undefined && isTTY
  return { targets, intervalMs, timeoutMs, frames, color }
}

class UsageError extends Error {}

function positiveInt (s: string, flag: string): number {
  const n = Number(s)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${flag} wants a positive integer, got "${s}"`)
  return n
}

function shortName (url: string): string {
  const u = new URL(url)
  return u.pathname === '/metrics' ? u.host : `${u.host}${u.pathname}`
}

/** Why a fetch failed, in a few words (the undici cause when there is one). */
function describe (err: unknown, timeoutMs: number): string {
  const e = err as { name?: string, message?: string, cause?: { code?: string, message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timeout after ${timeoutMs} ms`
  const cause = e?.cause
  if (cause?.message !== undefined && cause.message !== '') return cause.message // e.g. connect ECONNREFUSED 127.0.0.1:3001
  if (e?.message === 'bad port') return 'bad port (fetch refuses to connect to it)'
  if (cause?.code !== undefined) return cause.code
  return e?.message ?? String(err)
}

export type ScrapeResult = { ok: true, scrape: Scrape } | { ok: false, error: string }

export async function scrape (url: string, timeoutMs: number): Promise<ScrapeResult> {
  const started = performance.now()
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'text/plain;version=0.0.4;q=1, */*;q=0.1' } })
    const body = await res.text()
    if (!res.ok) return { ok: false, error: `HTTP ${res.status} ${res.statusText}`.trim() }
    const expo = parseExposition(body)
    if (expo.samples.length === 0) return { ok: false, error: expo.errors.length > 0 ? `not a metrics exposition (${expo.errors[0]})` : 'empty exposition' }
    // the instant the scrape was taken: the middle of the request
    return { ok: true, scrape: { expo, atMs: (started + performance.now()) / 2 } }
  } catch (err) {
    return { ok: false, error: describe(err, timeoutMs) }
  }
}

interface TargetState { url: string, name: string, prev?: Scrape }

export async function run (opts: MonitorOptions, out: NodeJS.WriteStream = process.stdout): Promise<void> {
  const tty = out.isTTY === true
  const states: TargetState[] = opts.targets.map((url) => ({ url, name: shortName(url) }))
  const write = (s: string): Promise<void> => new Promise((resolve) => { out.write(s, () => resolve()) })
  if (tty) {
    out.write('\x1b[?25l') // hide the cursor while redrawing
    const restore = (): void => { out.write('\x1b[?25h\n') }
    process.once('exit', restore)
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(0))
    await write(`\x1b[H\x1b[2Jrecsvc monitor: scraping ${states.map((s) => s.name).join(', ')} …\n`)
  }

  // baseline
  let tick = performance.now()
  for (const [i, r] of (await Promise.all(states.map((s) => scrape(s.url, opts.timeoutMs)))).entries()) if (r.ok) states[i]!.prev = r.scrape

  for (let frame = 1; opts.frames === undefined || frame <= opts.frames; frame++) {
    tick += opts.intervalMs
    const wait = tick - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    else tick = performance.now() // fell behind (slow targets): start the next interval now
    const results = await Promise.all(states.map((s) => scrape(s.url, opts.timeoutMs)))
    const views: TargetView[] = []
    const rates: Rates[] = []
    results.forEach((r, i) => {
      const s = states[i]!
      if (r.ok) {
        const rt = replicaRates(s.prev, r.scrape)
        s.prev = r.scrape
        rates.push(rt)
        views.push({ name: s.name, up: true, rates: rt })
      } else {
        s.prev = undefined // the next successful scrape starts a new baseline
        views.push({ name: s.name, up: false, error: r.error })
      }
    })
    const screen = renderFrame({ targets: views, total: totalRates(rates), intervalMs: opts.intervalMs, frame, at: new Date() }, { color: opts.color, width: out.columns })
    if (tty) await write(`\x1b[H\x1b[2J${screen}\n`)
    else await write(`${frame > 1 ? '\n' : ''}${screen}\n`)
  }
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href
if (isMain) {
  let opts: MonitorOptions
  try {
    opts = parseOptions(process.argv.slice(2))
  } catch (err) {
    const msg = (err as Error).message
    process.stderr.write(`${msg === '' ? '' : `monitor: ${msg}\n`}${USAGE}\n`)
    process.exit(err instanceof UsageError && msg === '' ? 0 : 2)
  }
  run(opts).then(() => { process.exit(0) }, (err: unknown) => {
    process.stderr.write(`monitor: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
}
