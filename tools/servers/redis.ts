// redis-server as the tests and the stack run it, and the ways to ask whether one answers.

import { createConnection } from 'node:net'
import { Redis } from 'ioredis'

export interface RedisArgs {
  port: number
  dir: string
  pidFile?: string
  /** bounded like production (allkeys-lru) for the stack; unbounded for a test's throwaway server */
  maxmemory?: string
  loglevel?: 'warning' | 'notice'
}

/** A cache: nothing persisted, so a restart starts empty and SHUTDOWN NOSAVE is instant. */
export function redisArgs (o: RedisArgs): string[] {
  return [
    '--port', String(o.port), '--bind', '127.0.0.1', '--dir', o.dir, '--save', '', '--appendonly', 'no',
    '--daemonize', 'no', '--protected-mode', 'no', '--logfile', '',
    ...(o.pidFile !== undefined ? ['--pidfile', o.pidFile] : []),
    ...(o.loglevel !== undefined ? ['--loglevel', o.loglevel] : []),
    ...(o.maxmemory !== undefined ? ['--maxmemory', o.maxmemory, '--maxmemory-policy', 'allkeys-lru'] : [])
  ]
}

/** One command over a plain TCP connection, no client library; resolves with the first reply line
 *  (SHUTDOWN closes the connection without one: resolves with ''). */
export function redisCommand (port: number, args: string[], timeoutMs = 1000, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ port, host })
    let buf = ''
    let settled = false
    const done = (err: Error | null, value?: string): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      if (err) reject(err)
      else resolve(value ?? '')
    }
    const timer = setTimeout(() => done(new Error('redis command timed out')), timeoutMs)
    sock.once('error', (err) => done(err))
    sock.on('data', (d) => {
      buf += d.toString()
      const i = buf.indexOf('\r\n')
      if (i >= 0) done(null, buf.slice(0, i))
    })
    sock.once('close', () => done(null, buf))
    sock.on('connect', () => sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`))
  })
}

/** true on +PONG from 127.0.0.1:port (or host). */
export async function pingRedis (port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return (await redisCommand(port, ['PING'], timeoutMs, host).catch(() => '')) === '+PONG'
}

/** Whether the Redis at a URL (which may carry a password or TLS) answers PING. */
export async function redisAnswers (url: string, timeoutMs = 1500): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false })
  r.on('error', () => {})
  try {
    await r.connect()
    return (await r.ping()) === 'PONG'
  } catch {
    return false
  } finally {
    r.disconnect()
  }
}
