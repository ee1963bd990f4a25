// Free TCP ports on 127.0.0.1.

import { createServer } from 'node:net'

export async function portFree (port: number, host = '127.0.0.1'): Promise<boolean> {
  return await new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const addr = srv.address()
      srv.close(() => typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')))
    })
  })
}

/** `preferred` when it is free, otherwise (or for 0) any free port. */
export async function pickPort (preferred: number): Promise<number> {
  if (preferred > 0 && await portFree(preferred)) return preferred
  return await freePort()
}
