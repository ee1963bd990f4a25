// Free TCP ports on 127.0.0.1, for every server a test, the stack, a benchmark or a smoke check starts.

import { createServer } from 'node:net'

// Ports handed out by this process and not yet released: bind-0-and-close can return the same port
// twice when the first caller has not bound it yet.
const handedOut = new Set<number>()

export async function portFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/** A port that was free a moment ago and that this process has not handed out before (until released). */
export async function freePort (): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer()
      srv.unref()
      srv.once('error', reject)
      srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
        const addr = srv.address()
        srv.close(() => resolve(typeof addr === 'object' && addr !== null ? addr.port : 0))
      })
    })
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port)
      return port
    }
  }
  throw new Error('could not find a free TCP port on 127.0.0.1')
}

/** The server that held `port` is gone for good: the port may be handed out again. */
export function releasePort (port: number): void {
  handedOut.delete(port)
}

/** `preferred` when it is free, otherwise (or for 0) any free port. */
export async function pickPort (preferred: number): Promise<number> {
  if (preferred > 0 && await portFree(preferred)) return preferred
  return await freePort()
}
