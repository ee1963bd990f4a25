// `zipf` and `zipf-hash` (issue 12, scenarios 6 and 7): skewed traffic from empty caches through
// the real nginx in front of 6 replicas, at 1000 connections: ids from Zipf s = 1.1 over
// 1,000,000 seeded users (100,000 with --quick), 1 % of the requests writes (POST /events: one
// search event for a user drawn the same way, which drops that user's answers on every replica).
// `zipf` balances with least_conn (the default), `zipf-hash` by a consistent hash of the user id,
// at the same LRU size: with least_conn every replica ends up caching every hot user; with hashing
// each user has one replica, so the six LRUs hold six times as many users.
// Each run starts afresh (new replicas, an unused Redis key prefix, no warm-up). The reference is
// as many baseline servers behind an nginx of the same configuration, serving the sample answer.
import { join } from 'node:path'
import type { Balance } from '../../tools/nginx-config.ts'
import { categoryNames } from '../../scripts/seed/vocabulary.ts'
import { mulberry32 } from '../../scripts/seed/prng.ts'
import type { NextRequest } from '../lib/load.ts'
import { startNginx } from '../lib/nginx.ts'
import { startReference } from '../lib/reference.ts'
import { zipf } from '../zipf.ts'
import { bigDataset, appOnDataset } from './seeded.ts'
import type { BenchContext, Scenario } from './types.ts'

export const ZIPF_S = 1.1
export const ZIPF_REPLICAS = 6
export const ZIPF_CONNECTIONS = 1000
export const WRITE_SHARE = 0.01

/** 99 % GET /recommend/:id, 1 % POST /events, ids from Zipf(n, s), the same sequence every run. */
export function zipfRequests (users: number, adminToken: string, seed: number): () => NextRequest {
  const ids = zipf(users, ZIPF_S, seed)
  const rnd = mulberry32(seed + 1)
  const categories = categoryNames(12).map((c) => c.name)
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` }
  return () => {
    const id = ids()
    if (rnd() >= WRITE_SHARE) return `/recommend/${id}`
    const category = categories[Math.floor(rnd() * categories.length)]!
    return { method: 'POST', path: '/events', headers, body: JSON.stringify([{ type: 'search', user_id: id, category, query: 'bench' }]) }
  }
}

let runNo = 0

function zipfScenario (name: string, balance: Balance): Scenario {
  return {
    name,
    description: `Zipf s = ${ZIPF_S}, 1 % writes, through nginx (${balance === 'hash' ? 'consistent hash of the user id' : 'least_conn'}) to ${ZIPF_REPLICAS} replicas, ${ZIPF_CONNECTIONS} connections, from empty caches`,
    reference: 'baseline',
    fresh: true,
    connections: ZIPF_CONNECTIONS,
    duration: (o) => o.quick ? 6 : 30,
    // The reference (bare routes behind the same nginx) only gives the rate to divide by: 10 s of
    // it is as good as 30, and keeps the full run under 20 minutes.
    referenceDuration: (o) => o.quick ? 6 : 10,
    async startReference (kind, ctx, body) {
      const ref = await startReference(kind, ctx, body, ZIPF_REPLICAS)
      try {
        const nginx = await startNginx({ name: `${name} reference`, upstreams: ref.urls.map((u) => Number(new URL(u).port)), balance, dir: join(ctx.logDir, `${name}-reference-nginx`) })
        return { ...ref, label: `${ZIPF_REPLICAS} × baseline behind nginx (${balance})`, urls: [nginx.url], stop: async () => { await nginx.stop(); await ref.stop() } }
      } catch (err) {
        await ref.stop()
        throw err
      }
    },
    async setup (ctx: BenchContext) {
      const users = bigDataset(ctx.opts)
      const n = ++runNo
      const app = await appOnDataset(ctx, {
        name: `${name}-${n}`,
        users,
        replicas: ZIPF_REPLICAS,
        // what the stack sets for replicas behind nginx (tools/stack/api.ts)
        env: { TRUST_PROXY: '127.0.0.1', SHUTDOWN_DRAIN_DELAY_MS: '500' }
      })
      let nginx
      try {
        nginx = await startNginx({ name, upstreams: app.replicas.map((r) => r.port), balance, dir: join(ctx.logDir, `${name}-nginx-${n}`) })
      } catch (err) {
        await app.teardown()
        throw err
      }
      const front = nginx
      return {
        urls: [front.url],
        metricsUrls: app.urls,
        paths: zipfRequests(users, ctx.adminToken, 11),
        referencePaths: (() => { const ids = zipf(users, ZIPF_S, 11); return () => `/recommend/${ids()}` })(),
        samplePath: '/recommend/1',
        notes: [
          `${users.toLocaleString('en-US')} seeded users${ctx.opts.quick ? ' (--quick; 1,000,000 in the full run)' : ''}; ${ZIPF_REPLICAS} replicas in the default configuration (L1_MAX_BYTES 64 MiB each) behind nginx with ${balance}, per-IP limits off, access log on`,
          'the sample request (user 1) is the one answer cached before the run; the writes are POST /events with the admin token (each drops the user\'s answers on every replica)'
        ],
        teardown: async () => { await front.stop(); await app.teardown() }
      }
    }
  }
}

export const zipfLeastConn = zipfScenario('zipf', 'least_conn')
export const zipfHash = zipfScenario('zipf-hash', 'hash')
