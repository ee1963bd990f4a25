// How the stack writes durations, URLs, paths and its replicas' log lines.

import { relative } from 'node:path'

export const secs = (ms: number) => ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`

export { redactUrl } from '../../src/lib/redact-url.ts'

/** `p` relative to the working directory when it is below it, otherwise as it is. */
export const rel = (p: string) => {
  const r = relative(process.cwd(), p)
  return r === '' ? '.' : r.startsWith('..') ? p : r
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }

/** A pino JSON line shortened to `LEVEL msg {rest}`; other lines unchanged. */
export function compactPino (line: string): string {
  if (!line.startsWith('{')) return line
  try {
    const o = JSON.parse(line) as Record<string, unknown>
    const { level, time: _t, pid: _p, hostname: _h, msg, reqId, req, res, responseTime, ...rest } = o
    if (typeof level !== 'number') return line
    // fastify's request lines: `GET /recommend/1 [1a2b3c4d]`, `200 3.1ms [1a2b3c4d]`
    const r = req as { method?: string, url?: string } | undefined
    const s = res as { statusCode?: number } | undefined
    const parts = [
      ...(r?.method ? [`${r.method} ${r.url ?? ''}`] : []),
      ...(s?.statusCode ? [String(s.statusCode)] : []),
      ...(typeof responseTime === 'number' ? [`${responseTime.toFixed(1)}ms`] : []),
      ...(typeof reqId === 'string' ? [`[${reqId.slice(0, 8)}]`] : [])
    ]
    if (parts.length) rest.__ = parts.join(' ')
    const { __: head, ...others } = rest
    const extra = Object.keys(others).length ? ` ${JSON.stringify(others)}` : ''
    return `${LEVELS[level] ?? level} ${String(msg ?? '')}${head ? ` ${String(head)}` : ''}${extra.length > 600 ? `${extra.slice(0, 600)}…` : extra}`
  } catch {
    return line
  }
}
