// The contract between `bench/run.ts` and a scenario (bench/scenarios/<name>.ts).
//
// A scenario says what to start (`setup`, through the context's helpers, so the runner can stop
// everything), which requests to send (`paths`), and what it is compared to (`reference`): the
// runner fetches one real answer (`samplePath`), measures the reference under the same load
// settings in the same run, warms the target up, scrapes each replica's /metrics, measures, scrapes
// again, then calls `teardown`.
import type { BenchOptions } from '../lib/options.ts'
import type { NodeServer } from '../lib/procs.ts'

/** What a scenario's throughput is divided by:
 *  - `baseline`: bench/baseline-server.ts serving the scenario's sample answer (same bytes), for
 *    answers that should cost about a bare route;
 *  - `store-ceiling`: bench/store-ceiling-server.ts (the miss's SQL, no cache, no scoring), for
 *    cold scenarios (not used by a scenario yet: the `cold` scenario is to come). */
export type ReferenceKind = 'baseline' | 'store-ceiling'

export interface Target {
  /** base URLs the load goes to (one per replica, or the deployment's) */
  urls: string[]
  /** base URLs whose /metrics are scraped before and after (the replicas themselves) */
  metricsUrls: string[]
  /** the next request path; called once per request */
  paths: () => string
  /** one request whose answer is the baseline's body */
  samplePath: string
  /** paths for the reference (default: `paths`) */
  referencePaths?: () => string
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
  /** Own Redis and MySQL (tools/servers/throwaway.ts) with the fixture loaded (tools/fixture.ts),
   *  started on the first call and shared by the scenarios of the run. */
  services: () => Promise<{ mysqlUrl: string, redisUrl: string }>
  /** A database on the run's MySQL seeded with `users` demo users (scripts/seed.ts, seed 42),
   *  made once per size per run; its URL. */
  dataset: (users: number) => Promise<string>
  /** Starts `replicas` app processes (`node --import tsx src/server.ts`) in the default
   *  configuration with the app's rate limits off; `env` adds or overrides variables. */
  startApp: (o: { replicas: number, env?: Record<string, string>, label?: string }) => Promise<NodeServer[]>
}

export interface Scenario {
  name: string
  description: string
  /** default `baseline` */
  reference?: ReferenceKind
  setup: (ctx: BenchContext) => Promise<Target>
}
