// `npm run seed`: fills the database with realistic, reproducible demo data.
//
//   npm run seed -- [--users N] [--items M] [--categories C] [--searches-per-user S]
//                   [--purchases-per-user P] [--seed X] [--now ISO] [--reset | --if-empty]
//                   [--mysql-url URL] [--method auto|infile|insert] [--concurrency K] [--no-stats]
//   node dist/scripts/seed.js ...      (the same, compiled, in the image)
//
// Whether it may write (seed/policy.ts):
// - by default a database with rows in any of categories, items, users, searches, purchases is
//   refused; --reset drops this project's tables (and only those) first and migrates again;
// - --if-empty is the policy of automated runs (the docker-compose seed service, the local stack):
//   users present -> "database already has N users; nothing to do", exit 0, nothing touched;
//   no users but other rows (an interrupted seed) -> start over as --reset does, saying so;
//   empty or no tables yet -> seed. With --reset as well, a database with users is still skipped.
//
// What it makes:
// - categories with real names (electronics, books, ...; "kids books", "vintage electronics", ... when
//   more are asked for), whose popularity follows a Zipf law;
// - items, each in one category (bigger catalogues in popular categories), with Zipf-like popularity
//   inside their category;
// - users, each with a taste: 1-4 preferred categories drawn by popularity; 85% of their events fall in
//   those, the rest anywhere;
// - searches (query text for the category) and purchases (an item of the category, often a few hours or
//   days after a search in the same category), spread over the 90 days before --now; per-user counts
//   vary around the means (log-normal activity × Poisson), so some users have no events at all.
//
// The same --seed and --now give identical rows (every id is explicit, every user's events come from
// that user's own PRNG stream), whatever the batch size, method or number of connections.
//
// Loading: LOAD DATA LOCAL INFILE streamed from memory (about 2x faster than multi-row INSERT: 1M users
// in ~55 s against ~115 s on MariaDB 10.11, 2 cores)
// when the server allows it, else multi-row INSERTs of ~1 MB; FK and unique checks off for the
// session; generation of the next batch overlaps the loading of the previous ones on K connections.
// refreshGlobalStats runs at the end.
//
// seed(opts) is the same as a function, for tests and scripts/stack.ts.
//
// This file is the entry point only; the parts live in seed/: prng.ts (random streams),
// vocabulary.ts (names), sink.ts (rows as load-ready text), generate.ts (the data model and its rows),
// load.ts (LOAD DATA / INSERT, create, reset), policy.ts (when seeding may write), progress.ts,
// seed.ts (seed() and its options), cli.ts (flags, USAGE, main).

import { isMain } from './lib/is-main.ts'
import { main } from './seed/cli.ts'

export { main, USAGE } from './seed/cli.ts'
export { seed, SEED_DEFAULTS, type SeedLoaded, type SeedOptions, type SeedResult, type SeedSkipped } from './seed/seed.ts'
export { decideIfEmpty, occupancy, type IfEmptyDecision, type Occupancy } from './seed/policy.ts'
export { mulberry32 } from './seed/prng.ts'
export { categoryNames } from './seed/vocabulary.ts'

if (isMain(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`seed failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
