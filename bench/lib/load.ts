// The load: autocannon, run programmatically from the bench process over 127.0.0.1. With several
// target URLs (replicas without a balancer) one autocannon instance per URL runs at the same time,
// the connections split between them: req/s and counts are summed, latency percentiles are the
// worst instance's (a conservative merge; with one URL they are autocannon's own).
import autocannon from 'autocannon'

/** One request: a path, or a method, path, body and headers (a write). */
export type NextRequest = string | { method: 'POST' | 'PUT' | 'DELETE' | 'GET', path: string, body?: string, headers?: Record<string, string> }

export interface LoadOptions {
  urls: readonly string[]
  paths: () => NextRequest
  connections: number
  seconds: number
  /** stop after this many requests instead of after `seconds` (summed over instances) */
  amount?: number
  /** per-request timeout, s */
  timeoutS?: number
}

export interface LoadResult {
  /** mean of autocannon's per-second samples, summed over instances */
  reqPerSec: number
  requests: number
  /** measured length (autocannon stops at its first 1 s tick after the duration) */
  seconds: number
  latency: { p50: number, p97_5: number, p99: number, max: number, mean: number }
  errors: number
  timeouts: number
  non2xx: number
  bytesPerSec: number
  connections: number
  instances: number
}

const active = new Set<autocannon.Instance>()

/** Stops any load in flight (Ctrl-C). */
export function stopLoad (): void {
  for (const i of active) try { i.stop() } catch {}
}

/** autocannon's result, and when its last response arrived (performance.now()). */
function one (url: string, o: LoadOptions, connections: number, amount: number | undefined): Promise<{ r: autocannon.Result, lastResponseAt: number }> {
  return new Promise((resolve, reject) => {
    let lastResponseAt = 0
    const inst = autocannon({
      url,
      connections,
      ...(amount !== undefined ? { amount } : { duration: o.seconds }),
      timeout: o.timeoutS ?? 10,
      requests: [{
        setupRequest: (req) => {
          const next = o.paths()
          if (typeof next === 'string') return { ...req, method: 'GET', path: next, body: undefined }
          return { ...req, method: next.method, path: next.path, body: next.body, headers: { ...req.headers, ...next.headers } }
        }
      }]
    }, (err, res) => {
      active.delete(inst)
      if (err) reject(err)
      else resolve({ r: res, lastResponseAt })
    })
    inst.on('response', () => { lastResponseAt = performance.now() })
    active.add(inst)
  })
}

export async function runLoad (o: LoadOptions): Promise<LoadResult> {
  if (o.urls.length === 0) throw new Error('no target URL')
  const n = Math.min(o.urls.length, o.connections)
  const split = o.urls.slice(0, n).map((_u, i) => Math.floor(o.connections / n) + (i < o.connections % n ? 1 : 0))
  const amounts = o.amount === undefined ? undefined : split.map((_c, i) => Math.floor(o.amount! / n) + (i < o.amount! % n ? 1 : 0))
  const t0 = performance.now()
  const done = await Promise.all(o.urls.slice(0, n).map((u, i) => one(u, o, split[i]!, amounts?.[i])))
  const results = done.map((d) => d.r)
  const answeredSeconds = (Math.max(...done.map((d) => d.lastResponseAt)) - t0) / 1000
  const sum = (f: (r: autocannon.Result) => number) => results.reduce((s, r) => s + (f(r) || 0), 0)
  const max = (f: (r: autocannon.Result) => number) => Math.max(...results.map((r) => f(r) || 0))
  const requests = sum((r) => r.requests.total)
  // With `amount` the run ends mid-second, but autocannon reports it done (and its `duration`)
  // only at its next 1 s tick: 3,000 requests answered in 0.6 s read as 1.03 s. So the rate of a
  // fixed-count run is the total over the time until its last response.
  const seconds = o.amount !== undefined && answeredSeconds > 0 ? answeredSeconds : max((r) => r.duration)
  return {
    reqPerSec: o.amount !== undefined && seconds > 0 ? requests / seconds : sum((r) => r.requests.average),
    requests,
    seconds,
    latency: {
      p50: max((r) => r.latency.p50),
      p97_5: max((r) => r.latency.p97_5),
      p99: max((r) => r.latency.p99),
      max: max((r) => r.latency.max),
      mean: requests > 0 ? sum((r) => r.latency.mean * r.requests.total) / requests : 0
    },
    errors: sum((r) => r.errors),
    timeouts: sum((r) => r.timeouts),
    non2xx: sum((r) => r.non2xx),
    bytesPerSec: sum((r) => r.throughput.average),
    connections: o.connections,
    instances: n
  }
}
