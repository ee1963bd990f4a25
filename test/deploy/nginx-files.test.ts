// The nginx configuration files: every rendering of nginx/nginx.conf.template (tools/nginx-config.ts)
// passes the real binary's `nginx -t` and carries the settings the service relies on; the committed
// compose renderings are up to date; the limits are written in one place. What nginx does with
// them is test/nginx-config.test.ts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CAPACITY_DEFAULTS, COMPOSE_DEFAULTS, RATE_LIMIT_DEFAULTS, UPSTREAM_DEFAULTS, committedVariants,
  rateLimitFromEnv, renderNginxConfig, templatePath, type NginxConfigOptions
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

// ---------------------------------------------------------------------------------------------
// every rendering of the template

const variants: Array<{ name: string, options: NginxConfigOptions, replicas: number }> = [
  { name: 'compose', options: { mode: 'compose' }, replicas: 1 },
  { name: 'compose-no-rate-limit', options: { mode: 'compose', rateLimit: false }, replicas: 1 },
  { name: 'local-1', options: { mode: 'local', upstreams: [3001], stateDir: join(work, 'local-1') }, replicas: 1 },
  { name: 'local-6', options: { mode: 'local', upstreams: [3001, 3002, 3003, 3004, 3005, 3006], stateDir: join(work, 'local-6') }, replicas: 6 },
  { name: 'local-6-no-rate-limit', options: { mode: 'local', upstreams: [3001, 3002, 3003, 3004, 3005, 3006], stateDir: join(work, 'local-6-no-rate-limit'), rateLimit: false }, replicas: 6 }
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
    t.match(upstream, /^\s*least_conn;/m, 'least_conn')
    t.match(upstream, /^\s*zone\s+\S+\s+\d+k;/m, 'shared zone (one view of connections and failures for all workers)')
    t.ok(Number(directive(upstream, 'keepalive')) >= 1000, 'upstream keepalive: room for 1000 requests in flight in one worker')
    t.ok(parseInt(directive(upstream, 'keepalive_timeout') ?? '', 10) < 72, 'idle upstream connections closed before Fastify\'s 72 s keep-alive timeout')
    const servers = [...upstream.matchAll(/^\s*server\s+(\S+)\s+max_fails=\d+\s+fail_timeout=\d+s;/gm)].map((m) => m[1])
    const { maxFails, failTimeoutS } = UPSTREAM_DEFAULTS
    t.ok([...upstream.matchAll(/^\s*server\s.*;/gm)].every((m) => m[0].includes(` max_fails=${maxFails} fail_timeout=${failTimeoutS}s;`)), `max_fails=${maxFails} fail_timeout=${failTimeoutS}s on every server`)
    if (v.options.mode === 'compose') t.same(servers, ['api:3000'], 'compose: the scaled service by name')
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
  })
}

t.test('the committed compose renderings are up to date with the template', async (t) => {
  for (const v of committedVariants()) {
    t.ok(existsSync(v.file), `${v.file} exists`)
    const have = existsSync(v.file) ? readFileSync(v.file, 'utf8') : ''
    t.ok(have === renderNginxConfig(v.options), `${v.file} matches the template (npm run nginx-config -- --update)`)
  }
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
