import fastJson from 'fast-json-stringify'
import { ItemSchema, RecommendationSchema } from '../schemas/recommendation.ts'
import type { RecommendationBody } from '../../workers/types.ts'

/** A serialized answer that can be cut to any `limit` without JSON work: the body for limit L is
 *  `head + items.slice(0, L).join(',') + tail`. A user is scored once with MAX_LIMIT items and every
 *  limit is served from that one result (the ranking is a total order, so the top L of the top
 *  MAX_LIMIT are the top L). An error body is all head. */
export interface AnswerBody { head: string, items: string[], tail: string }

const serializeBody = fastJson(RecommendationSchema as object) as (b: RecommendationBody) => string
const serializeItem = fastJson(ItemSchema as object) as (i: RecommendationBody['recommendations']['items'][number]) => string
const ITEMS_OPEN = '"items":['

export function toAnswerBody (body: RecommendationBody): AnswerBody {
  const items = body.recommendations.items.map(serializeItem)
  const s = serializeBody({ ...body, recommendations: { ...body.recommendations, items: [] } })
  // Only metadata follows the items, and none of its strings can contain this text.
  const at = s.lastIndexOf(`${ITEMS_OPEN}]`) + ITEMS_OPEN.length
  return { head: s.slice(0, at), items, tail: s.slice(at) }
}

export function errorAnswerBody (json: string): AnswerBody { return { head: json, items: [], tail: '' } }

export function bodyFor (b: AnswerBody, limit: number): string {
  if (b.items.length === 0) return b.head + b.tail
  return b.head + (limit >= b.items.length ? b.items : b.items.slice(0, limit)).join(',') + b.tail
}

export function bodyBytes (b: AnswerBody): number {
  let n = b.head.length + b.tail.length
  for (const i of b.items) n += i.length + 1
  return n
}
