// The nginx configuration files: every rendering of nginx/nginx.conf.template (tools/nginx-config.ts)
// passes the real binary's `nginx -t` and carries the settings the service relies on; the committed
// compose renderings are up to date; the limits are written in one place; the internal routes are
// proxied only for the internal networks, and a bad CIDR is never rendered. What nginx does with
// them is test/nginx-config.test.ts.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { isIPv4 } from 'node:net'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CAPACITY_DEFAULTS, COMPOSE_DEFAULTS, INTERNAL_NETWORKS_DEFAULTS, RATE_LIMIT_DEFAULTS, UPSTREAM_DEFAULTS,
  committedVariants, normalizeCidr, parseInternalNetworks, rateLimitFromEnv, renderNginxConfig, repoDir, templatePath,
  type NginxConfigOptions
} from '../../tools/nginx-config.ts'
import { findBinary } from '../../tools/servers/binaries.ts'

const NGINX = findBinary('nginx')
if (!NGINX) throw new Error('nginx not found (Debian: apt-get install nginx-light)')
const nginx = NGINX

const work = await mkdtemp(join(tmpdir(), 'recsvc-nginx-files-'))
t.teardown(() => rm(work, { recursive: true, force: true }))

/** Writes a rendering where `nginx -t` can check it here: compose's `api` is not resolvable outside
 *  Docker, so (for the check only) it becomes 127.0.0.1, and /tmp paths move into a temp dir. */
async function checkable (name: string, text: string): Promise<{ file: string, dir: string }> {
  const dir = join(work, name)
  await mkdir(join(dir, 'run'), { recursive: true })
  await mkdir(join(dir, 'nginx'), { recursive: true })
  const file = join(dir, 'nginx.conf')
  // --balance hash in compose: the server lines dns-reload.sh would write (see the rendering).
  const servers = /# dns-reload-servers: (\S+) (.*)$/m.exec(text)
  if (servers) await writeFile(servers[1]!.replace(COMPOSE_DEFAULTS.tempPrefix, `${dir}/nginx_`), `server 127.0.0.1:3000 ${servers[2]};\n`)
  await writeFile(file, text
    .replace(/server api:3000 /, 'server 127.0.0.1:3000 ')
    .replaceAll(COMPOSE_DEFAULTS.tempPrefix, `${dir}/nginx_`)
    .replace(`"${COMPOSE_DEFAULTS.pidFile}"`, `"${dir}/run/nginx.pid"`))
  return { file, dir }
}

/** `nginx -t` with a stdout it can open as /dev/stdout (compose logs there; a child's stdout from
 *  Node is a socket, which cannot be opened by path). */
function nginxTest (file: string): { ok: boolean, output: string } {
  const out = openSync(`${file}.stdout`, 'w')
  try {
    const r = spawnSync(nginx, ['-t', '-q', '-e', 'stderr', '-c', file], { encoding: 'utf8', stdio: ['ignore', out, 'pipe'] })
    return { ok: r.status === 0, output: r.stderr ?? '' }
  } finally {
    closeSync(out)
  }
}

/** The value of the first directive `name` (at any depth), or undefined. */
function directive (conf: string, name: string): string | undefined {
  return new RegExp(`^\\s*${name}\\s+([^;]+);`, 'm').exec(conf)?.[1]?.trim()
}

/** The body of the first `<head> { ... }` block, braces balanced. */
function block (conf: string, head: RegExp): string {
  const m = head.exec(conf)
  if (!m) return ''
  let depth = 0
  for (let i = m.index + m[0].length - 1; i < conf.length; i++) {
    if (conf[i] === '{') depth++
    else if (conf[i] === '}' && --depth === 0) return conf.slice(m.index, i + 1)
  }
  return ''
}

const uncommented = (conf: string) => conf.split('\n').filter((l) => !/^\s*#/.test(l)).join('\n')

/** The internal routes (prefix locations nested in `location /`): the service's /metrics, /health
 *  (and /health/live, /health/ready), and the admin routes. */
const INTERNAL_PREFIXES = ['/metrics', '/health', '/invalidate-cache', '/events']

/** Checks that the internal routes of `conf` (uncommented) are proxied for `networks` only. */
function checkInternal (t: Test, conf: string, networks: readonly string[]): void {
  const front = [...conf.matchAll(/^\s*server\s*\{/gm)].map((m) => block(conf.slice(m.index), /server\s*\{/)).find((b) => /proxy_pass/.test(b)) ?? ''
  const proxy = block(front, /location\s+\/\s*\{/)
  const allow = networks.map((c) => `allow ${c};`).join('\n')
  for (const prefix of INTERNAL_PREFIXES) {
    const loc = block(proxy, new RegExp(`\\n\\s*location\\s+${prefix.replace(/[/-]/g, '\\$&')}\\s*\\{`))
    t.ok(loc, `location ${prefix} nested in location / (inherits its limits, headers and retries)`)
    const access = [...loc.matchAll(/^\s*((?:allow|deny)\s+[^;]+;)/gm)].map((m) => m[1]!.replace(/\s+/g, ' ')).join('\n')
    t.equal(access, `${allow ? `${allow}\n` : ''}deny all;`, `location ${prefix}: allow ${networks.join(', ') || '(nobody)'}, then deny all`)
    t.equal(directive(loc, 'proxy_pass'), 'http://recsvc_api', `location ${prefix}: proxied to the replicas`)
    t.notMatch(loc, /proxy_set_header|add_header|limit_req|proxy_next_upstream/, `location ${prefix}: nothing overridden, all inherited`)
  }
  t.equal((proxy.match(/^\s*location\s/gm) ?? []).length, 1 + INTERNAL_PREFIXES.length, 'no other location nested in location /')
  t.match(front, /^\s*error_page\s+403\s+=\s+@forbidden;/m, 'nginx\'s own 403 goes to @forbidden')
  const forbidden = block(front, /location\s+@forbidden\s*\{/)
  t.match(forbidden, /^\s*default_type\s+application\/json;/m, '@forbidden: JSON')
  t.match(forbidden, /^\s*add_header\s+X-Request-Id\s+\$req_id\s+always;/m, '@forbidden: with the request id')
  const body = /^\s*return\s+403\s+'(.*)\\n';/m.exec(forbidden)?.[1] ?? ''
  let parsed: Record<string, unknown> = {}
  try { parsed = JSON.parse(body.replace('$req_id', 'rid')) } catch {}
  t.same(parsed, { statusCode: 403, code: 'REC_ERR_FORBIDDEN', error: 'Forbidden', message: parsed.message, request_id: 'rid' }, '@forbidden: 403 in the API\'s JSON error shape')
  t.match(String(parsed.message), /internal/, 'saying why')
  t.notMatch(proxy, /proxy_intercept_errors/, 'an app\'s own 403 is passed on as it is')
}

// ---------------------------------------------------------------------------------------------
// every rendering of the template

const variants: Array<{ name: string, options: NginxConfigOptions, replicas: number }> = [
  { name: 'compose', options: { mode: 'compose' }, replicas: 1 },
  { name: 'compose-no-rate-limit', options: { mode: 'compose', rateLimit: false }, replicas: 1 },
  { name: 'local-1', options: { mode: 'local', upstreams: [3001], stateDir: join(work, 'local-1') }, replicas: 1 },
  { name: 'local-6', options: { mode: 'local', upstreams: [3001, 3002, 3003, 3004, 3005, 3006], stateDir: join(work, 'local-6') }, replicas: 6 },
  { name: 'local-6-no-rate-limit', options: { mode: 'local', upstreams: [3001, 3002, 3003, 3004, 3005, 3006], stateDir: join(work, 'local-6-no-rate-limit'), rateLimit: false }, replicas: 6 },
  { name: 'compose-hash', options: { mode: 'compose', balance: 'hash' }, replicas: 1 },
  { name: 'compose-hash-no-rate-limit', options: { mode: 'compose', balance: 'hash', rateLimit: false }, replicas: 1 },
  { name: 'local-3-hash', options: { mode: 'local', upstreams: [3001, 3002, 3003], stateDir: join(work, 'local-3-hash'), balance: 'hash' }, replicas: 3 }
]

for (const v of variants) {
  t.test(`${v.name}: nginx -t passes and the settings are there`, async (t) => {
    const text = renderNginxConfig(v.options)
    const { file } = await checkable(v.name, text)
    const res = nginxTest(file)
    t.ok(res.ok, `nginx -t -c ${file}${res.ok ? '' : `\n${res.output}`}`)

    const conf = uncommented(text)
    const upstream = block(conf, /upstream\s+recsvc_api\s*\{/)
    t.ok(upstream, 'an upstream block')
    if (v.options.balance === 'hash') {
      t.match(upstream, /^\s*hash\s+\$recsvc_balance_key\s+consistent;/m, 'hash ... consistent')
      t.notMatch(upstream, /least_conn/, 'and no least_conn')
      t.match(conf, /map\s+\$uri\s+\$recsvc_balance_key\s*\{[^}]*default\s+\$request_id;[^}]*"~\^\/recommend\/\(\[1-9\]\[0-9\]\{0,9\}\)\$"\s+"user:\$1";/, 'the key: the user id of /recommend/:id, else $request_id')
      t.ok(upstream.indexOf('hash $recsvc_balance_key') < upstream.indexOf('keepalive '), 'the balancing method comes before keepalive (nginx requires it)')
    } else {
      t.match(upstream, /^\s*least_conn;/m, 'least_conn')
      t.notMatch(conf, /\bhash\s+\$|recsvc_balance_key/, 'and no hash')
    }
    t.match(upstream, /^\s*zone\s+\S+\s+\d+k;/m, 'shared zone (one view of connections and failures for all workers)')
    t.ok(Number(directive(upstream, 'keepalive')) >= 1000, 'upstream keepalive: room for 1000 requests in flight in one worker')
    t.ok(parseInt(directive(upstream, 'keepalive_timeout') ?? '', 10) < 72, 'idle upstream connections closed before Fastify\'s 72 s keep-alive timeout')
    const servers = [...upstream.matchAll(/^\s*server\s+(\S+)\s+max_fails=\d+\s+fail_timeout=\d+s;/gm)].map((m) => m[1])
    const { maxFails, failTimeoutS } = UPSTREAM_DEFAULTS
    t.ok([...upstream.matchAll(/^\s*server\s.*;/gm)].every((m) => m[0].includes(` max_fails=${maxFails} fail_timeout=${failTimeoutS}s;`)), `max_fails=${maxFails} fail_timeout=${failTimeoutS}s on every server`)
    if (v.options.mode === 'compose' && v.options.balance === 'hash') {
      t.same(servers, [], 'compose with hash: no server line by name (replicas behind one name share one set of ring points)')
      t.match(upstream, new RegExp(`^\\s*include "${COMPOSE_DEFAULTS.serversFile}";`, 'm'), 'but the per-address lines dns-reload.sh writes')
      t.match(text, new RegExp(`^\\s*# dns-reload-servers: ${COMPOSE_DEFAULTS.serversFile} max_fails=${UPSTREAM_DEFAULTS.maxFails} fail_timeout=${UPSTREAM_DEFAULTS.failTimeoutS}s$`, 'm'), 'with max_fails and fail_timeout, named for dns-reload.sh')
    } else if (v.options.mode === 'compose') t.same(servers, ['api:3000'], 'compose: the scaled service by name')
    else t.same(servers, v.options.upstreams.map((p) => `127.0.0.1:${p}`), `local: ${v.replicas} replica(s)`)

    const proxy = block(conf, /location\s+\/\s*\{/)
    t.equal(directive(proxy, 'proxy_pass'), 'http://recsvc_api')
    t.equal(directive(proxy, 'proxy_http_version'), '1.1', 'HTTP/1.1 upstream')
    t.match(proxy, /^\s*proxy_set_header\s+Connection\s+"";/m, 'Connection header cleared')
    const next = directive(proxy, 'proxy_next_upstream') ?? ''
    t.same(next.split(/\s+/).sort(), ['error', 'timeout'], 'proxy_next_upstream error timeout: an app\'s 502/503 is never retried')
    t.notMatch(conf, /non_idempotent/, 'POSTs are never retried (no non_idempotent)')
    for (const d of ['proxy_connect_timeout', 'proxy_read_timeout', 'proxy_send_timeout', 'proxy_next_upstream_tries', 'proxy_next_upstream_timeout']) {
      t.ok(directive(proxy, d), `${d} set`)
    }
    t.match(proxy, /^\s*proxy_set_header\s+X-Request-Id\s+\$req_id;/m, 'X-Request-Id to the app')
    t.match(proxy, /^\s*add_header\s+X-Request-Id\s+\$req_id\s+always;/m, 'X-Request-Id to the client')
    t.match(conf, /map\s+\$http_x_request_id\s+\$req_id\s*\{[^}]*default\s+\$request_id;/, 'request id generated when missing')
    t.match(proxy, /^\s*proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;/m, 'X-Forwarded-For set by nginx')
    t.match(proxy, /^\s*proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;/m, 'X-Forwarded-Proto')
    t.notMatch(conf, /proxy_hide_header\s+X-(Cache|Served-By)/i, 'X-Cache and X-Served-By reach the client')

    const logFormat = /log_format\s+json\s+escape=json\s+([\s\S]*?);\n/.exec(conf)?.[1] ?? ''
    t.ok(logFormat, 'a JSON log_format')
    t.match(logFormat, /\$upstream_addr/, 'with $upstream_addr')
    t.match(logFormat, /\$upstream_response_time/, 'with $upstream_response_time')
    t.match(directive(conf, 'access_log') ?? '', /\sjson$/, 'the access log uses it')

    const wc = Number(directive(conf, 'worker_connections'))
    const nofile = Number(directive(conf, 'worker_rlimit_nofile'))
    t.ok(wc >= 10_240, `worker_connections ${wc} >= 10240`)
    t.ok(nofile >= 2 * wc, `worker_rlimit_nofile ${nofile} >= 2 x worker_connections`)
    t.notMatch(conf, /^\s*user\s/m, 'no user directive (runs as root or as anyone)')
    t.notMatch(conf, /^\s*daemon\s/m, 'daemon is left to the command line (-g "daemon off;")')

    const { ratePerSecond, burst, connectionsPerIp } = RATE_LIMIT_DEFAULTS
    if (v.options.rateLimit === false) {
      t.notMatch(conf, /limit_req|limit_conn/, 'per-IP limits off')
    } else {
      t.match(conf, new RegExp(`limit_req_zone\\s+\\$binary_remote_addr\\s+zone=per_ip:\\S+\\s+rate=${ratePerSecond}r/s;`), `${ratePerSecond} r/s per IP`)
      t.match(proxy, new RegExp(`limit_req\\s+zone=per_ip\\s+burst=${burst}\\s+nodelay;`), `burst ${burst}`)
      t.match(proxy, new RegExp(`limit_conn\\s+per_ip_conn\\s+${connectionsPerIp};`), `${connectionsPerIp} connections per IP`)
      t.equal(directive(conf, 'limit_req_status'), '429')
    }

    // stub_status only in a server that listens on the loopback interface, and only for it.
    const servers2 = [...conf.matchAll(/^\s*server\s*\{/gm)].map((m) => block(conf.slice(m.index), /server\s*\{/))
    const status = servers2.find((b) => /stub_status/.test(b)) ?? ''
    const front = servers2.find((b) => /proxy_pass/.test(b)) ?? ''
    t.equal(servers2.length, 2, 'a public and an internal server')
    t.match(directive(status, 'listen') ?? '', /^127\.0\.0\.1:\d+$/, 'stub_status listens on 127.0.0.1 only')
    t.match(status, /allow\s+127\.0\.0\.1;\s*deny\s+all;/, 'and allows only 127.0.0.1')
    t.notMatch(front, /stub_status/, 'the public server has no stub_status')
    t.equal(directive(front, 'listen'), v.options.mode === 'compose' ? '8080 backlog=4096' : '127.0.0.1:8080 backlog=4096', 'public port 8080, with an accept queue for 1000 clients connecting at once')

    // /metrics, /health*, /invalidate-cache and /events: the mode's internal networks only.
    checkInternal(t, conf, INTERNAL_NETWORKS_DEFAULTS[v.options.mode])
  })
}

t.test('the committed compose renderings are up to date with the template', async (t) => {
  for (const v of committedVariants()) {
    t.ok(existsSync(v.file), `${v.file} exists`)
    const have = existsSync(v.file) ? readFileSync(v.file, 'utf8') : ''
    t.ok(have === renderNginxConfig(v.options), `${v.file} matches the template (npm run nginx-config -- --update)`)
    checkInternal(t, uncommented(have), INTERNAL_NETWORKS_DEFAULTS.compose)
  }
})

t.test('internal networks: the defaults, a custom list passing nginx -t, and bad CIDRs rejected', async (t) => {
  t.same(INTERNAL_NETWORKS_DEFAULTS.local, ['127.0.0.1/32', '::1/128'], 'local: loopback only (the stack\'s nginx listens on 127.0.0.1)')
  const compose = INTERNAL_NETWORKS_DEFAULTS.compose
  for (const c of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']) t.ok(compose.includes(c), `compose: RFC 1918 ${c} (Docker's NAT: host clients come from the bridge gateway)`)
  t.ok(compose.includes('127.0.0.0/8') && compose.includes('::1/128'), 'compose: and loopback')
  t.same(compose.filter((c) => isIPv4(c.split('/')[0]!) && !['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8'].includes(c)), [], 'compose: nothing public')

  const custom = ['10.201.0.0/24', '127.0.0.1/32', 'fd00::/8']
  for (const mode of ['compose', 'local'] as const) {
    const options: NginxConfigOptions = mode === 'compose'
      ? { mode, internalNetworks: custom }
      : { mode, upstreams: [3001], stateDir: join(work, 'custom-local'), internalNetworks: custom }
    const text = renderNginxConfig(options)
    checkInternal(t, uncommented(text), custom)
    const { file } = await checkable(`custom-${mode}`, text)
    const res = nginxTest(file)
    t.ok(res.ok, `${mode} with ${custom.join(',')}: nginx -t passes${res.ok ? '' : `\n${res.output}`}`)
    t.notMatch(res.output, /warn/, 'without warnings')
  }
  const nobody = renderNginxConfig({ mode: 'compose', internalNetworks: [] })
  checkInternal(t, uncommented(nobody), [])
  const { file } = await checkable('nobody', nobody)
  t.ok(nginxTest(file).ok, '[]: nobody (deny all only), nginx -t passes')

  t.same(parseInternalNetworks('10.0.0.0/8, 127.0.0.1,::1'), ['10.0.0.0/8', '127.0.0.1/32', '::1/128'], 'a bare address is /32 or /128')
  t.equal(normalizeCidr('FD00::/8'), 'fd00::/8')
  t.equal(renderNginxConfig({ mode: 'compose', internalNetworks: ['10.0.0.0/8', '10.0.0.0/8'] }).match(/allow 10\.0\.0\.0\/8;/g)?.length, 4, 'duplicates are dropped (one allow per location)')
  const bad: Array<[string, RegExp]> = [
    ['10.0.0.0/33', /prefix length of an IPv4 network is 0\.\.32/],
    ['fd00::/129', /prefix length of an IPv6 network is 0\.\.128/],
    ['10.0.0.1/8', /host bits set past \/8 \(the network is 10\.0\.0\.0\/8\)/],
    ['10.0.0.256/24', /is not a CIDR/],
    ['010.0.0.0/8', /is not a CIDR/],
    ['localhost', /is not a CIDR/],
    ['all', /is not a CIDR/],
    ['10.0.0.0/8; allow all', /is not a CIDR/],
    ['fe80::1%eth0/64', /is not a CIDR/],
    ['', /is not a CIDR/],
    ['10.0.0.0/', /is not a CIDR/]
  ]
  for (const [cidr, message] of bad) {
    t.throws(() => renderNginxConfig({ mode: 'compose', internalNetworks: [cidr] }), message, `${JSON.stringify(cidr)} rejected`)
    t.throws(() => renderNginxConfig({ mode: 'local', upstreams: [3001], stateDir: work, internalNetworks: ['127.0.0.1/32', cidr] }), message, `${JSON.stringify(cidr)} rejected in local mode too`)
  }
  t.throws(() => parseInternalNetworks('10.0.0.0/8,10.0.0.0/33'), /10\.0\.0\.0\/33/, 'parseInternalNetworks names the bad entry')

  // The CLI: a clear error, exit 2, nothing rendered.
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(repoDir(), 'tools', 'nginx-config.ts'), ...args], { encoding: 'utf8', timeout: 60_000, cwd: repoDir() })
  const rejected = cli('--mode', 'compose', '--internal-networks', '10.0.0.0/8,192.168.1.1/16')
  t.equal(rejected.status, 2, '--internal-networks with a bad CIDR: exit 2')
  t.match(rejected.stderr, /--internal-networks: internal network "192\.168\.1\.1\/16" has host bits set/, 'naming the bad entry')
  t.equal(rejected.stdout, '', 'and nothing rendered')
  const ok = cli('--mode', 'local', '--api-ports', '3001', '--state-dir', join(work, 'cli'), '--internal-networks', '10.201.0.0/24,::1')
  t.equal(ok.status, 0, `--mode local --internal-networks 10.201.0.0/24,::1: rendered${ok.status === 0 ? '' : `\n${ok.stderr}`}`)
  checkInternal(t, uncommented(ok.stdout), ['10.201.0.0/24', '::1/128'])
  t.equal(cli('--update', '--internal-networks', '10.0.0.0/8').status, 2, '--update with --internal-networks is refused (the committed renderings use the defaults)')
})

t.test('the limits are written in one place: the template has placeholders, not numbers', async (t) => {
  const template = readFileSync(templatePath(), 'utf8')
  t.notMatch(template, /rate=\d|burst=\d|per_ip_conn \d/, 'no literal rate-limit numbers in the template')
  t.notMatch(template, /worker_connections \d|worker_rlimit_nofile \d/, 'no literal capacity numbers')
  const custom = renderNginxConfig({ mode: 'compose', rateLimit: { ratePerSecond: 7, burst: 3, connectionsPerIp: 9 } })
  t.match(custom, /rate=7r\/s/)
  t.match(custom, /burst=3 nodelay/)
  t.match(custom, /per_ip_conn 9;/)
  t.equal(rateLimitFromEnv({ NGINX_RATE_LIMIT: 'off' }), false, 'NGINX_RATE_LIMIT=off turns them off')
  t.equal(rateLimitFromEnv({}), true, 'on by default')
  t.equal(CAPACITY_DEFAULTS.workerRlimitNofile >= 2 * CAPACITY_DEFAULTS.workerConnections, true)
  t.throws(() => renderNginxConfig({ mode: 'local', upstreams: [], stateDir: work }), /at least one upstream/)
  t.throws(() => renderNginxConfig({ mode: 'local', upstreams: [3001], stateDir: '/tmp/$evil' }), /cannot be used/)
  t.throws(() => renderNginxConfig({ mode: 'compose', upstreamHost: 'api;evil' }), /cannot be used/)
})
