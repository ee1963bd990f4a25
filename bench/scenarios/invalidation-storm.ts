// `invalidation-storm` (issue 12, scenario 8): warm-l1's load on 3 replicas (10,000 users cached
// in each LRU) while every 2 s one replica, in turn, is asked to invalidate all 10,000 users
// (POST /invalidate-cache, the admin route): it drops its own, bumps the generations in Redis,
// broadcasts, and answers once every replica has acknowledged. Reported: each replica's event-loop
// delay p99 under the storm (from its /metrics), the invalidations' latency and acks, and what the
// reads then cost (the tier mix: invalidated users are MISSes until refilled).
import { request } from 'undici'
import type { Alongside } from '../report/types.ts'
import { appOnDataset, prewarm, single, uniformIds } from './seeded.ts'
import type { Scenario } from './types.ts'
import { L1_FOR_10K } from './warm-l1.ts'

const USERS = 10_000
const REPLICAS = 3
const EVERY_MS = 2000
/** a bound on the loop whatever the duration */
const MAX_STORMS = 200

export const invalidationStorm: Scenario = {
  name: 'invalidation-storm',
  description: `warm-l1 on ${REPLICAS} replicas while one of them invalidates all ${USERS.toLocaleString('en-US')} users every ${EVERY_MS / 1000} s`,
  reference: 'baseline',
  async setup (ctx) {
    const app = await appOnDataset(ctx, { name: 'invalidation-storm', users: USERS, replicas: Math.max(REPLICAS, ctx.opts.replicas), env: L1_FOR_10K })
    await prewarm(ctx, app.urls, USERS)
    const body = JSON.stringify({ user_ids: Array.from({ length: USERS }, (_, i) => i + 1) })
    async function during (signal: AbortSignal): Promise<Alongside> {
      const latencies: number[] = []
      let failed = 0
      let partial = 0
      let sent = 0
      const notes: string[] = []
      while (!signal.aborted && sent < MAX_STORMS) {
        const url = app.urls[sent % app.urls.length]!
        sent++
        const t = performance.now()
        try {
          const res = await request(`${url}/invalidate-cache`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.adminToken}` },
            body,
            headersTimeout: 10_000,
            bodyTimeout: 10_000
          })
          const answer = await res.body.json() as { replicas?: { acked: number, expected: number } }
          if (res.statusCode !== 200) {
            failed++
            if (notes.length < 3) notes.push(`an invalidation answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 200)}`)
          } else {
            latencies.push(performance.now() - t)
            if (answer.replicas === undefined || answer.replicas.acked < answer.replicas.expected || answer.replicas.expected < app.urls.length) partial++
          }
        } catch (err) {
          failed++
          if (notes.length < 3) notes.push(`an invalidation failed: ${(err as Error).message}`)
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, EVERY_MS)
          signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
        })
      }
      latencies.sort((a, b) => a - b)
      const q = (p: number) => latencies.length === 0 ? NaN : latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]!
      return {
        title: `invalidations of ${USERS.toLocaleString('en-US')} users`,
        figures: { sent, 'answered 200': latencies.length, failed, 'not acked by all': partial, 'p50 ms': q(0.5), 'max ms': latencies.at(-1) ?? NaN },
        notes
      }
    }
    return {
      urls: app.urls,
      metricsUrls: app.urls,
      paths: single(uniformIds(USERS, 6)),
      samplePath: '/recommend/1',
      during,
      notes: [`${REPLICAS} replicas, L1_MAX_BYTES=256 MiB as warm-l1; an invalidation every ${EVERY_MS / 1000} s during each measured run, sent to each replica in turn`],
      teardown: app.teardown
    }
  }
}
