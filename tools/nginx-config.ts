// Renders nginx/nginx.conf.template, the one nginx config of this project, for two modes:
//
//   compose  upstream `api:3000` (every replica of the scaled compose service, through Docker's DNS),
//            listens on 8080, stub_status on 127.0.0.1:8081, logs to stdout/stderr. Committed as
//            nginx/nginx.compose.conf (and nginx.compose.no-rate-limit.conf for benchmarks;
//            nginx.compose.hash.conf and nginx.compose.hash.no-rate-limit.conf with --balance hash).
//   local    upstream 127.0.0.1:PORT for each replica started by `npm run stack`; pid file, logs and
//            temporary paths under the stack's state directory, so nginx runs as any user.
//
//   npm run nginx-config -- --mode compose [--balance least_conn|hash] [--no-rate-limit] [--internal-networks CIDR,CIDR] [--out FILE]
//   npm run nginx-config -- --mode local --api-ports 3001,3002 [--port 8080] [--status-port 8081]
//                           [--state-dir .stack] [--balance least_conn|hash] [--no-rate-limit]
//                           [--internal-networks CIDR,CIDR] [--out FILE]
//   npm run nginx-config -- --update    rewrite the committed compose renderings
//   npm run nginx-config -- --check     exit 1 when a committed rendering is out of date
//
// NGINX_RATE_LIMIT=off in the environment means --no-rate-limit; NGINX_BALANCE=hash means --balance hash.

import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { isIPv4, isIPv6 } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { isMain } from '../scripts/lib/is-main.ts'

/** Per-client-IP protection: the only place these numbers are written down. */
export const RATE_LIMIT_DEFAULTS = Object.freeze({
  /** sustained requests per second per client IP (limit_req_zone rate) */
  ratePerSecond: 100,
  /** requests above the rate accepted at once before 429s (limit_req burst, nodelay) */
  burst: 50,
  /** open connections per client IP (limit_conn) */
  connectionsPerIp: 100
})

/** Sized for 10,000 concurrent client connections in a single worker (each also needs an upstream
 *  connection, hence the descriptor limit of 4x). */
export const CAPACITY_DEFAULTS = Object.freeze({
  workerConnections: 16_384,
  workerRlimitNofile: 65_536,
  /** idle keep-alive connections to the replicas cached per worker, for the whole upstream group
   *  (not per replica). A request in flight holds one upstream connection and anything above the
   *  cache is closed after its answer, so the cache covers the requests in flight: 1000 client
   *  connections, each with a request in flight, all in one worker (worker_processes auto, and
   *  multi_accept lets one worker take a whole burst; dividing by the number of workers or of
   *  replicas would undersize it). 128 made nginx open a connection per request above 128. */
  upstreamKeepalive: 1024
})

/** Passive health: a replica with `maxFails` failed attempts, each within `failTimeoutS` seconds of
 *  the one before, gets no requests for `failTimeoutS` seconds (open-source nginx has no active
 *  health checks). Only connection errors and timeouts count (proxy_next_upstream error timeout),
 *  never an answer of the app: a dead replica (connection refused, sub-millisecond) spends its 10
 *  failures within milliseconds under load, while a busy one (a full accept queue: connect timeout)
 *  is not taken out by the odd timeout. The template explains the numbers. */
export const UPSTREAM_DEFAULTS = Object.freeze({ maxFails: 10, failTimeoutS: 2 })

export const COMPOSE_DEFAULTS = Object.freeze({
  upstreamHost: 'api',
  upstreamPort: 3000,
  listen: '8080',
  statusListen: '127.0.0.1:8081',
  pidFile: '/tmp/nginx.pid',
  /** nginx creates only the last path component of a temp path: /tmp/nginx_proxy_temp etc. */
  tempPrefix: '/tmp/nginx_',
  accessLog: '/dev/stdout',
  /** --balance hash: the upstream's `server` lines, one per replica address, written by
   *  nginx/dns-reload.sh (the container's command) before nginx starts and before every reload. */
  serversFile: '/tmp/nginx_upstream_servers.conf'
})

/** How nginx picks a replica. least_conn: the one with the fewest requests in flight (load aware;
 *  every replica ends up caching every hot user). hash: consistent hashing of the user id of
 *  GET /recommend/:id, so each replica's L1 holds its own share of the users (the template says
 *  why and what it costs). */
export type Balance = 'least_conn' | 'hash'
export const BALANCES: readonly Balance[] = Object.freeze(['least_conn', 'hash'])
/** Until scenario 7 of the benchmarks (issue 12) has measured both. */
export const DEFAULT_BALANCE: Balance = 'least_conn'

export function parseBalance (v: string, what = '--balance'): Balance {
  const b = v.trim().toLowerCase()
  if (!(BALANCES as readonly string[]).includes(b)) throw new NginxConfigError(`${what} must be ${BALANCES.join(' or ')}, got ${JSON.stringify(v)}`)
  return b as Balance
}

/** NGINX_BALANCE=least_conn|hash; unset or empty means the default. Anything else is an error,
 *  not the default: a benchmark run meant to compare the two must not silently measure one twice. */
export function balanceFromEnv (env: NodeJS.ProcessEnv = process.env): Balance {
  const v = env.NGINX_BALANCE ?? ''
  return v.trim() === '' ? DEFAULT_BALANCE : parseBalance(v, 'NGINX_BALANCE')
}

/** Who may reach the internal routes through nginx: /metrics, /health and /health/*, and the admin
 *  routes /invalidate-cache and /events (`allow CIDR; ... deny all;`, everyone else gets a JSON
 *  403). The public API (/recommend, /batch-recommend, /docs) is for everyone.
 *  - local: loopback only. The stack's nginx listens on 127.0.0.1, so everything on this machine
 *    (`npm run stack` users, the e2e tests, the stack's own readiness wait) is internal.
 *  - compose: the RFC 1918 private ranges plus loopback. Docker's NAT makes a client on the host
 *    (curl localhost:8080/metrics) arrive from the compose network's gateway (10.201.0.1 with the
 *    default RECSVC_SUBNET), not from 127.0.0.1, and the other containers come from that network
 *    too. Clients elsewhere on a private LAN count as internal as well: operators narrow the list
 *    with --internal-networks (e.g. the compose subnet only). */
export const INTERNAL_NETWORKS_DEFAULTS = Object.freeze({
  local: Object.freeze(['127.0.0.1/32', '::1/128']),
  compose: Object.freeze(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', '::1/128'])
})

export interface RateLimit { ratePerSecond: number, burst: number, connectionsPerIp: number }

interface CommonOptions {
  /** Per-IP limits: true/undefined = RATE_LIMIT_DEFAULTS, an object overrides some numbers,
   *  false = off (benchmarks). */
  rateLimit?: boolean | Partial<RateLimit>
  workerProcesses?: number | 'auto'
  workerConnections?: number
  workerRlimitNofile?: number
  upstreamKeepalive?: number
  maxFails?: number
  failTimeoutS?: number
  /** How nginx picks a replica (default DEFAULT_BALANCE). */
  balance?: Balance
  /** The upstream's `server` lines come from this file, written by nginx/dns-reload.sh (one per
   *  address of NGINX_UPSTREAM_HOST), instead of from the config. Default: COMPOSE_DEFAULTS.serversFile
   *  in compose mode with balance hash, none otherwise. In local mode, `upstreams` is then ignored. */
  serversFile?: string
  /** CIDRs (`10.0.0.0/8`, `fd00::/8`; a bare address means /32 or /128) allowed to reach the
   *  internal routes; default INTERNAL_NETWORKS_DEFAULTS[mode]. [] = nobody (only `deny all`). */
  internalNetworks?: readonly string[]
}

export interface ComposeOptions extends CommonOptions {
  mode: 'compose'
  /** the compose service name, resolved by Docker's DNS to every replica (default api) */
  upstreamHost?: string
  upstreamPort?: number
  /** default 8080 (every interface of the container) */
  listen?: string
  /** default 127.0.0.1:8081 */
  statusListen?: string
}

export interface LocalOptions extends CommonOptions {
  mode: 'local'
  /** replica addresses, `host:port` or a port on 127.0.0.1 */
  upstreams: Array<string | number>
  /** the stack's state directory: pid file in <dir>/run, logs and temp dirs in <dir>/nginx (which
   *  must exist) */
  stateDir: string
  /** public port (default 8080) */
  port?: number
  /** interface for the public port (default 127.0.0.1) */
  host?: string
  /** stub_status port, on 127.0.0.1 only (default port + 1) */
  statusPort?: number
  /** JSON access log file (default <stateDir>/nginx/access.log); false = no access log */
  accessLog?: string | false
}

export type NginxConfigOptions = ComposeOptions | LocalOptions

export class NginxConfigError extends Error {}

// ---------------------------------------------------------------------------------------------

function findRepoFile (rel: string): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) { // scripts/ from source, dist/scripts/ when compiled
    const p = join(dir, rel)
    try {
      if (statSync(p).isFile()) return p
    } catch {}
    dir = dirname(dir)
  }
  throw new NginxConfigError(`${rel} not found above ${dirname(fileURLToPath(import.meta.url))}`)
}

export function templatePath (): string {
  return findRepoFile(join('nginx', 'nginx.conf.template'))
}

export function repoDir (): string {
  return dirname(dirname(templatePath()))
}

/** The compose renderings committed under nginx/, which a test keeps in step with the template. */
export function committedVariants (): Array<{ file: string, options: ComposeOptions }> {
  const dir = dirname(templatePath())
  return [
    { file: join(dir, 'nginx.compose.conf'), options: { mode: 'compose' } },
    { file: join(dir, 'nginx.compose.no-rate-limit.conf'), options: { mode: 'compose', rateLimit: false } },
    { file: join(dir, 'nginx.compose.hash.conf'), options: { mode: 'compose', balance: 'hash' } },
    { file: join(dir, 'nginx.compose.hash.no-rate-limit.conf'), options: { mode: 'compose', balance: 'hash', rateLimit: false } }
  ]
}

/** NGINX_RATE_LIMIT=off|false|0|no turns the per-IP limits off. */
export function rateLimitFromEnv (env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.NGINX_RATE_LIMIT ?? '').trim().toLowerCase()
  return !['off', 'false', '0', 'no'].includes(v)
}

function posInt (name: string, v: number, min = 1, max = 10_000_000): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new NginxConfigError(`${name} must be an integer ${min}..${max}, got ${v}`)
  return v
}

/** A value nginx reads literally: no quotes, `$` (variables), `;`, braces or whitespace. */
function token (name: string, v: string): string {
  if (!/^[^\s"'$;{}\\#]+$/.test(v)) throw new NginxConfigError(`${name} cannot be used in an nginx config: ${JSON.stringify(v)}`)
  return v
}

/** A path for a double-quoted string (so it may contain spaces): no quotes, `$`, backslashes. */
function pathValue (name: string, p: string): string {
  if (/["'$\\\n\r]/.test(p)) throw new NginxConfigError(`${name} cannot be used in an nginx config: ${JSON.stringify(p)}`)
  return p
}

function upstreamAddress (u: string | number): string {
  if (typeof u === 'number') return `127.0.0.1:${posInt('upstream port', u, 1, 65535)}`
  const m = /^(.+):(\d+)$/.exec(u)
  if (!m) throw new NginxConfigError(`upstream must be host:port, got ${JSON.stringify(u)}`)
  posInt('upstream port', Number(m[2]), 1, 65535)
  return token('upstream', u)
}

function ipv4Bits (addr: string): bigint {
  return addr.split('.').reduce((n, octet) => (n << 8n) | BigInt(Number(octet)), 0n)
}

function ipv6Bits (addr: string): bigint {
  let groups = addr
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(addr)?.[1]
  if (v4) {
    const n = ipv4Bits(v4)
    groups = `${addr.slice(0, -v4.length)}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = groups.split('::')
  const h = head ? head.split(':') : []
  const tl = tail === undefined ? [] : tail ? tail.split(':') : []
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl]
  return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n)
}

/** One entry of the internal networks, checked and written as nginx's `allow` takes it
 *  (address/prefix). Anything else is an error, never rendered: not an address, a prefix out of
 *  range, or host bits set (nginx would only warn, and allow a different network than written). */
export function normalizeCidr (cidr: string): string {
  const what = `internal network ${JSON.stringify(cidr)}`
  const m = /^([^/\s]+?)(?:\/(\d{1,3}))?$/.exec(cidr.trim())
  const addr = m?.[1] ?? ''
  const v4 = isIPv4(addr)
  const v6 = !v4 && isIPv6(addr) && !addr.includes('%')
  if (!m || (!v4 && !v6)) throw new NginxConfigError(`${what} is not a CIDR (an IPv4 or IPv6 address/prefix, e.g. 10.0.0.0/8, fd00::/8)`)
  const width = v4 ? 32 : 128
  const prefix = m[2] === undefined ? width : Number(m[2])
  if (prefix > width) throw new NginxConfigError(`${what}: the prefix length of an ${v4 ? 'IPv4' : 'IPv6'} network is 0..${width}, got ${prefix}`)
  const bits = v4 ? ipv4Bits(addr) : ipv6Bits(addr)
  const hostMask = (1n << BigInt(width - prefix)) - 1n
  if ((bits & hostMask) !== 0n) {
    const net = bits & ~hostMask
    const shown = v4
      ? [24n, 16n, 8n, 0n].map((s) => String((net >> s) & 0xffn)).join('.')
      : Array.from({ length: 8 }, (_, i) => ((net >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':')
    throw new NginxConfigError(`${what} has host bits set past /${prefix} (the network is ${shown}/${prefix})`)
  }
  return `${addr.toLowerCase()}/${prefix}`
}

/** `--internal-networks 10.0.0.0/8,fd00::/8`: comma (or space) separated, validated. */
export function parseInternalNetworks (list: string): string[] {
  return list.split(/[\s,]+/).filter(Boolean).map(normalizeCidr)
}

/** Minimal templating: {{NAME}} values, {{#NAME}}..{{/NAME}} and {{^NAME}}..{{/NAME}} line blocks. */
export function renderTemplate (template: string, values: Record<string, string>, flags: Record<string, boolean>): string {
  let out = template.replace(/^[ \t]*\{\{([#^])(\w+)\}\}[ \t]*\n([\s\S]*?)^[ \t]*\{\{\/\2\}\}[ \t]*\n/gm, (_m, kind: string, name: string, body: string) => {
    if (!(name in flags)) throw new NginxConfigError(`template: unknown flag ${name}`)
    return (kind === '#') === flags[name] ? body : ''
  })
  out = out.replace(/\{\{(\w+)\}\}/g, (_m, name: string) => {
    const v = values[name]
    if (v === undefined) throw new NginxConfigError(`template: no value for {{${name}}}`)
    return v
  })
  const left = /\{\{[^}]*\}\}/.exec(out)
  if (left) throw new NginxConfigError(`template: unrendered ${left[0]}`)
  return out
}

export function renderNginxConfig (opts: NginxConfigOptions, template = readFileSync(templatePath(), 'utf8')): string {
  const rl = opts.rateLimit === false ? undefined : { ...RATE_LIMIT_DEFAULTS, ...(typeof opts.rateLimit === 'object' ? opts.rateLimit : {}) }
  if (rl) {
    posInt('rate limit (r/s)', rl.ratePerSecond)
    posInt('rate limit burst', rl.burst, 0)
    posInt('connections per IP', rl.connectionsPerIp)
  }
  const workerConnections = posInt('worker_connections', opts.workerConnections ?? CAPACITY_DEFAULTS.workerConnections, 64)
  const rlimit = posInt('worker_rlimit_nofile', opts.workerRlimitNofile ?? CAPACITY_DEFAULTS.workerRlimitNofile, 128)
  const workers = opts.workerProcesses ?? 'auto'
  if (workers !== 'auto') posInt('worker_processes', workers, 1, 1024)
  const maxFails = posInt('max_fails', opts.maxFails ?? UPSTREAM_DEFAULTS.maxFails, 0, 1000)
  const failTimeout = posInt('fail_timeout', opts.failTimeoutS ?? UPSTREAM_DEFAULTS.failTimeoutS, 1, 3600)
  const internalNetworks = [...new Set((opts.internalNetworks ?? INTERNAL_NETWORKS_DEFAULTS[opts.mode]).map((c) => {
    if (typeof c !== 'string') throw new NginxConfigError(`internal network must be a string, got ${JSON.stringify(c)}`)
    return normalizeCidr(c)
  }))]
  const internalAccess = [...internalNetworks.map((c) => `allow ${c};`), 'deny all;'].map((l) => `                ${l}`).join('\n')
  const serverParams = `max_fails=${maxFails} fail_timeout=${failTimeout}s`
  const serverLine = (addr: string) => `        server ${addr} ${serverParams};`
  const balance = opts.balance ?? DEFAULT_BALANCE
  if (!BALANCES.includes(balance)) throw new NginxConfigError(`balance must be ${BALANCES.join(' or ')}, got ${JSON.stringify(balance)}`)
  const serversFile = opts.serversFile ?? (opts.mode === 'compose' && balance === 'hash' ? COMPOSE_DEFAULTS.serversFile : undefined)
  // dns-reload.sh finds the file and the parameters of its lines in this comment (so they are
  // written in one place, here); nginx reads the lines through the include.
  const includeServers = (file: string) => [
    `        # dns-reload-servers: ${token('servers file', file)} ${serverParams}`,
    `        include "${file}";`
  ]

  let upstreams: string[]
  let listen: string
  let statusListen: string
  let pidFile: string
  let tempPrefix: string
  let accessLog: string
  let header: string
  if (opts.mode === 'compose') {
    const host = token('upstream host', opts.upstreamHost ?? COMPOSE_DEFAULTS.upstreamHost)
    const port = posInt('upstream port', opts.upstreamPort ?? COMPOSE_DEFAULTS.upstreamPort, 1, 65535)
    upstreams = serversFile === undefined
      ? [
          '        # `api` is the compose service. nginx resolves it when it (re)loads its config, through',
          '        # Docker\'s embedded DNS, into one server per running replica: `--scale api=6` works at',
          '        # start. Open-source nginx 1.22 does not re-resolve it by itself (`server ... resolve` is',
          '        # 1.27.3+), so nginx/dns-reload.sh, the container\'s command, runs `nginx -s reload` when',
          '        # the set of addresses changes: scaling up or down later needs no edit here.',
          serverLine(`${host}:${port}`)
        ]
      : [
          `        # One \`server ADDRESS:${port}\` line per running replica of the compose service \`${host}\`,`,
          '        # written by nginx/dns-reload.sh (the container\'s command) from Docker\'s DNS answer before',
          '        # nginx starts, and again, followed by `nginx -s reload`, whenever that answer changes. Not',
          `        # \`server ${host}:${port}\`: the hash ring is placed by the name of each server line, so the`,
          '        # replicas behind one name would share one set of points and be picked in turn, and no',
          '        # user would stay on one replica. Under another command than dns-reload.sh, write the',
          '        # file yourself (nginx refuses an upstream without servers).',
          ...includeServers(serversFile)
        ]
    listen = token('listen', opts.listen ?? COMPOSE_DEFAULTS.listen)
    statusListen = token('status listen', opts.statusListen ?? COMPOSE_DEFAULTS.statusListen)
    pidFile = COMPOSE_DEFAULTS.pidFile
    tempPrefix = COMPOSE_DEFAULTS.tempPrefix
    accessLog = `${COMPOSE_DEFAULTS.accessLog} json`
    header = [
      '#',
      `# GENERATED (compose mode, ${balance}, per-IP limits ${rl ? 'on' : 'OFF'}). Do not edit: change nginx/nginx.conf.template`,
      '# and run `npm run nginx-config -- --update`. A test fails while this file is out of date.',
      '# Mounted at /etc/nginx/nginx.conf; run by nginx/dns-reload.sh (see deploy/README.md).'
    ].join('\n')
  } else {
    if (serversFile === undefined && (!Array.isArray(opts.upstreams) || opts.upstreams.length === 0)) throw new NginxConfigError('local mode needs at least one upstream')
    if (!opts.stateDir) throw new NginxConfigError('local mode needs stateDir')
    upstreams = serversFile === undefined
      ? opts.upstreams.map((u) => serverLine(upstreamAddress(u)))
      : ['        # The server lines, written by nginx/dns-reload.sh.', ...includeServers(serversFile)]
    const port = posInt('port', opts.port ?? 8080, 1, 65535)
    const host = token('host', opts.host ?? '127.0.0.1')
    listen = `${host.includes(':') ? `[${host}]` : host}:${port}`
    statusListen = `127.0.0.1:${posInt('status port', opts.statusPort ?? port + 1, 1, 65535)}`
    const dir = resolve(opts.stateDir)
    pidFile = join(dir, 'run', 'nginx.pid')
    tempPrefix = `${join(dir, 'nginx')}/`
    const log = opts.accessLog ?? join(dir, 'nginx', 'access.log')
    accessLog = log === false ? 'off' : `"${pathValue('access log', log)}" json`
    pathValue('state dir', dir)
    header = [
      '#',
      `# GENERATED for \`npm run stack\` (local mode, ${serversFile === undefined ? `${opts.upstreams.length} replica(s)` : 'servers from dns-reload.sh'}, ${balance}, per-IP limits ${rl ? 'on' : 'OFF'}).`,
      '# Rewritten on every start; edit nginx/nginx.conf.template instead.'
    ].join('\n')
  }

  return renderTemplate(template, {
    HEADER: header,
    WORKER_PROCESSES: String(workers),
    WORKER_CONNECTIONS: String(workerConnections),
    WORKER_RLIMIT_NOFILE: String(rlimit),
    PID_FILE: pidFile,
    TEMP_PREFIX: tempPrefix,
    ACCESS_LOG: accessLog,
    UPSTREAM_SERVERS: upstreams.join('\n'),
    UPSTREAM_KEEPALIVE: String(posInt('upstream keepalive', opts.upstreamKeepalive ?? CAPACITY_DEFAULTS.upstreamKeepalive)),
    MAX_FAILS: String(maxFails),
    FAIL_TIMEOUT: String(failTimeout),
    LISTEN: listen,
    STATUS_LISTEN: statusListen,
    RATE_LIMIT_RATE: String(rl?.ratePerSecond ?? RATE_LIMIT_DEFAULTS.ratePerSecond),
    RATE_LIMIT_BURST: String(rl?.burst ?? RATE_LIMIT_DEFAULTS.burst),
    RATE_LIMIT_CONN: String(rl?.connectionsPerIp ?? RATE_LIMIT_DEFAULTS.connectionsPerIp),
    INTERNAL_ACCESS: internalAccess,
    INTERNAL_NETWORKS_LIST: internalNetworks.length ? internalNetworks.join(' ') : 'none: nobody'
  }, { RATE_LIMIT: rl !== undefined, HASH: balance === 'hash' })
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage:
  npm run nginx-config -- --mode compose [--balance least_conn|hash] [--no-rate-limit] [--internal-networks CIDR,CIDR] [--out FILE]
  npm run nginx-config -- --mode local --api-ports P1,P2,... [--port 8080] [--status-port P]
                          [--state-dir .stack] [--balance least_conn|hash] [--no-rate-limit]
                          [--internal-networks CIDR,CIDR] [--out FILE]
  npm run nginx-config -- --update     rewrite the committed nginx/nginx.compose*.conf
  npm run nginx-config -- --check      exit 1 when they are out of date

Without --out the config is printed. NGINX_RATE_LIMIT=off means --no-rate-limit.
--balance: least_conn (default: the replica with the fewest requests in flight) or hash
(consistent hashing of the user id of /recommend/:id: each replica's L1 holds its own users);
NGINX_BALANCE=hash means --balance hash. Compose: RECSVC_NGINX_CONF=nginx.compose.hash.conf.
--internal-networks: who may reach /metrics, /health*, /invalidate-cache and /events through nginx
(everyone else gets a JSON 403); '' = nobody. Defaults: compose ${INTERNAL_NETWORKS_DEFAULTS.compose.join(',')};
local ${INTERNAL_NETWORKS_DEFAULTS.local.join(',')}.`

function main (): void {
  let values
  try {
    ({ values } = parseArgs({
      options: {
        mode: { type: 'string' },
        'api-ports': { type: 'string' },
        port: { type: 'string' },
        'status-port': { type: 'string' },
        'state-dir': { type: 'string' },
        'no-rate-limit': { type: 'boolean' },
        balance: { type: 'string' },
        'internal-networks': { type: 'string' },
        out: { type: 'string' },
        update: { type: 'boolean' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' }
      }
    }))
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  if (values.help) {
    console.log(USAGE)
    return
  }
  if (values.update || values.check) {
    if (values.balance !== undefined) {
      console.error('--balance does not apply to --update/--check: the committed renderings are one per balance (nginx.compose[.hash]*.conf)')
      process.exit(2)
    }
    if (values['internal-networks'] !== undefined) {
      console.error('--internal-networks does not apply to --update/--check: the committed renderings use the defaults; render your own with --mode compose --internal-networks ... --out FILE')
      process.exit(2)
    }
    let stale = 0
    for (const v of committedVariants()) {
      const want = renderNginxConfig(v.options)
      let have = ''
      try { have = readFileSync(v.file, 'utf8') } catch {}
      if (have === want) {
        console.log(`up to date: ${v.file}`)
      } else if (values.update) {
        writeFileSync(v.file, want)
        console.log(`wrote ${v.file}`)
      } else {
        console.error(`OUT OF DATE: ${v.file} (run npm run nginx-config -- --update)`)
        stale++
      }
    }
    if (stale) process.exit(1)
    return
  }
  const rateLimit = values['no-rate-limit'] ? false : rateLimitFromEnv()
  let balance: Balance
  try {
    balance = values.balance === undefined ? balanceFromEnv() : parseBalance(values.balance)
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`)
    process.exit(2)
  }
  let internalNetworks: string[] | undefined
  try {
    internalNetworks = values['internal-networks'] === undefined ? undefined : parseInternalNetworks(values['internal-networks'])
  } catch (err) {
    console.error(`--internal-networks: ${(err as Error).message}`)
    process.exit(2)
  }
  const num = (name: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0 || n > 65535) {
      console.error(`--${name} must be a port number, got ${JSON.stringify(v)}`)
      process.exit(2)
    }
    return n
  }
  let opts: NginxConfigOptions
  if (values.mode === 'compose') {
    opts = { mode: 'compose', rateLimit, balance, internalNetworks }
  } else if (values.mode === 'local') {
    const ports = (values['api-ports'] ?? '').split(',').filter(Boolean).map((p) => num('api-ports', p)!)
    if (!ports.length) {
      console.error(`--mode local needs --api-ports\n\n${USAGE}`)
      process.exit(2)
    }
    opts = { mode: 'local', upstreams: ports, port: num('port', values.port), statusPort: num('status-port', values['status-port']), stateDir: resolve(values['state-dir'] ?? join(repoDir(), '.stack')), rateLimit, balance, internalNetworks }
  } else {
    console.error(`--mode compose|local is required\n\n${USAGE}`)
    process.exit(2)
  }
  let text: string
  try {
    text = renderNginxConfig(opts)
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
  if (values.out) {
    writeFileSync(values.out, text)
    console.error(`wrote ${values.out}`)
  } else {
    process.stdout.write(text)
  }
}

if (isMain(import.meta.url)) {
  main()
}
