// The scenarios `npm run bench` knows, in the order they run. Add one: a file exporting a
// `Scenario` (./types.ts), listed here (and, if it has a target, in ../report/targets.ts).
import { batch100, batch100Cold, batch20, batch20Cold } from './batch.ts'
import { cacheLayer } from './cache-layer.ts'
import { cold, cold10k } from './cold.ts'
import { hot } from './hot.ts'
import { invalidationStorm } from './invalidation-storm.ts'
import { l2Only } from './l2-only.ts'
import type { Scenario } from './types.ts'
import { warmL1 } from './warm-l1.ts'
import { zipfHash, zipfLeastConn } from './zipf.ts'

export const SCENARIOS: readonly Scenario[] = [
  hot, warmL1, l2Only, cold10k, cold, batch20, batch100, batch20Cold, batch100Cold,
  invalidationStorm, zipfLeastConn, zipfHash, cacheLayer
]
