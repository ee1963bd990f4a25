// The Kubernetes manifests in deploy/k8s: every document is checked against the Kubernetes API
// schemas (kubernetes-models), unknown fields included, and the parts the service's behaviour
// depends on are checked against each other and against src/config.ts: probes, ports, shutdown
// timing, selectors, autoscaling, the Ingress routes, and that the Secret holds placeholders only.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1'
import { ConfigError, describeConfig, loadConfig } from '../../src/config.ts'

const root = fileURLToPath(new URL('../..', import.meta.url))
const dir = join(root, 'deploy', 'k8s')
const NAMESPACE = 'recsvc'
/** MySQL's and MariaDB's default max_connections. Raise it here only if the database's is raised. */
const MYSQL_MAX_CONNECTIONS = 151

interface Validatable { validate (): void }
/** apiVersion/kind -> the kubernetes-models class that validates it. */
const models: Record<string, (data: object) => Validatable> = {
  'v1/Namespace': (d) => new Namespace(d),
  'v1/ServiceAccount': (d) => new ServiceAccount(d),
  'v1/ConfigMap': (d) => new ConfigMap(d),
  'v1/Secret': (d) => new Secret(d),
  'v1/Service': (d) => new Service(d),
  'apps/v1/Deployment': (d) => new Deployment(d),
  'autoscaling/v2/HorizontalPodAutoscaler': (d) => new HorizontalPodAutoscaler(d),
  'policy/v1/PodDisruptionBudget': (d) => new PodDisruptionBudget(d),
  'networking.k8s.io/v1/Ingress': (d) => new Ingress(d)
}

type Obj = Record<string, unknown>
interface Doc { file: string, kind: string, name: string, value: Obj }

function parseYaml (text: string, file: string): Obj[] {
  return parseAllDocuments(text).map((doc, i) => {
    const problems = [...doc.errors, ...doc.warnings]
    if (problems.length > 0) throw new Error(`${file} document ${i}: ${problems.map((e) => e.message).join('; ')}`)
    return doc.toJS() as Obj
  }).filter((v) => v !== null && v !== undefined)
}

const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
const kustomization = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'), 'kustomization.yaml')[0] ?? {}
const docs: Doc[] = files.filter((f) => f !== 'kustomization.yaml').flatMap((file) =>
  parseYaml(readFileSync(join(dir, file), 'utf8'), file).map((value) => ({
    file,
    kind: String(value.kind),
    name: String((value.metadata as Obj | undefined)?.name),
    value
  })))

function must<T> (value: T | undefined | null, what: string): T {
  if (value === undefined || value === null) throw new Error(`missing: ${what}`)
  return value
}
function find (kind: string, name: string): Obj {
  return must(docs.find((d) => d.kind === kind && d.name === name), `${kind} ${name}`).value
}
/** Reads a nested field by path: get(doc, 'spec', 'template', 'spec'). */
function get (value: unknown, ...path: Array<string | number>): any {
  let v: any = value
  for (const key of path) v = v?.[key]
  return v
}

/** The field paths of `value` that the schema does not know. The compiled validators read each
 *  property the schema defines (and every entry of a map), so a field that validation never
 *  reads is an unknown field: a typo that kubectl's strict field validation would refuse, and
 *  that the schema check alone lets through. */
function unknownFields (model: Validatable, value: unknown): string[] {
  const read = new Set<string>()
  const track = (v: unknown, path: string): unknown => v === null || typeof v !== 'object'
    ? v
    : new Proxy(v, {
      get (target, key, receiver) {
        const child: unknown = Reflect.get(target, key, receiver)
        if (typeof key !== 'string') return child
        read.add(`${path}/${key}`)
        return track(child, `${path}/${key}`)
      }
    })
  model.validate.call(track(JSON.parse(JSON.stringify(value)), ''))
  const unknown: string[] = []
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) v.forEach((item, i) => { walk(item, `${path}/${i}`) })
    else if (v !== null && typeof v === 'object') {
      for (const [key, child] of Object.entries(v)) {
        if (read.has(`${path}/${key}`)) walk(child, `${path}/${key}`)
        else unknown.push(`${path}/${key}`)
      }
    }
  }
  walk(value, '')
  return unknown
}

function validate (value: Obj): string[] {
  const make = models[`${String(value.apiVersion)}/${String(value.kind)}`]
  if (!make) return [`no schema for ${String(value.apiVersion)} ${String(value.kind)}`]
  const model = make(value)
  try {
    model.validate()
  } catch (err) {
    return [(err as Error).message]
  }
  return unknownFields(model, value).map((p) => `unknown field ${p}`)
}

/** Kubernetes quantities as numbers: cores for CPU ("500m" = 0.5), bytes for memory. */
function quantity (q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(m|k|M|G|Ki|Mi|Gi)?$/.exec(String(q))
  if (!m) throw new Error(`unsupported quantity ${String(q)}`)
  const unit = { '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[m[2] ?? '']
  return Number(m[1]) * must(unit, `unit of ${String(q)}`)
}

// The objects the checks below are about.
const deployment = find('Deployment', 'recsvc')
const podSpec = get(deployment, 'spec', 'template', 'spec')
const container = get(podSpec, 'containers', 0)
const configMap = find('ConfigMap', 'recsvc-config')
const secret = find('Secret', 'recsvc-secrets')
const service = find('Service', 'recsvc')
const hpa = find('HorizontalPodAutoscaler', 'recsvc')
const pdb = find('PodDisruptionBudget', 'recsvc')
const ingress = find('Ingress', 'recsvc')
const cmData: Record<string, string> = get(configMap, 'data') ?? {}
const secretData: Record<string, string> = get(secret, 'stringData') ?? {}
const matchLabels: Record<string, string> = get(deployment, 'spec', 'selector', 'matchLabels')
const podLabels: Record<string, string> = get(deployment, 'spec', 'template', 'metadata', 'labels')

/** The environment a pod gets: ConfigMap, then Secret, then the container's own env. */
const podName = 'recsvc-7d9c8b5f4-x2x7q'
function podEnv (): Record<string, string> {
  const env: Record<string, string> = { ...cmData, ...secretData }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName
    else throw new Error(`env ${String(e.name)}: unsupported source in this test`)
  }
  return env
}
const realToken = 'x'.repeat(40)
const config = loadConfig({ ...podEnv(), ADMIN_TOKEN: realToken })

/** The container port a probe or a Service's targetPort refers to, by name or number. */
function containerPort (port: string | number): number | undefined {
  const ports: Array<{ name?: string, containerPort: number }> = container.ports ?? []
  return typeof port === 'number'
    ? ports.find((p) => p.containerPort === port)?.containerPort
    : ports.find((p) => p.name === port)?.containerPort
}

t.test('every document matches the Kubernetes schema, with no unknown fields', async (t) => {
  t.ok(docs.length >= 9, `${docs.length} documents`)
  for (const d of docs) t.same(validate(d.value), [], `${d.file}: ${d.kind} ${d.name}`)
})

t.test('the unknown-field check catches misspelled and misplaced fields', async (t) => {
  const bad = structuredClone(deployment)
  const spec = get(bad, 'spec', 'template', 'spec')
  spec.containers[0].readinesProbe = spec.containers[0].readinessProbe
  spec.containers[0].resources.limit = { cpu: '1' }
  spec.preStop = { exec: { command: ['sleep', '5'] } }
  t.same(validate(bad).sort(), [
    '/spec/template/spec/containers/0/readinesProbe',
    '/spec/template/spec/containers/0/resources/limit',
    '/spec/template/spec/preStop'
  ].map((p) => `unknown field ${p}`).sort())
  const wrongType = structuredClone(deployment)
  get(wrongType, 'spec', 'template', 'spec', 'containers', 0, 'ports', 0).containerPort = '3000'
  t.match(validate(wrongType)[0], /containerPort must be integer/)
})

t.test('kustomization lists every manifest, in one namespace', async (t) => {
  t.equal(kustomization.apiVersion, 'kustomize.config.k8s.io/v1beta1')
  t.equal(kustomization.kind, 'Kustomization')
  t.equal(kustomization.namespace, NAMESPACE)
  const resources = [...(kustomization.resources as string[])].sort()
  t.same(resources, files.filter((f) => f !== 'kustomization.yaml'), 'resources = every other YAML file')
  t.ok(docs.some((d) => d.kind === 'Namespace' && d.name === NAMESPACE), 'the Namespace is created')
  for (const d of docs.filter((d) => d.kind !== 'Namespace')) {
    t.equal(get(d.value, 'metadata', 'namespace'), NAMESPACE, `${d.kind} ${d.name} namespace`)
  }
  const names = docs.map((d) => `${d.kind}/${d.name}`)
  t.same(names, [...new Set(names)], 'no two objects share a kind and name')
})

t.test('image: recsvc at the package version, and the kustomize image entry agrees', async (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  t.equal(container.image, `recsvc:${pkg.version}`)
  const images = kustomization.images as Array<{ name: string, newTag?: string }>
  t.same(images.map((i) => [i.name, i.newTag]), [['recsvc', pkg.version]])
})

t.test('every variable the pods get is one the service reads, with valid values', async (t) => {
  const known = new Set(describeConfig().map((c) => c.name))
  const names = [...Object.keys(cmData), ...Object.keys(secretData), ...(container.env ?? []).map((e: { name: string }) => e.name)]
  for (const name of names) t.ok(known.has(name), `${name} is in ConfigSchema`)
  t.same(Object.keys(cmData).filter((k) => k in secretData), [], 'no variable is in both the ConfigMap and the Secret')

  t.same(container.envFrom, [
    { configMapRef: { name: 'recsvc-config' } },
    { secretRef: { name: 'recsvc-secrets' } }
  ], 'envFrom: the ConfigMap and the Secret, both required')
  t.same(container.env.find((e: { name: string }) => e.name === 'REPLICA_ID'),
    { name: 'REPLICA_ID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    'REPLICA_ID is the pod name (downward API)')

  t.equal(config.REPLICA_ID, podName)
  t.equal(config.NODE_ENV, 'production')
  t.ok(config.SHUTDOWN_DRAIN_DELAY_MS > 0, 'a drain delay is set')
  t.ok('SCORER_THREADS' in cmData, 'SCORER_THREADS is explicit (the default counts the node\'s cores, not the pod\'s)')
  t.ok(config.SCORER_THREADS <= quantity(container.resources.limits.cpu), 'scoring threads fit the CPU limit')
  t.ok(config.L1_MAX_BYTES <= quantity(container.resources.limits.memory) / 4, 'the LRU is a small part of the memory limit')

  // The placeholder token is too short for the service: it refuses to start rather than run with it.
  t.throws(() => loadConfig(podEnv()), ConfigError)
  t.throws(() => loadConfig(podEnv()), /ADMIN_TOKEN: must be at least 16 characters/)
})

t.test('the Secret holds placeholders only, and the ConfigMap no credentials', async (t) => {
  t.equal(get(secret, 'type'), 'Opaque')
  t.equal(get(secret, 'data'), undefined, 'no base64 data, where a real value would not be visible')
  t.same(Object.keys(secretData).sort(), ['ADMIN_TOKEN', 'MYSQL_URL'])
  for (const [key, value] of Object.entries(secretData)) t.match(value, /CHANGE_ME/, `${key} is a placeholder`)
  t.equal(new URL(must(secretData.MYSQL_URL, 'MYSQL_URL')).password, 'CHANGE_ME', 'the MySQL password is the placeholder')
  t.equal(secretData.ADMIN_TOKEN, 'CHANGE_ME')

  for (const [key, value] of Object.entries(cmData)) {
    t.notMatch(key, /TOKEN|PASSWORD|SECRET|^MYSQL_URL$/, `${key} is not secret`)
    if (/^[a-z]+:\/\//.test(value)) t.equal(new URL(value).password, '', `${key} has no password`)
  }
})

t.test('Redis and MySQL are external services, reached by stable names', async (t) => {
  for (const [variable, name, port] of [['REDIS_URL', 'redis', '6379'], ['MYSQL_URL', 'mysql', '3306']] as const) {
    const url = new URL(config[variable])
    t.equal(url.hostname, name, `${variable} uses the "${name}" Service`)
    t.equal(url.port, port)
    const svc = find('Service', name)
    t.equal(get(svc, 'spec', 'type'), 'ExternalName')
    const host = String(get(svc, 'spec', 'externalName'))
    t.equal(isIP(host), 0, `${name}: externalName is a DNS name`)
    t.match(host, /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/)
  }
  t.notOk(docs.some((d) => ['StatefulSet', 'PersistentVolumeClaim'].includes(d.kind)), 'no database deployed here')
})

t.test('container: port, probes and resources', async (t) => {
  t.equal(containerPort('http'), config.PORT, 'the container port is PORT')
  t.equal(containerPort(config.PORT), config.PORT)

  const probes = { readinessProbe: '/health/ready', livenessProbe: '/health/live', startupProbe: '/health/live' }
  for (const [probe, path] of Object.entries(probes)) {
    const httpGet = must(container[probe]?.httpGet, `${probe}.httpGet`)
    t.equal(httpGet.path, path, `${probe} path`)
    t.equal(containerPort(httpGet.port), config.PORT, `${probe} port is the container port`)
  }
  // The routes the probes and the scrape annotation use exist in the service.
  t.match(readFileSync(join(root, 'src/routes/health.ts'), 'utf8'), /'\/health\/live'[\s\S]*'\/health\/ready'/)
  t.match(readFileSync(join(root, 'src/plugins/metrics.ts'), 'utf8'), /'\/metrics'/)

  // Readiness answers from this process's state alone (no dependency pings), so it cannot be slow.
  t.notMatch(readFileSync(join(root, 'src/routes/health.ts'), 'utf8').split("'/health/ready'")[1]?.split('app.get(')[0] ?? '', /ping|check\(/, 'readiness pings no dependency')
  t.ok(container.readinessProbe.failureThreshold >= 2, 'one slow answer (a busy event loop) does not take a pod out')
  t.notOk(Object.values(probes).includes('/health'), 'no probe uses /health, which fails while a dependency is down')
  t.ok(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold >= 30, 'start-up gets at least 30 s')

  const { requests, limits } = container.resources
  for (const r of ['cpu', 'memory']) {
    t.ok(requests?.[r] && limits?.[r], `${r} request and limit set`)
    t.ok(quantity(requests[r]) <= quantity(limits[r]), `${r} request <= limit`)
  }
})

t.test('graceful termination: preStop sleep, then the drain and grace, within the grace period', async (t) => {
  const preStop = must(container.lifecycle?.preStop, 'preStop')
  const command: string[] = must(preStop.exec?.command, 'preStop exec command')
  t.equal(command[0], 'sleep')
  const sleepS = Number(command[1])
  t.ok(sleepS >= 3, `preStop sleeps ${sleepS} s, long enough for the endpoint removal to propagate`)
  const shutdownS = sleepS + (config.SHUTDOWN_DRAIN_DELAY_MS + config.SHUTDOWN_GRACE_MS) / 1000
  const graceS = podSpec.terminationGracePeriodSeconds
  t.ok(graceS > shutdownS, `terminationGracePeriodSeconds ${graceS} > preStop ${sleepS} s + drain + grace = ${shutdownS} s`)
})

t.test('pod hardening and placement', async (t) => {
  t.equal(get(deployment, 'spec', 'replicas'), undefined, 'no replicas: the HPA owns the count')
  t.equal(get(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxUnavailable'), 0, 'rollouts keep full capacity')
  t.equal(podSpec.securityContext.runAsNonRoot, true)
  t.type(podSpec.securityContext.runAsUser, 'number', 'numeric user, so runAsNonRoot can be verified')
  t.ok(podSpec.securityContext.runAsUser > 0)
  t.equal(podSpec.securityContext.seccompProfile.type, 'RuntimeDefault')
  t.equal(podSpec.automountServiceAccountToken, false)
  t.equal(podSpec.enableServiceLinks, false)
  t.equal(container.securityContext.readOnlyRootFilesystem, true)
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.same(container.securityContext.capabilities.drop, ['ALL'])
  t.ok(container.volumeMounts.some((m: { mountPath: string }) => m.mountPath === '/tmp'), 'a writable /tmp')
  const spread: Array<{ topologyKey: string, labelSelector: { matchLabels: object } }> = podSpec.topologySpreadConstraints
  t.same(spread.map((s) => s.topologyKey).sort(), ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'])
  for (const s of spread) t.same(s.labelSelector.matchLabels, matchLabels, `${s.topologyKey} spread selects the pods`)
  const annotations = get(deployment, 'spec', 'template', 'metadata', 'annotations')
  t.same(annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(config.PORT), 'prometheus.io/path': '/metrics' })
})

t.test('selectors: Deployment, Service and PDB select the same pods', async (t) => {
  for (const [key, value] of Object.entries(matchLabels)) t.equal(podLabels[key], value, `pods carry ${key}`)
  t.same(get(service, 'spec', 'selector'), matchLabels, 'Service selector')
  t.same(get(pdb, 'spec', 'selector'), { matchLabels }, 'PDB selector')
  t.equal(get(pdb, 'spec', 'maxUnavailable'), 1)
  t.equal(get(pdb, 'spec', 'minAvailable'), undefined)
})

t.test('Service: port 80 to the container port', async (t) => {
  t.equal(get(service, 'spec', 'type'), 'ClusterIP')
  const ports: Array<{ name: string, port: number, targetPort: string | number }> = get(service, 'spec', 'ports')
  t.equal(ports.length, 1)
  t.equal(ports[0]?.port, 80)
  t.equal(containerPort(must(ports[0], 'port').targetPort), config.PORT, 'targetPort is the container port')
})

t.test('HPA: CPU, 2 to 20 replicas of the Deployment', async (t) => {
  t.same(get(hpa, 'spec', 'scaleTargetRef'), { apiVersion: 'apps/v1', kind: 'Deployment', name: 'recsvc' })
  t.equal(get(hpa, 'spec', 'minReplicas'), 2)
  t.equal(get(hpa, 'spec', 'maxReplicas'), 20)
  const metrics: Array<{ type: string, resource?: { name: string, target: { type: string, averageUtilization?: number } } }> = get(hpa, 'spec', 'metrics')
  t.equal(metrics.length, 1)
  t.equal(metrics[0]?.type, 'Resource')
  t.equal(metrics[0]?.resource?.name, 'cpu')
  t.equal(metrics[0]?.resource?.target.type, 'Utilization')
  const target = must(metrics[0]?.resource?.target.averageUtilization, 'averageUtilization')
  t.ok(target > 0 && target <= 100, `target ${target}%`)
  t.ok(container.resources.requests.cpu, 'utilization needs a CPU request')

  // Each replica may open MYSQL_POOL_SIZE connections; at the maximum plus the rollout surge,
  // they must fit the database's connection limit.
  const surge = String(get(deployment, 'spec', 'strategy', 'rollingUpdate', 'maxSurge'))
  const maxReplicas = 20
  const surgePods = surge.endsWith('%') ? Math.ceil(maxReplicas * Number(surge.slice(0, -1)) / 100) : Number(surge)
  const connections = (maxReplicas + surgePods) * config.MYSQL_POOL_SIZE
  t.ok(connections < MYSQL_MAX_CONNECTIONS, `${connections} MySQL connections at most (< ${MYSQL_MAX_CONNECTIONS})`)
})

t.test('Ingress: ingress-nginx, the API routed to the Service, nothing internal exposed', async (t) => {
  t.equal(get(ingress, 'spec', 'ingressClassName'), 'nginx')
  t.equal(get(ingress, 'spec', 'tls'), undefined, 'no TLS secret committed')
  const annotations: Record<string, string> = get(ingress, 'metadata', 'annotations')
  for (const key of Object.keys(annotations)) t.match(key, /^nginx\.ingress\.kubernetes\.io\//)
  t.equal(annotations['nginx.ingress.kubernetes.io/limit-rps'], '100')
  t.ok(Number(annotations['nginx.ingress.kubernetes.io/limit-burst-multiplier']) >= 1)
  for (const a of ['proxy-connect-timeout', 'proxy-read-timeout', 'proxy-send-timeout']) {
    t.ok(Number(annotations[`nginx.ingress.kubernetes.io/${a}`]) > 0, a)
  }
  t.ok(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout']) * 1000 > config.SCORER_TASK_TIMEOUT_MS,
    'nginx waits longer than the service\'s own scoring timeout')

  const servicePorts: Array<{ name: string, port: number }> = get(service, 'spec', 'ports')
  const paths: Array<{ path: string, pathType: string, backend: { service: { name: string, port: { name?: string, number?: number } } } }> =
    (get(ingress, 'spec', 'rules') as Array<{ http: { paths: [] } }>).flatMap((r) => r.http.paths)
  for (const p of paths) {
    t.equal(p.backend.service.name, 'recsvc', `${p.path} goes to the recsvc Service`)
    const port = p.backend.service.port
    t.ok(servicePorts.some((sp) => sp.name === port.name || sp.port === port.number), `${p.path}: the Service has that port`)
  }
  const routed = (url: string) => paths.some((p) => p.pathType === 'Exact'
    ? url === p.path
    : p.path === '/' || url === p.path.replace(/\/$/, '') || url.startsWith(p.path.replace(/\/$/, '') + '/'))
  // Only the public API: GET /recommend/:id, /batch-recommend, the docs.
  t.same(paths.map((p) => p.path).sort(), ['/batch-recommend', '/docs', '/recommend'], 'exactly the public paths are routed')
  for (const url of ['/recommend/1', '/batch-recommend', '/docs', '/docs/json', '/docs/static/index.html']) t.ok(routed(url), `${url} routed`)
  // Internal (/metrics, /health, /health/*) and admin (/invalidate-cache, /events): never exposed.
  for (const url of ['/metrics', '/health', '/health/ready', '/health/live', '/invalidate-cache', '/invalidate-cache/1', '/events', '/recommendx', '/docsx', '/']) {
    t.notOk(routed(url), `${url} not routed`)
  }
  t.equal(get(ingress, 'spec', 'defaultBackend'), undefined, 'no default backend: an unrouted path never reaches the Service')
  for (const key of Object.keys(annotations)) t.notMatch(key, /snippet|rewrite-target|use-regex|app-root/, `${key}: no annotation that could route other paths`)
})

// `kubectl kustomize` renders offline: no cluster is contacted.
const kustomize = (path: string) => spawnSync('kubectl', ['kustomize', path], { encoding: 'utf8', timeout: 60_000 })
const run = kustomize(dir)
const noKubectl = (run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT'
// kubectl before 1.21 embeds kustomize v2, which cannot read the inline patches deploy/README.md's
// overlay uses (Debian's kubernetes-client is 1.20); the base still renders with it.
const kubectlVersion = noKubectl ? '' : spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8', timeout: 30_000 }).stdout ?? ''
const minorMatch = /Minor:"(\d+)|Client Version: v1\.(\d+)/.exec(kubectlVersion)
const kubectlMinor = Number(minorMatch?.[1] ?? minorMatch?.[2] ?? 0)
const rendered = (kind: string, docs: Obj[]) => must(docs.find((d) => d.kind === kind), `rendered ${kind}`)

t.test('kustomize renders the same objects', async (t) => {
  // kubectl is a requirement of the suite (.ci/run installs it), not an optional extra.
  if (noKubectl) return t.fail('kubectl is not installed: apt-get install kubernetes-client')
  t.equal(run.status, 0, run.stderr)
  const out = parseYaml(run.stdout, 'kubectl kustomize')
  t.same(out.map((d) => `${String(d.kind)}/${String(get(d, 'metadata', 'name'))}`).sort(),
    docs.map((d) => `${d.kind}/${d.name}`).sort())
  for (const d of out) t.same(validate(d), [], `rendered ${String(d.kind)} ${String(get(d, 'metadata', 'name'))}`)
  t.equal(get(rendered('Deployment', out), 'spec', 'template', 'spec', 'containers', 0, 'image'), container.image)
})

t.test('the overlay example in deploy/README.md replaces the placeholders', {
  skip: noKubectl ? 'kubectl not installed' : kubectlMinor < 21 ? `kubectl 1.${kubectlMinor} embeds kustomize v2, which has no inline patches` : false
}, async (t) => {
  const readme = readFileSync(join(root, 'deploy/README.md'), 'utf8')
  const block = must(/```yaml\n([ \t]*# my-recsvc\/kustomization\.yaml\n[\s\S]*?)[ \t]*```/.exec(readme)?.[1], 'the overlay example in README.md')
  const indent = Math.min(...block.split('\n').filter((l) => l.trim()).map((l) => /^ */.exec(l)?.[0].length ?? 0))
  const overlay = mkdtempSync(join(tmpdir(), 'recsvc-overlay-'))
  t.teardown(() => { rmSync(overlay, { recursive: true, force: true }) })
  writeFileSync(join(overlay, 'kustomization.yaml'), block.split('\n').map((l) => l.slice(indent)).join('\n')
    .replace('../recsvc/deploy/k8s', relative(overlay, dir)))
  const mysqlUrl = 'mysql://recsvc:from-the-env-file@mysql:3306/recsvc'
  writeFileSync(join(overlay, '.env'), `MYSQL_URL=${mysqlUrl}\nADMIN_TOKEN=${realToken}\n`)

  const result = kustomize(overlay)
  t.equal(result.status, 0, result.stderr)
  const out = parseYaml(result.stdout, 'kubectl kustomize overlay')
  for (const d of out) t.same(validate(d), [], `rendered ${String(d.kind)} ${String(get(d, 'metadata', 'name'))}`)
  const s = rendered('Secret', out)
  t.equal(get(s, 'stringData'), undefined, 'the placeholders are gone')
  const data = Object.fromEntries(Object.entries(get(s, 'data') as Record<string, string>)
    .map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]))
  t.same(data, { MYSQL_URL: mysqlUrl, ADMIN_TOKEN: realToken })
  const podSpec = get(rendered('Deployment', out), 'spec', 'template', 'spec')
  t.same(podSpec.containers[0].envFrom.map((e: Obj) => get(e, 'secretRef', 'name') ?? get(e, 'configMapRef', 'name')),
    [get(rendered('ConfigMap', out), 'metadata', 'name'), get(s, 'metadata', 'name')], 'the pods use the rendered ConfigMap and Secret')
  t.match(podSpec.containers[0].image, /^registry\.example\.com\/recsvc:/)
  const cm = get(rendered('ConfigMap', out), 'data') as Record<string, string>
  t.same(cm, { ...cmData, LOG_LEVEL: 'warn' }, 'the ConfigMap is merged, not replaced')
  const c = loadConfig({ ...cm, ...data, REPLICA_ID: podName })
  t.equal(c.MYSQL_URL, mysqlUrl, 'the service starts with the overlay\'s values')
  for (const name of ['redis', 'mysql']) {
    const svc = must(out.find((d) => d.kind === 'Service' && get(d, 'metadata', 'name') === name), name)
    t.notMatch(get(svc, 'spec', 'externalName'), /example\.internal/, `${name} points elsewhere`)
  }
})
