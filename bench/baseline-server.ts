// The baseline: a bare Fastify route serving the same bytes and headers as a cached answer, so the
// tier benchmarks can be reported as ratios of what Fastify itself does on this machine.
import { readFileSync } from 'node:fs'
import Fastify from 'fastify'

// BASELINE_BODY_FILE for bodies past what one environment variable can hold (128 KiB on Linux: a batch of 100).
const file = process.env.BASELINE_BODY_FILE
const body = file !== undefined && file !== '' ? readFileSync(file, 'utf8') : process.env.BASELINE_BODY ?? '{}'
const app = Fastify({ logger: false })
app.get('/recommend/:id', async (_req, reply) => reply
  .header('x-served-by', 'baseline')
  .header('x-cache', 'HIT-L1')
  .header('server-timing', 'total;dur=0.01')
  .header('cache-control', 'max-age=600, stale-while-revalidate=3600, stale-if-error=3600')
  .type('application/json; charset=utf-8')
  .send(body))
await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' })
process.on('SIGTERM', () => { app.close().then(() => process.exit(0)) })
