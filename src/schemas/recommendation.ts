import { Type, type Static } from 'typebox'
import { LimitJson, LimitString, userIdArray, userIdCsv } from './common.ts'

// The error, id and limit schemas live in ./common.ts. This module imports only TypeBox and
// framework-free modules: workers/ takes the answer's schema and type from here.

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

/** Batch schemas are built from the configured bound, so an oversized list is refused by the
 *  schema before any id is looked at. */
export const batchQuery = (maxIds: number) => Type.Object({
  user_ids: userIdCsv(maxIds),
  limit: Type.Optional(LimitString)
}, { additionalProperties: false })

export const batchBody = (maxIds: number) => Type.Object({
  user_ids: userIdArray(maxIds),
  limit: Type.Optional(LimitJson)
}, { additionalProperties: false })

export const BatchResponse = Type.Object({
  successful: Type.Integer(),
  failed: Type.Integer(),
  results: Type.Array(RecommendationSchema),
  errors: Type.Array(Type.Object({ user_id: Type.Integer(), status: Type.Integer(), error: Type.String() }))
})

export const INVALIDATE_MAX_IDS = 10_000
export const InvalidateBody = Type.Object({
  user_ids: userIdArray(INVALIDATE_MAX_IDS)
}, { additionalProperties: false })

/** What an invalidation answers (POST /invalidate-cache, and POST /events after storing): the users
 *  dropped, and how many replicas acknowledged. */
export const InvalidateResponse = Type.Object({
  invalidated: Type.Array(Type.Integer()),
  replicas: Type.Object({ acked: Type.Integer(), expected: Type.Integer() })
})
