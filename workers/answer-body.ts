import fastJson from 'fast-json-stringify'
import { ItemSchema, RecommendationSchema } from '../src/schemas/recommendation.ts'
import type { RecommendationBody } from './types.ts'

/** A serialized answer that can be cut to any `limit` without JSON work: `items` is the JSON of
 *  every item joined by commas and `ends[i]` where item i ends in it, so the body for limit L is
 *  `head + items.slice(0, ends[L - 1]) + tail`. A user is scored once with MAX_LIMIT items and
 *  every limit is served from that one result (the ranking is a total order, so the top L of the
 *  top MAX_LIMIT are the top L). An error body is all head. */
export interface AnswerBody { head: string, items: string, ends: number[], tail: string }

const serializeBody = fastJson(RecommendationSchema as object) as (b: RecommendationBody) => string
const serializeItem = fastJson(ItemSchema as object) as (i: RecommendationBody['recommendations']['items'][number]) => string
const ITEMS_OPEN = '"items":['

export function toAnswerBody (body: RecommendationBody): AnswerBody {
  const parts = body.recommendations.items.map(serializeItem)
  const ends: number[] = []
  let at = -1
  for (const p of parts) ends.push(at += p.length + 1)
  const s = serializeBody({ ...body, recommendations: { ...body.recommendations, items: [] } })
  // Only metadata follows the items, and none of its strings can contain this text.
  const cut = s.lastIndexOf(`${ITEMS_OPEN}]`) + ITEMS_OPEN.length
  return { head: s.slice(0, cut), items: parts.join(','), ends, tail: s.slice(cut) }
}

export function errorAnswerBody (json: string): AnswerBody { return { head: json, items: '', ends: [], tail: '' } }

export function bodyFor (b: AnswerBody, limit: number): string {
  const n = b.ends.length
  if (n === 0) return b.head + b.tail
  return b.head + (limit >= n ? b.items : b.items.slice(0, b.ends[limit - 1])) + b.tail
}

export function bodyBytes (b: AnswerBody): number {
  return b.head.length + b.tail.length + b.items.length + 8 * b.ends.length
}
