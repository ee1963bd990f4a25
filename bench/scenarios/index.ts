// The scenarios `npm run bench` knows, in the order they run. Add one: a file exporting a
// `Scenario` (./types.ts), listed here. Still to come (issue 12): zipf through nginx with 6
// replicas, L1 locality (consistent hashing), the invalidation storm, the cache layer alone.
import { batch100, batch100Cold, batch20, batch20Cold } from './batch.ts'
import { cold } from './cold.ts'
import { hot } from './hot.ts'
import { l2Only } from './l2-only.ts'
import type { Scenario } from './types.ts'
import { warmL1 } from './warm-l1.ts'

export const SCENARIOS: readonly Scenario[] = [hot, warmL1, l2Only, cold, batch20, batch100, batch20Cold, batch100Cold]
