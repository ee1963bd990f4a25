// Docker does not run on our machines, so the container files are validated here instead:
// docker-compose.yml (structure, health checks, dependencies, mounts, env), the Dockerfile (stages,
// base image, user, init, health check), .dockerignore against what the Dockerfile copies, the
// monitoring files (Prometheus, Grafana provisioning, dashboard PromQL), and `nginx -t` on the
// compose NGINX config. The runtime side (the compiled server and the compose seed command under
// Node 24) is test/node24-runtime.test.ts.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import YAML from 'yaml'
import { ConfigSchema, loadConfig } from '../../src/config.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const read = (p: string) => readFileSync(join(root, p), 'utf8')

type Dict = Record<string, unknown>
interface Service {
  image?: string
  build?: { context?: string, dockerfile?: string, target?: string } | string
  command?: string[] | string
  environment?: Record<string, string | number | boolean | null>
  env_file?: Array<string | { path: string, required?: boolean }> | string
  ports?: Array<string | Dict>
  expose?: Array<string | number>
  volumes?: Array<string | { type?: string, source?: string, target?: string, read_only?: boolean }>
  depends_on?: Record<string, { condition?: string }> | string[]
  healthcheck?: { test?: string[] | string, disable?: boolean, interval?: string, timeout?: string, retries?: number, start_period?: string }
  profiles?: string[]
  restart?: string
  stop_grace_period?: string
  container_name?: string
  hostname?: string
  deploy?: Dict
}
interface Compose {
  name?: string
  services: Record<string, Service>
  volumes?: Record<string, unknown>
  networks?: Record<string, { ipam?: { config?: Array<{ subnet?: string }> } }>
}

const composeText = read('docker-compose.yml')
const compose = YAML.parse(composeText) as Compose
const services = compose.services

/** `${VAR:-default}` -> default (what compose uses when VAR is unset), `$$` -> `$`. */
function interpolateDefaults (s: string): string {
  return s.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_m, _name: string, dflt?: string) => dflt ?? '').replace(/\$\$/g, '$')
}

function durationMs (s: string | undefined): number {
  if (s === undefined) return NaN
  let ms = 0
  for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(n) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'])
  return ms
}

interface Mount { source: string, target: string, readOnly: boolean, bind: boolean }
function mounts (svc: Service): Mount[] {
  return (svc.volumes ?? []).map((v) => {
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = interpolateDefaults(v).split(':')
      return { source, target, readOnly: mode.split(',').includes('ro'), bind: source.startsWith('.') || source.startsWith('/') }
    }
    return { source: v.source ?? '', target: v.target ?? '', readOnly: v.read_only === true, bind: v.type === 'bind' }
  })
}

function envFiles (svc: Service): Array<{ path: string, required: boolean }> {
  const list = svc.env_file === undefined ? [] : Array.isArray(svc.env_file) ? svc.env_file : [svc.env_file]
  return list.map((e) => typeof e === 'string' ? { path: e, required: true } : { path: e.path, required: e.required !== false })
}

function parseEnvFile (text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line)
    if (!m) throw new Error(`not KEY=VALUE: ${line}`)
    out[m[1]!] = m[2]!.replace(/^(['"])(.*)\1$/, '$2')
  }
  return out
}

const healthTest = (svc: Service): string => {
  const test = svc.healthcheck?.test
  return Array.isArray(test) ? test.join(' ') : test ?? ''
}

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml

t.test('docker-compose.yml parses and has the expected services', async (t) => {
  t.type(services, 'object')
  t.same(Object.keys(services).sort(), ['api', 'grafana', 'mysql', 'nginx', 'prometheus', 'redis', 'seed'])
  for (const [name, svc] of Object.entries(services)) {
    if (svc.image !== undefined) {
      // Base images are overridable (`${RECSVC_MYSQL_IMAGE:-mysql:8.4}`: stand-ins where no registry
      // is reachable); the default is what users get.
      t.match(svc.image, /^(\$\{RECSVC_[A-Z_]+_IMAGE:-[^}]+\}|[a-z0-9./-]+:[\w.-]+)$/, `${name}: image is pinned or an overridable default`)
      const image = interpolateDefaults(svc.image)
      t.match(image, /^[a-z0-9./-]+:[\w.-]+$/, `${name}: image has a tag`)
      t.notMatch(image, /:latest$/, `${name}: image is pinned, not :latest`)
    } else {
      t.ok(svc.build, `${name}: image or build`)
    }
  }
})

t.test('only nginx publishes a port (8080); api publishes none so it can scale', async (t) => {
  const api = services.api!
  t.equal(api.ports, undefined, 'api has no ports')
  t.equal(api.container_name, undefined, 'api has no container_name (would block --scale)')
  t.equal(api.hostname, undefined, 'api has no fixed hostname (REPLICA_ID defaults to hostname-pid)')
  t.ok((api.expose ?? []).map(String).includes('3000'), 'api exposes 3000 on the compose network')
  const defaultProfile = Object.entries(services).filter(([, s]) => s.profiles === undefined)
  const publishing = defaultProfile.filter(([, s]) => (s.ports ?? []).length > 0).map(([n]) => n)
  t.same(publishing, ['nginx'], 'nginx is the only published service')
  t.same(services.nginx!.ports?.map((p) => interpolateDefaults(String(p))), ['8080:8080'], 'nginx publishes 8080 (RECSVC_PORT overrides the host side) and listens on 8080 inside')
  for (const [name, svc] of Object.entries(services).filter(([, s]) => s.profiles !== undefined)) {
    for (const p of svc.ports ?? []) t.match(String(p), /^127\.0\.0\.1:\d+:\d+$/, `${name}: optional ${String(p)} is bound to loopback only`)
  }
})

t.test('every long-running service has a health check; the one-shot seed disables the inherited one', async (t) => {
  for (const [name, svc] of Object.entries(services)) {
    if (name === 'seed') {
      t.equal(svc.healthcheck?.disable, true, 'seed: healthcheck disabled (one-shot; the image checks /health/live)')
      t.equal(svc.restart, 'no', 'seed: never restarted')
      continue
    }
    const test = svc.healthcheck?.test
    t.ok(Array.isArray(test) && test.length >= 2 && ['CMD', 'CMD-SHELL'].includes(test[0]!), `${name}: healthcheck test is CMD/CMD-SHELL`)
    t.ok(durationMs(svc.healthcheck?.interval) > 0, `${name}: healthcheck interval`)
    t.ok(durationMs(svc.healthcheck?.timeout) > 0, `${name}: healthcheck timeout`)
  }
  t.match(healthTest(services.mysql!), /mysqladmin ping -h 127\.0\.0\.1/, 'mysql: mysqladmin ping over TCP (not during init)')
  t.match(healthTest(services.redis!), /redis-cli ping/, 'redis: redis-cli ping')
  const apiTest = healthTest(services.api!)
  t.match(apiTest, /^CMD node -e /, 'api: node-based (no curl in slim images)')
  t.match(apiTest, /\/health\/ready/, 'api: readiness')
  t.notMatch(apiTest, /curl|wget/)
  t.match(healthTest(services.nginx!), /^CMD curl .*http:\/\/127\.0\.0\.1:8081\/nginx_status$/, 'nginx: its own stub_status (curl is in the Debian nginx image)')
  t.match(healthTest(services.prometheus!), /wget .*\/-\/healthy/)
  t.match(healthTest(services.grafana!), /wget .*\/api\/health/)
})

t.test('depends_on uses conditions, and every condition can be met', async (t) => {
  for (const [name, svc] of Object.entries(services)) {
    if (svc.depends_on === undefined) continue
    t.notOk(Array.isArray(svc.depends_on), `${name}: depends_on in long form`)
    for (const [dep, cond] of Object.entries(svc.depends_on as Record<string, { condition?: string }>)) {
      t.ok(services[dep], `${name} -> ${dep} exists`)
      t.ok(['service_healthy', 'service_completed_successfully'].includes(cond.condition ?? ''), `${name} -> ${dep}: ${cond.condition}`)
      if (cond.condition === 'service_healthy') t.ok(services[dep]?.healthcheck?.test, `${name} -> ${dep}: ${dep} has a healthcheck`)
      if (cond.condition === 'service_completed_successfully') t.equal(services[dep]?.restart, 'no', `${name} -> ${dep}: ${dep} is one-shot`)
      if (services[dep]?.profiles !== undefined) t.same(svc.profiles, services[dep]!.profiles, `${name} -> ${dep}: same profile`)
    }
  }
  const dep = (a: string, b: string) => (services[a]!.depends_on as Record<string, { condition?: string }>)[b]?.condition
  t.equal(dep('api', 'mysql'), 'service_healthy')
  t.equal(dep('api', 'redis'), 'service_healthy')
  t.equal(dep('api', 'seed'), 'service_completed_successfully', 'api starts after the seed finished')
  t.equal(dep('seed', 'mysql'), 'service_healthy', 'seed waits for mysql')
  t.equal(dep('nginx', 'api'), 'service_healthy')
  t.equal(dep('grafana', 'prometheus'), 'service_healthy')
})

t.test('mysql: 8.4, data in a named volume, sql/ applied on first start', async (t) => {
  const mysql = services.mysql!
  t.equal(interpolateDefaults(mysql.image ?? ''), 'mysql:8.4', 'mysql 8.4 by default')
  const m = mounts(mysql)
  const data = m.find((x) => x.target === '/var/lib/mysql')
  t.ok(data && !data.bind, 'data dir is a named volume')
  t.ok(data && compose.volumes && data.source in compose.volumes, `volume ${data?.source} is declared`)
  const init = m.find((x) => x.target === '/docker-entrypoint-initdb.d')
  t.equal(init?.source, './sql', 'sql/ is the init directory')
  t.equal(init?.readOnly, true, 'read-only')
  const env = mysql.environment ?? {}
  for (const k of ['MYSQL_DATABASE', 'MYSQL_USER', 'MYSQL_PASSWORD', 'MYSQL_ROOT_PASSWORD']) t.ok(env[k], `${k} set`)
})

t.test('sql/ stays safe to apply twice (initdb on first start, then the seed\'s migrate())', async (t) => {
  // migrate() finds an empty schema_migrations after initdb and applies every file again.
  const files = readdirSync(join(root, 'sql')).filter((n) => /^\d+_.*\.sql$/.test(n)).sort()
  t.ok(files.length > 0)
  for (const f of files) {
    const sql = read(`sql/${f}`).replace(/--.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '')
    const statements = sql.split(';').map((s) => s.trim()).filter(Boolean)
    for (const s of statements) {
      const head = s.slice(0, 80).replace(/\s+/g, ' ')
      t.match(s, /^CREATE TABLE IF NOT EXISTS /i, `${f}: "${head}..." is idempotent (else the compose first start fails; see docker-compose.yml)`)
    }
  }
})

t.test('redis: bounded memory with LRU eviction, no persistence', async (t) => {
  const cmd = services.redis!.command
  t.ok(Array.isArray(cmd))
  const args = cmd as string[]
  const arg = (flag: string) => { const i = args.indexOf(flag); return i >= 0 ? args[i + 1] : undefined }
  t.match(arg('--maxmemory') ?? '', /^\d+(mb|gb|kb)?$/i, 'maxmemory set')
  t.equal(arg('--maxmemory-policy'), 'allkeys-lru')
  t.equal(arg('--save'), '', 'no RDB snapshots')
  t.equal(arg('--appendonly'), 'no', 'no AOF')
})

t.test('api and seed: same image build, env from the documented env file', async (t) => {
  const api = services.api!
  const seed = services.seed!
  t.same(seed.build, api.build, 'seed builds the same image as api')
  const build = api.build as { context?: string, dockerfile?: string, target?: string }
  t.equal(build.context, '.')
  t.ok(existsSync(join(root, build.dockerfile ?? 'Dockerfile')), 'Dockerfile exists')
  t.match(read(build.dockerfile ?? 'Dockerfile'), new RegExp(`^FROM .* AS ${build.target}$`, 'm'), `build target ${build.target} is a Dockerfile stage`)
  t.same(envFiles(seed), envFiles(api), 'same env files')
  const required = envFiles(api).filter((e) => e.required)
  t.ok(required.length >= 1, 'a committed env file')
  for (const e of required) t.ok(existsSync(join(root, e.path)), `${e.path} exists`)
  for (const e of envFiles(api).filter((x) => !x.required)) t.match(e.path, /\.local$/, `${e.path}: the optional file is a local override`)
})

t.test('the compose env file is valid configuration and matches the mysql service', async (t) => {
  const file = envFiles(services.api!).find((e) => e.required)!.path
  const env = parseEnvFile(read(file))
  const known = new Set(Object.keys(ConfigSchema.properties))
  for (const k of Object.keys(env)) t.ok(known.has(k), `${file}: ${k} is a config variable (src/config.ts)`)
  const composeEnv = Object.fromEntries(Object.entries(services.api!.environment ?? {}).map(([k, v]) => [k, interpolateDefaults(String(v))]))
  for (const k of Object.keys(composeEnv)) t.ok(known.has(k), `api environment: ${k} is a config variable`)
  const config = loadConfig({ ...env, ...composeEnv })
  t.equal(config.NODE_ENV, 'production')
  t.equal(config.PORT, 3000, 'PORT matches expose, health checks, nginx upstream and Prometheus')
  t.equal(config.HOST, '0.0.0.0')
  const url = new URL(config.MYSQL_URL)
  const my = services.mysql!.environment ?? {}
  t.equal(url.hostname, 'mysql', 'MYSQL_URL points at the mysql service')
  t.equal(decodeURIComponent(url.username), String(my.MYSQL_USER))
  t.equal(decodeURIComponent(url.password), String(my.MYSQL_PASSWORD))
  t.equal(url.pathname, `/${String(my.MYSQL_DATABASE)}`)
  t.equal(new URL(config.REDIS_URL).hostname, 'redis', 'REDIS_URL points at the redis service')

  // TRUST_PROXY = the compose network's subnet, from the same variable
  const subnet = compose.networks?.default?.ipam?.config?.[0]?.subnet
  t.ok(subnet, 'the default network has an explicit subnet')
  t.equal(services.api!.environment?.TRUST_PROXY, subnet, 'TRUST_PROXY and the subnet are the same expression')
  t.match(config.TRUST_PROXY, /^\d+\.\d+\.\d+\.\d+\/\d+$/, `TRUST_PROXY is a CIDR (${config.TRUST_PROXY})`)

  // shutdown: drain above the health-check interval, docker waits longer than drain + grace
  const interval = durationMs(services.api!.healthcheck?.interval)
  t.ok(config.SHUTDOWN_DRAIN_DELAY_MS > interval, `SHUTDOWN_DRAIN_DELAY_MS ${config.SHUTDOWN_DRAIN_DELAY_MS} > healthcheck interval ${interval}`)
  const grace = durationMs(services.api!.stop_grace_period)
  t.ok(grace > config.SHUTDOWN_DRAIN_DELAY_MS + config.SHUTDOWN_GRACE_MS, `stop_grace_period ${grace} ms > drain + grace`)

  // capacity: replicas x pool must fit max-connections for a reasonable --scale
  const maxConn = Number(/--max-connections=(\d+)/.exec(JSON.stringify(services.mysql!.command))?.[1] ?? 151)
  t.ok(config.MYSQL_POOL_SIZE * 10 + 10 <= maxConn, `10 replicas x MYSQL_POOL_SIZE ${config.MYSQL_POOL_SIZE} fit max-connections ${maxConn}`)
})

t.test('seed: one-shot, compiled seeder with --if-empty and production dependencies, compose interpolation escaped', async (t) => {
  const seed = services.seed!
  const cmd = seed.command as string[]
  t.ok(Array.isArray(cmd))
  t.same(cmd.slice(0, 2), ['sh', '-c'], 'a shell, so SEED_ARGS splits into options at run time')
  t.equal(cmd.length, 3, 'one shell script')
  const script = cmd[cmd.length - 1]!
  t.match(script, /^exec node dist\/scripts\/seed\.js /, 'execs node on the compiled seeder (not tsx, a devDependency absent from the image)')
  t.notMatch(script, /\btsx\b/, 'no tsx')
  t.match(script, /(^| )--if-empty( |$)/, 'the seeder decides itself: --if-empty (skip when users exist, start a partial seed over)')
  t.notMatch(script, /--eval|--input-type/, 'no inline program: the policy lives in the seeder')
  t.notMatch(script.replace(/\$\$/g, ''), /\$/, 'every $ is escaped as $$: compose must not interpolate the script')
  const run = script.replace(/\$\$/g, '$') // what compose hands the shell
  t.match(run, /--users "\$\{SEED_USERS\}"/, 'SEED_USERS, from the environment at run time, quoted')
  t.match(run, / \$\{SEED_ARGS\}$/, 'SEED_ARGS last and unquoted, so its words become options')
  t.ok(seed.environment && 'SEED_USERS' in seed.environment && 'SEED_ARGS' in seed.environment, 'SEED_USERS and SEED_ARGS are set for the container')
  t.ok(existsSync(join(root, 'scripts', 'seed.ts')), 'scripts/seed.ts exists (compiled to dist/scripts/seed.js)')
  t.match(read('scripts/seed.ts'), /^export \{[^}]*\bmain\b[^}]*\} from '\.\/seed\/cli\.ts'/m, 'seed.ts re-exports main(argv)')
  t.match(read('scripts/seed.ts'), /if \(isMain\(import\.meta\.url\)\)/, 'seed.ts runs main() as the entry point')
  t.match(read('scripts/seed/cli.ts'), /export async function main \(/, 'seed/cli.ts defines main(argv)')
  t.match(read('scripts/seed/cli.ts'), /'if-empty': \{ type: 'boolean' \}/, 'the CLI accepts --if-empty')
  // the seed's dependencies (its entry point and every module under scripts/seed/) are production dependencies
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> }
  const sources = ['scripts/seed.ts', ...readdirSync(join(root, 'scripts', 'seed')).filter((f) => f.endsWith('.ts')).map((f) => `scripts/seed/${f}`)]
  t.ok(sources.length > 1, `seed modules: ${sources.join(', ')}`)
  const imports = sources.flatMap((f) => [...read(f).matchAll(/^import .* from '([^.][^']*)'/gm)].map((m) => m[1]!)).filter((s) => !s.startsWith('node:'))
  for (const dep of [...new Set([...imports, 'mysql2'])]) t.ok(pkg.dependencies[dep.replace(/\/.*$/, '')] ?? pkg.dependencies[dep.split('/').slice(0, 2).join('/')], `${dep} is a production dependency`)
})

t.test('bind mounts: every file or directory they reference exists in the repo', async (t) => {
  for (const [name, svc] of Object.entries(services)) {
    for (const m of mounts(svc).filter((x) => x.bind)) {
      t.ok(m.source.startsWith('./'), `${name}: ${m.source} is repo-relative`)
      t.ok(m.readOnly, `${name}: ${m.source} is mounted read-only`)
      t.ok(existsSync(join(root, m.source)), `${name}: ${m.source} exists`)
    }
  }
  const nginx = mounts(services.nginx!).find((m) => m.target === '/etc/nginx/nginx.conf')
  t.equal(nginx?.source, './nginx/nginx.compose.conf', 'nginx: the compose config is the main nginx.conf')
})

t.test('nginx service: the mounted config and the service definition agree', async (t) => {
  const svc = services.nginx!
  t.match(interpolateDefaults(svc.image ?? ''), /^nginx:[\d.]+$/, 'Debian-based official image by default (dns-reload.sh needs getent and sort)')
  const script = mounts(svc).find((m) => m.target === '/etc/nginx/dns-reload.sh')
  t.equal(script?.source, './nginx/dns-reload.sh', 'dns-reload.sh mounted')
  t.same(svc.command, ['/bin/sh', '/etc/nginx/dns-reload.sh'], 'and run as the command')
  const conf = read('nginx/nginx.compose.conf')
  t.match(conf, /^\s*listen 8080 backlog=4096;/m, 'listens on 8080, the published port')
  t.match(conf, /^\s*server api:3000\b/m, 'upstream is the api service on its port')
  t.match(conf, /^\s*listen 127\.0\.0\.1:8081;/m, 'the health check\'s internal server')
  t.match(conf, /location = \/nginx_status \{\s*stub_status;/, 'serves stub_status at the health check\'s path')
})

t.test('monitoring profile: Prometheus finds every replica by DNS, Grafana is provisioned', async (t) => {
  t.same(services.prometheus!.profiles, ['monitoring'])
  t.same(services.grafana!.profiles, ['monitoring'])

  const promMount = mounts(services.prometheus!).find((m) => m.target === '/etc/prometheus/prometheus.yml')!
  t.ok(promMount, 'prometheus config mounted')
  t.match(JSON.stringify(services.prometheus!.command), promMount.target, 'and used by --config.file')
  const prom = YAML.parse(read(promMount.source)) as { scrape_configs: Array<{ job_name: string, metrics_path?: string, dns_sd_configs?: Array<{ names: string[], type?: string, port?: number }> }> }
  const job = prom.scrape_configs.find((c) => c.dns_sd_configs !== undefined)
  t.ok(job, 'a scrape job uses dns_sd_configs')
  const sd = job!.dns_sd_configs![0]!
  t.ok(sd.names.some((n) => n === 'api' || n === 'tasks.api'), `DNS name ${sd.names.join(', ')} is the api service`)
  t.equal(sd.type ?? 'SRV', 'A', 'A records: one per replica')
  t.equal(sd.port, 3000, 'the app port (metrics are on the app port)')
  t.equal(job!.metrics_path ?? '/metrics', '/metrics')

  const gm = mounts(services.grafana!)
  const prov = gm.find((m) => m.target === '/etc/grafana/provisioning')!
  t.ok(prov && statSync(join(root, prov.source)).isDirectory(), 'provisioning directory mounted')
  const dsFiles = readdirSync(join(root, prov.source, 'datasources'))
  t.ok(dsFiles.length > 0, 'a datasource file')
  const ds = YAML.parse(readFileSync(join(root, prov.source, 'datasources', dsFiles[0]!), 'utf8')) as { datasources: Array<{ uid: string, type: string, url: string }> }
  const promDs = ds.datasources.find((d) => d.type === 'prometheus')!
  t.equal(promDs.url, 'http://prometheus:9090', 'datasource is the compose prometheus')
  const dbFiles = readdirSync(join(root, prov.source, 'dashboards'))
  const provider = (YAML.parse(readFileSync(join(root, prov.source, 'dashboards', dbFiles[0]!), 'utf8')) as { providers: Array<{ type: string, options: { path: string } }> }).providers[0]!
  const dashMount = gm.find((m) => m.target === provider.options.path)
  t.ok(dashMount, `the provider path ${provider.options.path} is a mount`)
  const dashDir = join(root, dashMount!.source)
  const dashboards = readdirSync(dashDir).filter((n) => n.endsWith('.json'))
  t.ok(dashboards.length > 0, 'a dashboard JSON')
  const home = String(services.grafana!.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '')
  if (home) t.ok(home.startsWith(provider.options.path + '/') && existsSync(join(dashDir, home.slice(provider.options.path.length + 1))), 'home dashboard file exists')

  t.same(promqlMetricNames('histogram_quantile(0.99, sum by (le, instance) (rate(a_bucket{x="y",route!~"/m.*"}[1m]))) / ignoring (tier) group_left sum(b_total offset 5m) > 1e3 and on() up == bool 1'), ['a_bucket', 'b_total', 'up'], 'the metric-name extractor')
  // every panel: Prometheus datasource by the provisioned uid, balanced PromQL, and only metrics
  // the app serves at /metrics (METRICS_CONTRACT below, fastify-metrics and prom-client defaults)
  for (const file of dashboards) {
    const d = JSON.parse(readFileSync(join(dashDir, file), 'utf8')) as { uid: string, panels: Array<{ id: number, type: string, title: string, datasource?: { uid: string }, targets?: Array<{ expr: string }> }> }
    t.ok(d.uid, `${file}: has a uid`)
    const panels = d.panels.filter((p) => p.type !== 'row')
    t.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length, `${file}: panel ids unique`)
    const exprs: string[] = []
    for (const p of panels) {
      t.equal(p.datasource?.uid, promDs.uid, `${file}: "${p.title}" uses the provisioned datasource`)
      t.ok((p.targets ?? []).length > 0, `${file}: "${p.title}" has queries`)
      for (const target of p.targets ?? []) {
        exprs.push(target.expr)
        let depth = 0
        for (const ch of target.expr) { if (ch === '(') depth++; if (ch === ')') depth--; if (depth < 0) break }
        t.equal(depth, 0, `${file}: "${p.title}": balanced parentheses`)
        for (const name of promqlMetricNames(target.expr)) t.ok(knownMetric(name), `${file}: "${p.title}": ${name} is served at /metrics`)
        for (const range of target.expr.match(/\[[^\]]*\]/g) ?? []) t.equal(range, '[1m]', `${file}: "${p.title}": rate(...[1m])`)
      }
    }
    const all = exprs.join('\n')
    // the figures of `npm run monitor`, one panel each
    const figures: Array<[string, RegExp]> = [
      ['req/s', /sum\(rate\(http_request_duration_seconds_count\{route!="\/metrics"\}\[1m\]\)\)/],
      ['success rate', /status_code!~"5\.\."\}\[1m\]\)\) \/ sum\(rate\(http_request_duration_seconds_count/],
      ['p50', /histogram_quantile\(0\.5, sum by \(le\) \(rate\(http_request_duration_seconds_bucket/],
      ['p95', /histogram_quantile\(0\.95, sum by \(le\) \(rate\(http_request_duration_seconds_bucket/],
      ['p99', /histogram_quantile\(0\.99, sum by \(le\) \(rate\(http_request_duration_seconds_bucket/],
      ['hit ratio per tier', /sum by \(tier\) \(rate\(recsvc_answers_total\[1m\]\)\) \/ ignoring \(tier\) group_left sum\(rate\(recsvc_answers_total\[1m\]\)\)/],
      ['mysql pool in use', /recsvc_mysql_pool_connections\{state="in_use"\}/],
      ['mysql pool idle', /recsvc_mysql_pool_connections\{state="idle"\}/],
      ['mysql pool queue', /recsvc_mysql_pool_queue_requests/],
      ['scorer queue', /recsvc_scorer_queue_size/],
      ['scorer utilisation', /recsvc_scorer_utilization_ratio/],
      ['event-loop delay p99', /histogram_quantile\(0\.99, sum by \(le, instance\) \(rate\(recsvc_event_loop_delay_seconds_bucket\[1m\]\)\)\)/],
      ['event-loop utilisation', /rate\(recsvc_event_loop_busy_seconds_total\[1m\]\)/],
      ['rate-limit rejections by tier', /sum by \(tier\) \(rate\(recsvc_rate_limited_total\[1m\]\)\)/],
      ['shed requests', /rate\(recsvc_shed_requests_total\[1m\]\)/],
      ['breaker states', /recsvc_circuit_breaker_state/],
      ['fastify-metrics route label value', /route="\/recommend\/:id"/]
    ]
    for (const [what, re] of figures) t.match(all, re, `${file}: ${what}`)
    t.notMatch(all, /recsvc_event_loop_delay_p99_seconds/, `${file}: the old per-scrape gauge is gone (its collect() resets on every scrape)`)
  }
})

/** The series of GET /metrics (the metrics contract, issue 10). Histograms also serve _bucket,
 *  _count and _sum. */
const METRICS_CONTRACT: Record<string, 'counter' | 'gauge' | 'histogram'> = {
  http_request_duration_seconds: 'histogram',
  recsvc_event_loop_delay_seconds: 'histogram',
  recsvc_event_loop_busy_seconds_total: 'counter',
  recsvc_answers_total: 'counter',
  recsvc_answer_duration_seconds: 'histogram',
  recsvc_redis_command_duration_seconds: 'histogram',
  recsvc_redis_errors_total: 'counter',
  recsvc_mysql_query_duration_seconds: 'histogram',
  recsvc_mysql_errors_total: 'counter',
  recsvc_mysql_pool_connections: 'gauge',
  recsvc_mysql_pool_queue_requests: 'gauge',
  recsvc_scorer_threads: 'gauge',
  recsvc_scorer_queue_size: 'gauge',
  recsvc_scorer_utilization_ratio: 'gauge',
  recsvc_scorer_task_duration_seconds: 'histogram',
  recsvc_invalidations_sent_total: 'counter',
  recsvc_invalidations_received_total: 'counter',
  recsvc_invalidation_acks_total: 'counter',
  recsvc_invalidation_ack_duration_seconds: 'histogram',
  recsvc_invalidation_subscription_up: 'gauge',
  recsvc_circuit_breaker_state: 'gauge',
  recsvc_stats_version: 'gauge',
  recsvc_stats_age_seconds: 'gauge',
  recsvc_stats_refreshes_total: 'counter',
  recsvc_background_failures_total: 'counter',
  recsvc_rate_limited_total: 'counter',
  recsvc_shed_requests_total: 'counter',
  recsvc_l1_entries: 'gauge',
  recsvc_l1_bytes: 'gauge'
}

function knownMetric (name: string): boolean {
  if (name === 'up') return true // Prometheus' own per-target series
  if (/^(process|nodejs)_[a-z0-9_]+$/.test(name)) return true // prom-client default metrics
  if (/^http_request_summary_seconds(_count|_sum)?$/.test(name)) return true // fastify-metrics' summary
  for (const [base, type] of Object.entries(METRICS_CONTRACT)) {
    if (name === base) return true
    if (type === 'histogram' && (name === `${base}_bucket` || name === `${base}_count` || name === `${base}_sum`)) return true
  }
  return false
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan'])

/** Metric names in a PromQL expression: identifiers that are not functions or aggregations
 *  (followed by '('), keywords, label names (in {...} and in by/without/on/ignoring/group_x (...)),
 *  strings, ranges or numbers. */
function promqlMetricNames (expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$[a-zA-Z_]\w*/g, ' ')
  const names: string[] = []
  for (const m of bare.matchAll(/(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    if (!PROMQL_WORDS.has(m[1]!.toLowerCase())) names.push(m[1]!)
  }
  return names
}

t.test('docker compose config accepts the file (only where the compose plugin exists)', async (t) => {
  const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' })
  if (probe.status !== 0) {
    t.comment('docker compose is not available here; structure checked above')
    return
  }
  const r = spawnSync('docker', ['compose', '-f', join(root, 'docker-compose.yml'), '--profile', 'monitoring', 'config', '--quiet'], { encoding: 'utf8', cwd: root })
  t.equal(r.status, 0, `docker compose config: ${r.stderr}`)
})

// ---------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction { op: string, args: string, stage: number }
interface Stage { index: number, image: string, name?: string, body: Instruction[] }

function parseDockerfile (text: string): Stage[] {
  const logical: string[] = []
  let buf = ''
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '')
    if (buf === '' && /^\s*#/.test(line)) continue // comments (and the # syntax= directive)
    if (/^\s*#/.test(line)) continue // a comment inside a continuation is dropped by Docker too
    if (line.endsWith('\\')) { buf += line.slice(0, -1) + ' '; continue }
    buf += line
    if (buf.trim()) logical.push(buf.trim())
    buf = ''
  }
  if (buf.trim()) logical.push(buf.trim())
  const stages: Stage[] = []
  const globalArgs = new Map<string, string>()
  for (const l of logical) {
    const [, op = '', args = ''] = /^(\w+)\s*(.*)$/.exec(l) ?? []
    const OP = op.toUpperCase()
    if (OP === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)
      // FROM ${NODE_IMAGE}: the default of the global ARG is the image users get.
      const image = (m?.[1] ?? '').replace(/^\$\{?(\w+)\}?$/, (whole, name: string) => globalArgs.get(name) ?? whole)
      stages.push({ index: stages.length, image, name: m?.[2], body: [] })
    } else if (OP === 'ARG' && stages.length === 0) {
      const [name = '', value = ''] = args.split('=')
      globalArgs.set(name.trim(), value.trim())
      continue
    } else {
      const s = stages[stages.length - 1]
      if (!s) throw new Error(`${OP} before FROM`)
      s.body.push({ op: OP, args, stage: s.index })
    }
  }
  return stages
}

const dockerfile = read('Dockerfile')
const stages = parseDockerfile(dockerfile)
const finalStage = stages[stages.length - 1]!
const ops = (s: Stage, op: string) => s.body.filter((i) => i.op === op)
const runs = (s: Stage) => ops(s, 'RUN').map((i) => i.args).join('\n')
const copyFrom = (i: Instruction) => /--from=(\S+)/.exec(i.args)?.[1]
const stageByName = (n: string) => stages.find((s) => s.name === n)

t.test('Dockerfile: multi-stage on Node 24 slim', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`)
  for (const s of stages) {
    t.match(s.image, /^node:24[\w.-]*-slim$|^node:24-[\w.-]*slim[\w.-]*$/, `stage ${s.name ?? s.index}: ${s.image} is Node 24 slim`)
    t.ok(s.name, `stage ${s.index} is named`)
  }
  t.equal(new Set(stages.map((s) => s.name)).size, stages.length, 'stage names unique')
  for (const s of stages) {
    for (const i of ops(s, 'COPY').filter(copyFrom)) {
      const from = copyFrom(i)!
      const src = stageByName(from)
      t.ok(src && src.index < s.index, `${s.name}: COPY --from=${from} names an earlier stage`)
    }
  }
})

t.test('Dockerfile: npm ci then build in the build stage, production dependencies only at runtime', async (t) => {
  const builder = stages.find((s) => /\bnpm ci\b(?!.*--omit=dev)/.test(runs(s)) && /tsc|npm run build/.test(runs(s)))
  t.ok(builder, 'a stage runs npm ci (with dev dependencies) and compiles')
  t.not(builder, finalStage, 'and it is not the final stage')
  const ciAt = builder!.body.findIndex((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args))
  const buildAt = builder!.body.findIndex((i) => i.op === 'RUN' && /tsc|npm run build/.test(i.args))
  t.ok(ciAt >= 0 && ciAt < buildAt, 'npm ci before the build')
  t.match(runs(builder!), /tsconfig\.build\.json|npm run build/, 'builds with tsconfig.build.json (as npm run build)')

  // final stage: node_modules from an --omit=dev install, dist from the build stage
  const copies = ops(finalStage, 'COPY')
  const nm = copies.find((i) => /node_modules/.test(i.args))
  t.ok(nm, 'final stage copies node_modules')
  const nmFrom = nm && copyFrom(nm) ? stageByName(copyFrom(nm)!) : finalStage
  t.match(runs(nmFrom!), /npm ci [^\n]*--omit=dev/, `node_modules come from npm ci --omit=dev (${nmFrom?.name})`)
  t.notMatch(runs(finalStage), /\bnpm (ci|install)\b(?![^\n]*--omit=dev)/, 'no dev install in the final stage')
  const dist = copies.find((i) => /\bdist\b/.test(i.args))
  t.equal(dist && copyFrom(dist), builder!.name, 'dist/ comes from the build stage')
  t.ok(copies.some((i) => /^sql\s/.test(i.args) || /\ssql\s/.test(i.args)), 'sql/ is in the image (migrate() and the seeder read it)')
  t.ok(copies.some((i) => /package\.json/.test(i.args)), 'package.json ("type": "module") is in the image')
  t.notOk(copies.some((i) => /\bsrc\b|\btest\b/.test(i.args) && !copyFrom(i)), 'no TypeScript sources in the final stage')
})

t.test('Dockerfile: production dependencies need no install scripts (npm ci --ignore-scripts is safe)', async (t) => {
  const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { dev?: boolean, hasInstallScript?: boolean }> }
  const withScripts = Object.entries(lock.packages).filter(([k, v]) => k !== '' && v.hasInstallScript === true && v.dev !== true).map(([k]) => k)
  t.same(withScripts, [], 'no production dependency has an install script')
})

t.test('Dockerfile: final stage runs as non-root under tini with a health check', async (t) => {
  const users = ops(finalStage, 'USER')
  t.ok(users.length > 0, 'USER set in the final stage')
  const user = users[users.length - 1]!.args.split(':')[0]!
  t.notOk(['root', '0'].includes(user), `runs as ${user}`)
  const userAt = finalStage.body.indexOf(users[users.length - 1]!)
  const entry = ops(finalStage, 'ENTRYPOINT')
  t.equal(entry.length, 1, 'one ENTRYPOINT')
  const entryArgs = JSON.parse(entry[0]!.args) as string[]
  t.match(entryArgs[0] ?? '', /tini$/, 'tini is PID 1')
  t.equal(entryArgs[entryArgs.length - 1], '--')
  t.match(runs(finalStage), /apt-get install[^\n]*\btini\b/, 'tini installed from apt')
  t.match(runs(finalStage), /rm -rf \/var\/lib\/apt\/lists/, 'apt lists removed (small image)')
  t.ok(finalStage.body.every((i, at) => i.op !== 'RUN' || at < userAt), 'every RUN (apt-get) comes before USER')
  const cmd = JSON.parse(ops(finalStage, 'CMD')[0]!.args) as string[]
  t.equal(cmd[0], 'node')
  t.equal(cmd[cmd.length - 1], 'dist/src/server.js', 'runs the compiled server')
  const hc = ops(finalStage, 'HEALTHCHECK')
  t.equal(hc.length, 1, 'one HEALTHCHECK')
  t.match(hc[0]!.args, /--interval=\d+s/)
  t.match(hc[0]!.args, /CMD \["node", "-e", .*\/health\/live/, 'node fetch on /health/live (no curl in slim)')
  t.match(ops(finalStage, 'ENV').map((i) => i.args).join(' '), /NODE_ENV=production/)
  t.match(ops(finalStage, 'EXPOSE').map((i) => i.args).join(' '), /\b3000\b/)
})

// ---------------------------------------------------------------------------------------------------
// .dockerignore

/** Docker's rules: patterns in order, the last one that matches the path or one of its parents wins. */
function dockerIgnored (patterns: string[], path: string): boolean {
  const toRe = (p: string) => new RegExp('^' + p.replace(/\/+$/, '').split('/').map((seg) => seg === '**'
    ? '.*'
    : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')).join('/').replace(/\.\*\//g, '(?:.*/)?') + '$')
  const parts = path.split('/')
  const prefixes = parts.map((_p, i) => parts.slice(0, i + 1).join('/'))
  let ignored = false
  for (const raw of patterns) {
    const neg = raw.startsWith('!')
    const re = toRe(neg ? raw.slice(1) : raw)
    if (prefixes.some((p) => re.test(p))) ignored = !neg
  }
  return ignored
}

t.test('.dockerignore: the context holds what the Dockerfile copies and nothing secret', async (t) => {
  const patterns = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const sources = stages.flatMap((s) => ops(s, 'COPY').filter((i) => !copyFrom(i)).flatMap((i) => {
    const words = i.args.split(/\s+/).filter((w) => !w.startsWith('--'))
    return words.slice(0, -1)
  }))
  t.ok(sources.length > 0)
  for (const src of sources) {
    t.ok(existsSync(join(root, src)), `COPY source ${src} exists`)
    t.notOk(dockerIgnored(patterns, src), `COPY source ${src} is in the build context`)
  }
  // everything tsconfig.build.json compiles is copied into the build stage, and in the context
  const buildCfg = JSON.parse(read('tsconfig.build.json')) as { include: string[] }
  for (const dir of buildCfg.include) t.ok(sources.includes(dir), `tsconfig.build.json includes ${dir}: the Dockerfile copies it`)
  const walk = (dir: string): string[] => readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => e.isDirectory() ? walk(`${dir}/${e.name}`) : [`${dir}/${e.name}`])
  for (const dir of buildCfg.include) {
    for (const f of walk(dir).filter((p) => p.endsWith('.ts') && !p.endsWith('.test.ts'))) t.notOk(dockerIgnored(patterns, f), `${f} reaches the build`)
  }
  for (const secret of ['.env', '.env.compose', '.env.compose.local', '.git/config', 'node_modules/fastify/package.json', 'dist/src/server.js', '.stack/redis.log', 'test/helpers/services.ts', 'src/.env']) {
    t.ok(dockerIgnored(patterns, secret), `${secret} stays out of the context`)
  }
})

// ---------------------------------------------------------------------------------------------------
// nginx -t on the compose NGINX config

function findNginx (): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/usr/local/nginx/sbin']) {
    if (dir && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx')
  }
  return undefined
}

t.test('nginx -t passes on every compose NGINX config (api -> 127.0.0.1)', async (t) => {
  const confs = readdirSync(join(root, 'nginx')).filter((n) => /^nginx\.compose.*\.conf$/.test(n))
  t.ok(confs.includes('nginx.compose.conf'), 'nginx/nginx.compose.conf exists')
  const nginx = findNginx()
  if (nginx === undefined) {
    // nginx is a requirement of the suite (.ci/run installs it), not an optional extra.
    t.fail('nginx is not installed: apt-get install nginx-light (or nginx)')
    return
  }
  for (const name of confs) {
    const dir = mkdtempSync(join(tmpdir(), 'recsvc-nginx-compose-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    // Outside compose: the service name does not resolve, and the image's user, log, pid and temp
    // paths may not exist or be writable; /dev/stdout may be a socket here.
    const text = readFileSync(join(root, 'nginx', name), 'utf8')
      .replace(/\bapi(:\d+)/g, '127.0.0.1$1')
      .replace(/^\s*user\s+[^;]+;/m, '')
      .replace(/\/dev\/std(out|err)/g, `${dir}/std$1.log`)
      .replace(/\/var\/log\/nginx\//g, `${dir}/`)
      .replace(/"?\/tmp\/nginx([._])/g, `"${dir}/nginx$1`)
    const target = join(dir, 'nginx.conf')
    writeFileSync(target, text)
    // nginx.compose.hash*.conf include the server lines nginx/dns-reload.sh writes: one here.
    const servers = /# dns-reload-servers: (\S+) (.*)$/m.exec(text)
    if (servers) writeFileSync(servers[1]!.replace(/^"/, ''), `server 127.0.0.1:3000 ${servers[2]};\n`)
    if (existsSync('/etc/nginx/mime.types')) copyFileSync('/etc/nginx/mime.types', join(dir, 'mime.types'))
    const r = spawnSync(nginx, ['-t', '-p', dir, '-c', target, '-e', join(dir, 'error.log')], { encoding: 'utf8' })
    t.equal(r.status, 0, `nginx -t on nginx/${name}:\n${r.stderr}`)
  }
})

t.test('runs without a registry and on docker-compose 1.29: base images overridable, nothing else pulled', async (t) => {
  t.notMatch(dockerfile, /^#\s*syntax=/m, 'no # syntax= line (it pulls a frontend image)')
  t.notMatch(dockerfile, /--mount=/, 'no RUN --mount (the legacy builder of docker-compose 1.29 has none)')
  t.match(dockerfile, /^ARG NODE_IMAGE=node:24-bookworm-slim$/m, 'the Node base is an ARG, official by default')
  t.ok(stages.every((s) => s.image === 'node:24-bookworm-slim'), 'every stage FROM ${NODE_IMAGE}')
  const raw = YAML.parse(read('docker-compose.yml')) as Record<string, unknown>
  t.equal(raw.name, undefined, 'no top-level name: (docker-compose 1.29 rejects it)')
  for (const [name, svc] of Object.entries(services)) {
    for (const e of ([] as unknown[]).concat(svc.env_file ?? [])) t.type(e, 'string', `${name}: env_file entries are paths (1.29 has no required:)`)
  }
  t.equal((services.api!.build as { args?: Record<string, string> }).args?.NODE_IMAGE, '${RECSVC_NODE_IMAGE:-node:24-bookworm-slim}', 'the api build passes RECSVC_NODE_IMAGE on')
  for (const [svc, v] of [['mysql', 'RECSVC_MYSQL_IMAGE'], ['redis', 'RECSVC_REDIS_IMAGE'], ['nginx', 'RECSVC_NGINX_IMAGE']] as const) {
    t.match(services[svc]!.image ?? '', new RegExp(`^\\$\\{${v}:-`), `${svc}: ${v} overrides the image`)
  }
  const standIns = read('tools/docker/stand-ins.sh')
  for (const image of ['recsvc-standin/node:24-bookworm-slim', 'recsvc-standin/mysql:8.4', 'recsvc-standin/redis:7.4-alpine', 'recsvc-standin/nginx:1.28']) {
    t.ok(standIns.includes(image), `tools/docker/stand-ins.sh builds ${image}`)
  }
})
