import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { ErrorSchema } from '../schemas/common.ts'
import { BatchResponse, InvalidateResponse, ItemSchema, RecommendationSchema } from '../schemas/recommendation.ts'
import {
  EntryErrorSchema, EventsBody, EventsResponse, InvalidEventsErrorSchema, MAX_EVENTS_PER_BATCH,
  PurchaseEventSchema, SearchEventSchema
} from '../schemas/events.ts'

/** OpenAPI 3 document of the service, built by @fastify/swagger from the route schemas (so it
 *  cannot drift from what Ajv validates and fast-json-stringify sends), served with the Swagger UI
 *  at /docs and as JSON at /docs/json. Registered before the routes: @fastify/swagger collects them
 *  with an onRoute hook.
 *
 *  The route schemas carry no `$id` of their own (but ErrorSchema's) and are not added with
 *  addSchema, so Fastify validation and serialization are exactly as without this plugin. The
 *  shared ones become components here instead: the `transform` below swaps every occurrence of a
 *  schema of COMPONENTS (found by identity) for a `$ref` to it, in the document only. */

/** Name of the security scheme of the admin routes: `Authorization: Bearer <ADMIN_TOKEN>`. */
export const BEARER_AUTH = 'bearerAuth'
/** `security` of an admin route's schema (see lib/admin-auth.ts). */
export const adminSecurity = [{ [BEARER_AUTH]: [] as string[] }]
/** Name of the security scheme of the public routes: an optional `X-API-Key` that picks the
 *  client's rate-limit tier (plugins/rate-limit.ts); without one the client is its IP. */
export const API_KEY_AUTH = 'apiKey'
/** `security` of a public route: anonymous, or with an API key. */
export const publicSecurity: Array<Record<string, string[]>> = [{}, { [API_KEY_AUTH]: [] }]

type Json = Record<string, unknown>

// The body of POST /events is taken as an array of anything (entries are checked one by one, see
// lib/event-writer.ts); the document says what an entry must be.
const EventsBodyDoc = {
  type: 'array',
  minItems: 1,
  maxItems: MAX_EVENTS_PER_BATCH,
  description: (EventsBody as { description?: string }).description,
  items: { oneOf: [SearchEventSchema, PurchaseEventSchema] }
}

const COMPONENTS: Record<string, object> = {
  Error: ErrorSchema,
  Recommendation: RecommendationSchema,
  Item: ItemSchema,
  BatchResponse,
  InvalidateResponse,
  EventsResponse,
  SearchEvent: SearchEventSchema,
  PurchaseEvent: PurchaseEventSchema,
  InvalidEventsError: InvalidEventsErrorSchema,
  EntryError: EntryErrorSchema
}
const componentName = new Map<object, string>(Object.entries(COMPONENTS).map(([name, s]) => [s, name]))

const REASONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  400: 'Bad Request',
  401: 'Unauthorized (missing or invalid bearer token)',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/** A copy of `schema` (plain JSON) with every component but `self` replaced by a `$ref`. */
function withRefs (schema: unknown, self?: object): unknown {
  if (schema === null || typeof schema !== 'object') return schema
  const name = schema !== self ? componentName.get(schema) : undefined
  if (name !== undefined) return { $ref: `#/components/schemas/${name}` }
  if (Array.isArray(schema)) return schema.map((s) => withRefs(s))
  if (schema === EventsBody) return withRefs(EventsBodyDoc)
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, withRefs(v)]))
}

/** The route's schema as documented: components referenced, each response described. */
function documented (schema: Json): Json {
  const out: Json = { ...schema }
  if (schema.body !== undefined) out.body = withRefs(schema.body)
  const response = schema.response as Record<string, Json> | undefined
  if (response !== undefined) {
    out.response = Object.fromEntries(Object.entries(response).map(([status, s]) => {
      const doc = withRefs(s) as Json
      const description = s.description ?? REASONS[status] ?? 'Response'
      // A `$ref` keeps no sibling: @fastify/swagger takes the description of the raw schema. An
      // inline schema gets it in 'x-response-description', which it leaves out of the schema.
      return [status, doc.$ref !== undefined ? { ...doc, description } : { ...doc, 'x-response-description': description }]
    }))
  }
  return out
}

/** GET /metrics is declared by the metrics plugin, registered before this one: its route is not seen
 *  by @fastify/swagger's onRoute hook, so it is described here (only when the collected routes
 *  lack it, so a schema on the route itself wins if the order ever changes). */
const metricsOperation = {
  summary: 'Prometheus metrics (text exposition format)',
  tags: ['operations'],
  responses: {
    200: { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } },
    429: { description: REASONS[429], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
    500: { description: REASONS[500], content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }
  }
}

/** This service's package.json: from src/plugins/ in the repository, dist/src/plugins/ in a build. */
function packageInfo (): { name: string, version: string, description?: string } {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string, version?: string, description?: string }
      if (pkg.name !== undefined) return { name: pkg.name, version: pkg.version ?? '0.0.0', description: pkg.description }
    }
    const up = dirname(dir)
    if (up === dir) return { name: 'recsvc', version: '0.0.0' }
    dir = up
  }
}

export default fp(async function docsPlugin (app) {
  const pkg = packageInfo()
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: pkg.name, version: pkg.version, ...(pkg.description ? { description: pkg.description } : {}) },
      // No `servers`: the document is relative to wherever it is served from (a replica, nginx).
      tags: [
        { name: 'recommendations', description: 'Personalised recommendations' },
        { name: 'admin', description: 'Admin endpoints: `Authorization: Bearer <ADMIN_TOKEN>`' },
        { name: 'operations', description: 'Health checks and metrics' }
      ],
      components: {
        securitySchemes: {
          [BEARER_AUTH]: { type: 'http', scheme: 'bearer', description: 'the ADMIN_TOKEN of the service' },
          [API_KEY_AUTH]: { type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'an API key (npm run keys -- create --tier premium): its tier sets the rate limit; unknown, revoked or malformed keys get 401' }
        },
        schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, s]) => [name, withRefs(s, s) as Json]))
      }
    },
    transform: ({ schema, url }) => ({ schema: (schema ? documented(schema as Json) : schema) as typeof schema, url }),
    transformObject: (doc) => {
      if (!('openapiObject' in doc)) return doc.swaggerObject
      const paths = (doc.openapiObject.paths ??= {}) as Record<string, Json>
      if (app.hasRoute({ method: 'GET', url: '/metrics' }) && (paths['/metrics'] as Json | undefined)?.get === undefined) {
        paths['/metrics'] = { ...paths['/metrics'], get: metricsOperation }
      }
      return doc.openapiObject
    }
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
}, { name: 'docs' })
