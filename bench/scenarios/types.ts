// The contract between `bench/run.ts` and a scenario (bench/scenarios/<name>.ts).
//
// A scenario says what to start (`setup`, through the context's helpers, so the runner can stop
// everything), which requests to send (`paths`), and what it is compared to (`reference`): the
// runner fetches one real answer (`samplePath`), measures the reference under the same load
// settings in the same run, warms the target up, scrapes each replica's /metrics, measures, scrapes
// again, then calls `teardown`.
import type { NextRequest } from '../lib/load.ts'
import type { BenchOptions } from '../lib/options.ts'
import type { StartedReference } from '../lib/reference.ts'
import type { Alongside, CustomResult } from '../report/types.ts'
import type { NodeServer } from '../lib/procs.ts'

/** What a scenario's throughput is divided by:
 *  - `baseline`: bench/baseline-server.ts serving the scenario's sample answer (same bytes), for
 *    answers that should cost about a bare route;
 *  - `store-ceiling`: bench/store-ceiling-server.ts (the miss's SQL, no cache, no scoring), for
 *    cold scenarios. */
export type ReferenceKind = 'baseline' | 'store-ceiling'

export interface Target {
  /** base URLs the load goes to (one per replica, or the deployment's) */
  urls: string[]
  /** base URLs whose /metrics are scraped before and after (the replicas themselves) */
  metricsUrls: string[]
  /** the next request (a path, or a write); called once per request */
  paths: () => NextRequest
  /** one request whose answer is the baseline's body */
  samplePath: string
  /** paths for the reference (default: `paths`) */
  referencePaths?: () => NextRequest
  /** a measured run is this many requests (the reference's too) instead of `duration` seconds */
  amount?: number
  /** the warm-up is this many requests instead of `warmup` seconds */
  warmupAmount?: number
  /** runs alongside each measured run until `signal` aborts (the invalidation storm) */
  during?: (signal: AbortSignal) => Promise<Alongside>
  /** the database the store ceiling reads (default: the fixture's) */
  referenceMysqlUrl?: string
  /** extra lines for the report (configuration notes) */
  notes?: string[]
  teardown: () => Promise<void>
}

export interface BenchContext {
  opts: BenchOptions
  /** a progress line on stderr */
  log: (msg: string) => void
  /** where the processes' logs go */
  logDir: string
  /** the app's ADMIN_TOKEN (POST /events, /invalidate-cache) */
  adminToken: string
  /** Own Redis and MySQL (tools/servers/throwaway.ts) with the fixture loaded (tools/fixture.ts),
   *  started on the first call and shared by the scenarios of the run. */
  services: () => Promise<{ mysqlUrl: string, redisUrl: string }>
  /** A database on the run's MySQL seeded with `users` demo users (scripts/seed.ts, seed 42),
   *  made once per size per run; its URL. */
  dataset: (users: number) => Promise<string>
  /** Starts `replicas` app processes (`node dist/src/server.js`, built first when stale) in the default
   *  configuration with the app's rate limits off; `env` adds or overrides variables. */
  startApp: (o: { replicas: number, env?: Record<string, string>, label?: string }) => Promise<NodeServer[]>
}

export interface Scenario {
  name: string
  description: string
  /** default `baseline` */
  reference?: ReferenceKind
  /** set up anew for every run (fresh replicas, empty caches) and measured without a warm-up */
  fresh?: boolean
  /** connections, when not the run's --connections */
  connections?: number
  /** measured seconds per run (default --duration) */
  duration?: (o: BenchOptions) => number
  /** measured seconds per reference run (default: as the scenario's); the ratio is of rates */
  referenceDuration?: (o: BenchOptions) => number
  /** measured runs (default --runs) */
  runs?: (o: BenchOptions) => number
  /** the reference, when not the usual one per replica (behind nginx, say) */
  startReference?: (kind: ReferenceKind, ctx: BenchContext, sampleBody: string, count: number, mysqlUrl?: string) => Promise<StartedReference>
  setup: (ctx: BenchContext) => Promise<Target>
  /** measured in-process instead of over HTTP: no target, no reference (the cache layer) */
  custom?: (ctx: BenchContext) => Promise<CustomResult>
}
