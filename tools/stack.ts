// `npm run stack`: the whole service on one machine, without Docker.
//
// Starts (or reuses) Redis and MariaDB/MySQL with their state under .stack/, creates the database,
// applies migrations, seeds demo data into an empty database, builds, runs N API replicas on
// consecutive ports, and the real nginx binary in front of them on --port (8080), with a config
// rendered from nginx/nginx.conf.template (tools/nginx-config.ts, local mode), as in compose.
// Ctrl-C stops everything it started, and nothing else.
//
//   npm run stack -- [--replicas N] [--api-base-port P] [--users N] [--fresh] [--port P]
//                    [--status-port P] [--no-rate-limit] [--no-nginx] [--state-dir DIR]
//                    [--no-build] [--raw-logs]
//
// startStack() is the same thing as a function, for tests (nginx only with `nginx: true` there),
// with killReplica/startReplica/restartReplica for failure and rolling-restart tests.
//
// The parts live in tools/stack/: start.ts (start-up and stop order), redis.ts, mysql.ts, seed.ts,
// api.ts (replicas), nginx.ts, binaries.ts (find/install), processes.ts, state-dir.ts, cli.ts.

import { isMain } from '../scripts/lib/is-main.ts'
import { main } from './stack/cli.ts'

export { StackError } from './stack/errors.ts'
export type { StackOptions } from './stack/options.ts'
export { repoRoot } from './stack/repo.ts'
export { startStack, type Stack, type StackProcess } from './stack/start.ts'

if (isMain(import.meta.url)) {
  await main()
}
