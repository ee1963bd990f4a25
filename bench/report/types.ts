// The shape of a `npm run bench` report (`<out>/<timestamp>.json`).
import type { LoadResult } from '../lib/load.ts'
import type { ReplicaFigures } from '../lib/metrics.ts'
import type { BenchOptions } from '../lib/options.ts'
import type { ReferenceKind } from '../scenarios/types.ts'

export interface Latency { p50: number, p97_5: number, p99: number, max: number, mean: number }

export interface ReferenceResult {
  kind: ReferenceKind
  label: string
  reqPerSec: number
  latency: Latency
  errors: number
  timeouts: number
  non2xx: number
  load: LoadResult
}

export interface ScenarioResult {
  name: string
  description: string
  /** the answer fetched before the runs: the baseline serves these bytes */
  sample?: { path: string, status: number, bytes: number, xCache?: string }
  baseline?: ReferenceResult
  /** reqPerSec / baseline.reqPerSec */
  ratio?: number
  reqPerSec?: number
  latency?: Latency
  errors?: number
  timeouts?: number
  non2xx?: number
  load?: LoadResult
  /** each replica's figures from its /metrics, before and after the measured run */
  replicas: ReplicaFigures[]
  /** answers by tier over all replicas, shares 0..1 (undefined when /metrics could not be read) */
  tierMix?: Record<string, number>
  /** the worst replica's event-loop delay p99, ms */
  eventLoopP99Ms?: number
  /** CPU seconds per wall second, summed over replicas */
  cpu?: number
  /** the largest replica's RSS after the run */
  rssBytes?: number
  notes: string[]
  /** set when the scenario failed; the other scenarios still run */
  error?: string
}

export interface Machine {
  hostname: string
  platform: string
  arch: string
  cpus: number
  cpuModel: string
  totalMemBytes: number
  loadAvgBefore: number[]
  loadAvgAfter?: number[]
  node: string
  gitCommit?: string
  gitDirty?: boolean
}

export interface BenchReport {
  tool: 'recsvc npm run bench'
  version: 1
  startedAt: string
  finishedAt?: string
  options: BenchOptions
  /** how the app was run */
  config: { target: string, env: Record<string, string>, notes: string[] }
  machine: Machine
  scenarios: ScenarioResult[]
}
