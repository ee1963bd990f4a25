// The scenarios `npm run bench` knows, in the order they run. Add one: a file exporting a
// `Scenario` (./types.ts), listed here. Still to come (issue 12): `cold` (against the store
// ceiling: `reference: 'store-ceiling'`), rotating users, L2, batch.
import { hot } from './hot.ts'
import type { Scenario } from './types.ts'

export const SCENARIOS: readonly Scenario[] = [hot]
