// What startStack (and the CLI) can be asked for, and the defaults.

export interface StackOptions {
  /** API processes to run (default 1). */
  replicas?: number
  /** First API port; replica i listens on base + i - 1 (default 3001). 0 = any free ports. */
  apiBasePort?: number
  /** Run nginx in front of the replicas (default false for startStack; `npm run stack` turns it on
   *  unless --no-nginx). */
  nginx?: boolean
  /** nginx's public port on 127.0.0.1 (default 8080). 0 = any free port. */
  port?: number
  /** nginx's stub_status port on 127.0.0.1 (default: port + 1 when free, otherwise any free port). */
  nginxStatusPort?: number
  /** nginx's per-IP limits (default on, unless NGINX_RATE_LIMIT=off in `env`); off for benchmarks. */
  rateLimit?: boolean
  /** How nginx picks a replica (default least_conn, unless NGINX_BALANCE in `env` says hash):
   *  'hash' = consistent hashing of the user id, so each replica's L1 holds its own users. */
  balance?: 'least_conn' | 'hash'
  /** Run the replicas from src/ through tsx instead of dist/ (no build needed; slower start). */
  fromSource?: boolean
  /** SHUTDOWN_DRAIN_DELAY_MS for replicas behind nginx, unless `env` sets it (default 500). */
  drainDelayMs?: number
  /** Demo users to seed when the users table is empty (default 10000; 0 = do not seed). */
  users?: number
  /** Wipe the state directory (databases included) before starting. */
  fresh?: boolean
  /** Where Redis/MySQL state, pid files and logs live (default <repo>/.stack). */
  stateDir?: string
  /** Reuse this Redis instead of starting one (the CLI passes $REDIS_URL). */
  redisUrl?: string
  /** Reuse this MySQL instead of starting one (the CLI passes $MYSQL_URL). */
  mysqlUrl?: string
  /** Port for a Redis we start: preferred 6380, or any free one if taken. 0 = any free port. */
  redisPort?: number
  /** Port for a MariaDB/MySQL we start: preferred 3307, or any free one if taken. 0 = any free port. */
  mysqlPort?: number
  /** ADMIN_TOKEN for the replicas (>= 16 chars); generated when absent. */
  adminToken?: string
  /** Run `npm run build` before starting the replicas (default true). */
  build?: boolean
  /** When binaries are missing and we are root, apt-get install them (default false; the CLI sets true). */
  install?: boolean
  /** LOG_LEVEL for the replicas (default $LOG_LEVEL or info). */
  logLevel?: string
  /** Base environment of every child (default process.env); for the replicas the stack sets PORT,
   *  HOST, REPLICA_ID, MYSQL_URL, REDIS_URL and ADMIN_TOKEN on top, and behind nginx TRUST_PROXY and
   *  SHUTDOWN_DRAIN_DELAY_MS unless set here. */
  env?: NodeJS.ProcessEnv
  /** Where the stack's own and its children's (prefixed) log lines go (default console.log). */
  log?: (line: string) => void
  /** Print the replicas' pino JSON lines as they are instead of compacted (default false). */
  rawLogs?: boolean
  /** Aborting stops whatever has been started and makes startStack reject. */
  signal?: AbortSignal
  /** Max wait for each replica's /health/ready (default 60 s). */
  readyTimeoutMs?: number
  /** Grace before an API process that ignores SIGTERM is killed (default 15 s). */
  apiStopTimeoutMs?: number
}

export const DEFAULTS = { replicas: 1, apiBasePort: 3001, port: 8080, users: 10_000, redisPort: 6380, mysqlPort: 3307 }
