// The shape of a `npm run bench` report (`<out>/<timestamp>.json`).
import type { LoadResult } from '../lib/load.ts'
import type { ReplicaFigures } from '../lib/metrics.ts'
import type { BenchOptions } from '../lib/options.ts'
import type { ReferenceKind } from '../scenarios/types.ts'
import type { TargetCheck } from './targets.ts'

export interface Latency { p50: number, p97_5: number, p99: number, max: number, mean: number }

/** One measured run of a reference. */
export interface ReferenceRun {
  reqPerSec: number
  latency: Latency
  errors: number
  timeouts: number
  non2xx: number
  load: LoadResult
}

/** A reference over the runs: medians (errors summed), and each run. */
export interface ReferenceResult {
  kind: ReferenceKind
  label: string
  reqPerSec: number
  latency: Latency
  errors: number
  timeouts: number
  non2xx: number
  runs: ReferenceRun[]
}

/** One measured run of a scenario's target. */
export interface RunResult {
  reqPerSec: number
  /** reqPerSec / the paired reference run's */
  ratio?: number
  latency: Latency
  errors: number
  timeouts: number
  non2xx: number
  load: LoadResult
  replicas: ReplicaFigures[]
  tierMix?: Record<string, number>
  eventLoopP99Ms?: number
  cpu?: number
  rssBytes?: number
  /** what ran alongside the load (the invalidation storm), as the scenario reports it */
  alongside?: Alongside
}

/** Figures of something a scenario runs next to the load. */
export interface Alongside { title: string, figures: Record<string, number | string>, notes: string[] }

/** A scenario measured in-process rather than over HTTP (the cache layer). */
export interface CustomResult {
  title: string
  columns: string[]
  rows: Array<Array<string | number>>
  notes: string[]
  data?: unknown
}

export interface ScenarioResult {
  name: string
  description: string
  /** the answer fetched before the runs: the baseline serves these bytes */
  sample?: { path: string, status: number, bytes: number, xCache?: string }
  baseline?: ReferenceResult
  /** the median of the runs' ratios to their paired reference runs */
  ratio?: number
  reqPerSec?: number
  latency?: Latency
  errors?: number
  timeouts?: number
  non2xx?: number
  /** each replica's figures from its /metrics, over the median run */
  replicas: ReplicaFigures[]
  /** every measured run (the figures above are their medians) */
  runs: RunResult[]
  custom?: CustomResult
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
  /** the targets against this run's figures (bench/report/targets.ts) */
  targets?: TargetCheck[]
}
