import { readFileSync } from 'node:fs'
import t from 'tap'
import { Ajv } from 'ajv'
import type { FastifyInstance } from 'fastify'
import { adminHeaders, withApp } from './helpers/app.ts'
import { MISSING_USER } from '../tools/fixture.ts'

/** The OpenAPI document of src/plugins/docs.ts, served at /docs/json: every route of the app, with
 *  its summary, tags, request schemas and a response schema for its statuses, the admin routes
 *  behind the bearer scheme; and the real answers of the app match what it documents. */

type Json = Record<string, any>

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string, version: string }
const { app } = await withApp(t)

/** Every method and url the app routes, from the tree of printRoutes (HEAD routes included). */
function appRoutes (app: FastifyInstance): Array<{ method: string, url: string }> {
  const routes: Array<{ method: string, url: string }> = []
  const prefixes: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) continue
    const depth = (m[1] ?? '').length / 4
    prefixes.length = depth
    const url = (prefixes[depth - 1] ?? '') + m[2]
    prefixes[depth] = url
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url })
  }
  return routes
}

const toOpenapiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}')
/** The url of a route with its path parameters filled in, for a request. */
const concrete = (url: string) => url.replace(/:(\w+)/g, '1')

const res = await app.inject('/docs/json')
t.equal(res.statusCode, 200, 'GET /docs/json')
t.match(res.headers['content-type'], /^application\/json/)
const doc = JSON.parse(res.body) as Json

const routes = appRoutes(app).filter((r) => r.method !== 'HEAD' && !r.url.startsWith('/docs'))
const operations = Object.entries(doc.paths as Record<string, Json>)
  .flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method: method.toUpperCase(), op: op as Json })))

/** A schema with its `$ref` to a component followed; undefined when the component is missing. */
function deref (schema: Json | undefined): Json | undefined {
  const ref = schema?.$ref as string | undefined
  if (ref === undefined) return schema
  const name = /^#\/components\/schemas\/([^/]+)$/.exec(ref)?.[1]
  return name === undefined ? undefined : deref(doc.components?.schemas?.[name] as Json | undefined)
}

function isErrorShape (schema: Json | undefined): boolean {
  const s = deref(schema)
  return s !== undefined && ['statusCode', 'code', 'error', 'message'].every((k) => s.properties?.[k] !== undefined && (s.required as string[] | undefined)?.includes(k))
}

t.test('GET /docs/json is an OpenAPI 3 document of the service', async (t) => {
  t.match(doc.openapi, /^3\.\d+\.\d+$/, 'openapi 3.x')
  t.equal(doc.info?.title, pkg.name, 'title from package.json')
  t.equal(doc.info?.version, pkg.version, 'version from package.json')
  t.equal(doc.servers, undefined, 'no hard-coded servers: the document is relative to where it is served')
  t.type(doc.paths, 'object')
  t.ok(operations.length > 0, 'some operations')
  const refs = new Set(JSON.stringify(doc).match(/"\$ref":"[^"]*"/g) ?? [])
  t.ok(refs.size > 0, 'shared schemas are referenced')
  for (const r of refs) t.ok(deref(JSON.parse(`{${r}}`) as Json), `${r} is a component`)
  t.ok(isErrorShape(doc.components?.schemas?.Error), 'the common error body is a component')
})

t.test('every route of the app is documented, and nothing else', async (t) => {
  t.ok(routes.length >= 10, `the app's routes were listed (${routes.length})`)
  for (const r of routes) {
    t.ok(doc.paths[toOpenapiPath(r.url)]?.[r.method.toLowerCase()], `${r.method} ${r.url} is documented`)
  }
  const known = new Set(routes.map((r) => `${r.method} ${toOpenapiPath(r.url)}`))
  for (const o of operations) t.ok(known.has(`${o.method} ${o.path}`), `${o.method} ${o.path} is a route of the app`)
  t.notOk(Object.keys(doc.paths).some((p) => p.startsWith('/docs')), 'the docs routes are hidden')
})

t.test('each operation has a summary, tags, a success and an error response', async (t) => {
  const tagNames = new Set((doc.tags as Json[] | undefined)?.map((g) => g.name))
  for (const { path, method, op } of operations) {
    const name = `${method} ${path}`
    t.type(op.summary, 'string', `${name}: summary`)
    t.ok((op.summary as string).length > 0, `${name}: summary not empty`)
    t.ok(Array.isArray(op.tags) && op.tags.length > 0, `${name}: tags`)
    for (const tag of op.tags ?? []) t.ok(tagNames.has(tag), `${name}: tag ${tag} is declared`)
    const responses = op.responses as Record<string, Json>
    const success = responses['200'] ?? responses['201']
    t.ok(success, `${name}: a 200 or 201 response`)
    const media = success?.content as Record<string, Json> | undefined
    t.ok(media && Object.values(media).every((m) => m.schema !== undefined), `${name}: the success response has a schema`)
    for (const [status, r] of Object.entries(responses)) t.type(r.description, 'string', `${name} ${status}: description`)
    const errors = Object.entries(responses).filter(([status]) => Number(status) >= 400)
    t.ok(errors.some(([, r]) => isErrorShape(r.content?.['application/json']?.schema)), `${name}: an error response with the error shape`)
    for (const [status, r] of errors) {
      const schema = r.content?.['application/json']?.schema as Json | undefined
      t.ok(schema, `${name} ${status}: a schema`)
      // 503 of the health routes is their own body (the dependency state); every other error is the error body
      if (!(path.startsWith('/health') && status === '503')) t.ok(isErrorShape(schema), `${name} ${status}: the error shape`)
    }
  }
})

t.test('request schemas: path parameters, queries and bodies', async (t) => {
  // What the routes declare besides their path parameters (see src/routes/).
  const declared: Record<string, { query?: Record<string, boolean>, body?: boolean }> = {
    'GET /recommend/{id}': { query: { limit: false } },
    'GET /batch-recommend': { query: { user_ids: true, limit: false } },
    'POST /batch-recommend': { body: true },
    'POST /invalidate-cache': { body: true },
    'POST /events': { body: true }
  }
  for (const { path, method, op } of operations) {
    const name = `${method} ${path}`
    const params = (op.parameters ?? []) as Json[]
    for (const p of params) t.type(p.schema, 'object', `${name}: parameter ${p.in} ${p.name} has a schema`)
    for (const [, id] of path.matchAll(/\{(\w+)\}/g)) {
      t.match(params.find((p) => p.in === 'path' && p.name === id), { required: true, schema: { type: 'string', pattern: String } }, `${name}: path parameter ${id}`)
    }
    const want = declared[name] ?? {}
    const query = params.filter((p) => p.in === 'query')
    t.same(Object.fromEntries(query.map((p) => [p.name, p.required])), want.query ?? {}, `${name}: query parameters`)
    if (want.body) {
      t.match(op.requestBody, { required: true, content: { 'application/json': { schema: Object } } }, `${name}: a JSON body`)
      t.match(deref(op.requestBody.content['application/json'].schema), { type: /^(object|array)$/ }, `${name}: the body's schema`)
    } else {
      t.equal(op.requestBody, undefined, `${name}: no body`)
    }
  }
  const events = doc.paths['/events'].post.requestBody.content['application/json'].schema
  t.match(events.items, { oneOf: [{ $ref: '#/components/schemas/SearchEvent' }, { $ref: '#/components/schemas/PurchaseEvent' }] }, 'POST /events documents its entries')
})

t.test('the admin operations, and only them, need the bearer token; the public ones take an optional API key', async (t) => {
  const schemes = doc.components?.securitySchemes as Record<string, Json> | undefined
  const bearer = Object.entries(schemes ?? {}).filter(([, s]) => s.type === 'http' && s.scheme === 'bearer').map(([k]) => k)
  t.equal(bearer.length, 1, 'a bearer security scheme')
  const apiKey = Object.entries(schemes ?? {}).filter(([, s]) => s.type === 'apiKey' && s.in === 'header' && s.name === 'X-API-Key').map(([k]) => k)
  t.equal(apiKey.length, 1, 'an X-API-Key security scheme')
  t.equal(doc.security, undefined, 'no global security')
  let admin = 0
  for (const r of routes) {
    const op = doc.paths[toOpenapiPath(r.url)][r.method.toLowerCase()] as Json
    const name = `${r.method} ${r.url}`
    const anonymous = await app.inject({ method: r.method as 'GET' | 'POST', url: concrete(r.url), ...(r.method === 'POST' ? { payload: {} } : {}) })
    if (anonymous.statusCode === 401) {
      admin++
      t.same(op.security, [{ [bearer[0] as string]: [] }], `${name} answers 401 without the token: it has the bearer security`)
      t.ok(op.tags.includes('admin'), `${name}: tag admin`)
      t.ok(isErrorShape(op.responses['401']?.content?.['application/json']?.schema), `${name}: documents its 401`)
    } else if (op.tags.includes('recommendations')) {
      // Open to anonymous clients ({}), or with an X-API-Key that picks the rate-limit tier.
      t.same(op.security, [{}, { [apiKey[0] as string]: [] }], `${name}: anonymous or with an API key`)
      t.ok(isErrorShape(op.responses['401']?.content?.['application/json']?.schema), `${name}: documents the 401 of a bad key`)
    } else {
      t.equal(op.security, undefined, `${name} is open: no security`)
    }
  }
  t.equal(admin, 3, 'POST /invalidate-cache, /invalidate-cache/:id and /events are admin')
})

t.test('the real answers match the documented schemas', async (t) => {
  const ajv = new Ajv({ strict: false, validateFormats: false, allErrors: true })
  ajv.addSchema(doc, 'openapi.json', undefined, false)
  const pointer = (...parts: string[]) => parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/')
  const check = async (req: { method?: 'GET' | 'POST', url: string, payload?: unknown, headers?: Record<string, string> }, path: string, status: number) => {
    const answer = await app.inject({ method: req.method ?? 'GET', url: req.url, headers: req.headers, ...(req.payload !== undefined ? { payload: req.payload as object } : {}) })
    const method = (req.method ?? 'GET').toLowerCase()
    t.equal(answer.statusCode, status, `${method} ${req.url}`)
    const validate = ajv.compile({ $ref: `openapi.json#/${pointer('paths', path, method, 'responses', String(status), 'content', 'application/json', 'schema')}` })
    t.ok(validate(answer.json()), `${method} ${req.url} ${status} is what ${path} documents`, { errors: validate.errors, body: answer.json() })
  }
  await check({ url: '/recommend/1' }, '/recommend/{id}', 200)
  await check({ url: '/recommend/1?limit=2' }, '/recommend/{id}', 200)
  await check({ url: `/recommend/${MISSING_USER}` }, '/recommend/{id}', 404)
  await check({ url: '/recommend/abc' }, '/recommend/{id}', 400)
  await check({ url: `/batch-recommend?user_ids=1,2,${MISSING_USER}` }, '/batch-recommend', 200)
  await check({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [1, '2'] } }, '/batch-recommend', 200)
  await check({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [] } }, '/batch-recommend', 400)
  await check({ method: 'POST', url: '/batch-recommend', headers: { 'content-type': 'application/xml' }, payload: '<ids/>' }, '/batch-recommend', 415)
  await check({ method: 'POST', url: '/batch-recommend', payload: { user_ids: [1], pad: 'x'.repeat(2_000_000) } }, '/batch-recommend', 413)
  await check({ method: 'POST', url: '/invalidate-cache/1' }, '/invalidate-cache/{id}', 401)
  await check({ method: 'POST', url: '/invalidate-cache/1', headers: adminHeaders }, '/invalidate-cache/{id}', 200)
  await check({ method: 'POST', url: '/invalidate-cache', headers: adminHeaders, payload: { user_ids: [1, 2] } }, '/invalidate-cache', 200)
  await check({ method: 'POST', url: '/events', headers: adminHeaders, payload: [{ type: 'search', user_id: 0, category: '' }] }, '/events', 400)
  await check({ method: 'POST', url: '/events', headers: adminHeaders, payload: [{ type: 'search', user_id: 3, category: 'books' }] }, '/events', 201)
  await check({ url: '/health/live' }, '/health/live', 200)
  await check({ url: '/health/ready' }, '/health/ready', 200)
  await check({ url: '/health' }, '/health', 200)
  const metrics = await app.inject('/metrics')
  t.equal(metrics.statusCode, 200)
  t.match(metrics.headers['content-type'], /^text\/plain/)
  t.ok(doc.paths['/metrics'].get.responses['200'].content['text/plain'], 'GET /metrics is documented as text')
})

t.test('GET /docs serves the Swagger UI', async (t) => {
  let page = await app.inject('/docs')
  for (let hops = 0; page.statusCode >= 300 && page.statusCode < 400 && hops < 3; hops++) {
    page = await app.inject(new URL(String(page.headers.location), 'http://localhost/docs').pathname)
  }
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /swagger/i)
})
