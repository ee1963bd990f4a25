import { Type, type Static } from 'typebox'
import { MAX_LIMIT } from '../lib/limits.ts'

export const ErrorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
  request_id: Type.Optional(Type.String())
}, { $id: 'Error' })

export const ItemSchema = Type.Object({
  item_id: Type.Integer(),
  category: Type.String(),
  score: Type.Number(),
  reason: Type.String()
})

export const RecommendationSchema = Type.Object({
  user_id: Type.Integer(),
  recommendations: Type.Object({
    weightage: Type.Number(),
    search_weight: Type.Number(),
    purchase_weight: Type.Number(),
    recommended_categories: Type.Array(Type.String()),
    explore_categories: Type.Array(Type.String()),
    category_scores: Type.Array(Type.Object({ category: Type.String(), score: Type.Number() })),
    items: Type.Array(ItemSchema)
  }),
  metadata: Type.Object({
    search_count: Type.Integer(),
    purchase_count: Type.Integer(),
    cold_start: Type.Boolean(),
    model_version: Type.String(),
    generated_at: Type.String(),
    /** true on a FALLBACK answer: popular items, not personalised (the service was overloaded or
     *  MySQL failed, and nothing was cached for this user) */
    degraded: Type.Boolean()
  })
})
export type Recommendation = Static<typeof RecommendationSchema>

// Ids arrive as strings and are parsed strictly in code (see lib/user-id.ts); the schema only
// bounds their shape so garbage is rejected before the handler runs.
export const UserIdParams = Type.Object({ id: Type.String({ maxLength: 32 }) })
export const LimitQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT }))
}, { additionalProperties: false })

/** Batch schemas are built from the configured bound, so an oversized list is refused by the
 *  schema before any id is looked at. */
export const batchQuery = (maxIds: number) => Type.Object({
  user_ids: Type.String({ minLength: 1, maxLength: 11 * maxIds }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT }))
}, { additionalProperties: false })

export const batchBody = (maxIds: number) => Type.Object({
  user_ids: Type.Array(Type.Union([Type.Integer(), Type.String({ maxLength: 32 })]), { minItems: 1, maxItems: maxIds }),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIMIT }))
}, { additionalProperties: false })

export const BatchResponse = Type.Object({
  successful: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(RecommendationSchema),
  errors: Type.Array(Type.Object({ user_id: Type.Integer(), status: Type.Integer(), error: Type.String() }))
})

export const InvalidateBody = Type.Object({
  user_ids: Type.Array(Type.Union([Type.Integer(), Type.String({ maxLength: 32 })]), { minItems: 1, maxItems: 10_000 })
}, { additionalProperties: false })
