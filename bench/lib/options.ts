// Command-line options of `npm run bench` (bench/run.ts).
import { parseArgs } from 'node:util'

export interface BenchOptions {
  quick: boolean
  only?: string[]
  /** a running deployment: nothing is started but the reference */
  url?: string
  replicas: number
  /** measured seconds per scenario (and per reference) */
  duration: number
  /** warm-up seconds before each measurement */
  warmup: number
  connections: number
  /** measured runs per scenario, each paired with a reference run; medians reported */
  runs: number
  out: string
  /** run the app replicas with --cpu-prof (profiles in the run's log directory) */
  cpuProf: boolean
  help: boolean
}

export const USAGE = `npm run bench -- [options]

  --quick              short warm-up (1 s) and duration (3 s)
  --only NAME[,NAME]   run only these scenarios
  --url URL            benchmark a running deployment (start nothing but the reference)
  --replicas N         app replicas to start (default 1; load split between them, no balancer)
  --duration S         measured seconds per scenario and per reference (default 8, --quick 3)
  --warmup S           warm-up seconds before each measurement (default 2, --quick 1)
  --connections N      concurrent connections (default 50)
  --runs N             measured runs per scenario, medians reported (default 3, --quick 1)
  --out DIR            where the reports go (default bench/results)
  --cpu-prof           profile the app replicas (node --cpu-prof; .cpuprofile files in the log directory)
  -h, --help`

export class UsageError extends Error {}

function num (name: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def
  const n = Number(v)
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number ${min}..${max}, got ${JSON.stringify(v)}`)
  return n
}

export function parseOptions (argv: string[], scenarioNames: readonly string[]): BenchOptions {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        url: { type: 'string' },
        replicas: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        runs: { type: 'string' },
        out: { type: 'string', default: 'bench/results' },
        'cpu-prof': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false }
      }
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const quick = values.quick === true
  let only: string[] | undefined
  if (values.only !== undefined) {
    only = values.only.split(',').map((s) => s.trim()).filter((s) => s !== '')
    const unknown = only.filter((n) => !scenarioNames.includes(n))
    if (unknown.length > 0 || only.length === 0) throw new UsageError(`--only: unknown scenario ${unknown.join(', ') || '(none given)'}; known: ${scenarioNames.join(', ')}`)
  }
  let url: string | undefined
  if (values.url !== undefined) {
    try { url = new URL(values.url).toString().replace(/\/+$/, '') } catch { throw new UsageError(`--url: not a URL: ${values.url}`) }
  }
  const replicas = Math.round(num('replicas', values.replicas, 1, 1, 16))
  if (url !== undefined && values.replicas !== undefined) throw new UsageError('--replicas and --url exclude each other (a deployment has its own replicas)')
  return {
    quick,
    only,
    url,
    replicas,
    duration: num('duration', values.duration, quick ? 3 : 8, 1, 3600),
    warmup: num('warmup', values.warmup, quick ? 1 : 2, 0, 600),
    connections: Math.round(num('connections', values.connections, 50, 1, 10_000)),
    runs: Math.round(num('runs', values.runs, quick ? 1 : 3, 1, 20)),
    out: values.out ?? 'bench/results',
    cpuProf: values['cpu-prof'] === true,
    help: values.help === true
  }
}
