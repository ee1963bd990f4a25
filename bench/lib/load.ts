// The load: autocannon, run programmatically from the bench process over 127.0.0.1. With several
// target URLs (replicas without a balancer) one autocannon instance per URL runs at the same time,
// the connections split between them: req/s and counts are summed, latency percentiles are the
// worst instance's (a conservative merge; with one URL they are autocannon's own).
import autocannon from 'autocannon'

export interface LoadOptions {
  urls: readonly string[]
  paths: () => string
  connections: number
  seconds: number
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

function one (url: string, o: LoadOptions, connections: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const inst = autocannon({
      url,
      connections,
      duration: o.seconds,
      timeout: o.timeoutS ?? 10,
      requests: [{ setupRequest: (req) => ({ ...req, path: o.paths() }) }]
    }, (err, res) => {
      active.delete(inst)
      if (err) reject(err)
      else resolve(res)
    })
    active.add(inst)
  })
}

export async function runLoad (o: LoadOptions): Promise<LoadResult> {
  if (o.urls.length === 0) throw new Error('no target URL')
  const n = Math.min(o.urls.length, o.connections)
  const split = o.urls.slice(0, n).map((_u, i) => Math.floor(o.connections / n) + (i < o.connections % n ? 1 : 0))
  const results = await Promise.all(o.urls.slice(0, n).map((u, i) => one(u, o, split[i]!)))
  const sum = (f: (r: autocannon.Result) => number) => results.reduce((s, r) => s + (f(r) || 0), 0)
  const max = (f: (r: autocannon.Result) => number) => Math.max(...results.map((r) => f(r) || 0))
  const requests = sum((r) => r.requests.total)
  return {
    reqPerSec: sum((r) => r.requests.average),
    requests,
    seconds: max((r) => r.duration),
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
