// The references a scenario is divided by, measured in the same run under the same load settings.
// `baseline`: bench/baseline-server.ts serving the scenario's sample answer (BASELINE_BODY_FILE).
// `store-ceiling`: bench/store-ceiling-server.ts on the scenario's MySQL (the cold scenarios).
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BenchContext, ReferenceKind } from '../scenarios/types.ts'
import { startNodeServer, type NodeServer } from './procs.ts'

export interface StartedReference { kind: ReferenceKind, label: string, urls: string[], stop: () => Promise<void> }

let bodies = 0

export async function startReference (kind: ReferenceKind, ctx: BenchContext, sampleBody: string, count: number, mysqlUrl?: string): Promise<StartedReference> {
  const servers: NodeServer[] = []
  const stop = async () => { await Promise.all(servers.map((s) => s.stop())) }
  const bodyFile = join(ctx.logDir, `baseline-body-${++bodies}.json`)
  if (kind === 'baseline') writeFileSync(bodyFile, sampleBody)
  try {
    for (let i = 0; i < count; i++) {
      if (kind === 'baseline') {
        servers.push(await startNodeServer({
          name: `baseline ${i + 1}`,
          script: 'bench/baseline-server.ts',
          env: { BASELINE_BODY_FILE: bodyFile },
          logFile: join(ctx.logDir, 'baseline.log'),
          probePath: '/recommend/1'
        }))
      } else {
        const db = mysqlUrl ?? (await ctx.services()).mysqlUrl
        servers.push(await startNodeServer({
          name: `store ceiling ${i + 1}`,
          script: 'bench/store-ceiling-server.ts',
          env: { MYSQL_URL: db },
          logFile: join(ctx.logDir, 'store-ceiling.log'),
          probePath: '/recommend/1'
        }))
      }
    }
  } catch (err) {
    await stop()
    throw err
  }
  const label = kind === 'baseline' ? 'baseline (bare Fastify, same bytes)' : 'store ceiling (the miss\'s SQL only)'
  return { kind, label, urls: servers.map((x) => x.url), stop }
}
