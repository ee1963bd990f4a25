// The references a scenario is divided by, measured in the same run under the same load settings.
// `baseline`: bench/baseline-server.ts with BASELINE_BODY = the scenario's sample answer.
// `store-ceiling`: bench/store-ceiling-server.ts on the run's MySQL (for the cold scenario to come).
import { join } from 'node:path'
import type { BenchContext, ReferenceKind } from '../scenarios/types.ts'
import { startNodeServer, type NodeServer } from './procs.ts'

export interface StartedReference { label: string, servers: NodeServer[], stop: () => Promise<void> }

export async function startReference (kind: ReferenceKind, ctx: BenchContext, sampleBody: string, count: number, mysqlUrl?: string): Promise<StartedReference> {
  const servers: NodeServer[] = []
  const stop = async () => { await Promise.all(servers.map((s) => s.stop())) }
  try {
    for (let i = 0; i < count; i++) {
      if (kind === 'baseline') {
        servers.push(await startNodeServer({
          name: `baseline ${i + 1}`,
          script: 'bench/baseline-server.ts',
          env: { BASELINE_BODY: sampleBody },
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
  return { label, servers, stop }
}
