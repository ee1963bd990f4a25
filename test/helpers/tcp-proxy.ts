/**
 * A TCP proxy for tests: forwards every connection to a target port, both ways, and can stop
 * forwarding without closing anything, which is how a half-open connection looks to a client (no
 * error, no data, no FIN): a network partition, or a socket left over from a failover.
 *
 * - `pause()`: nothing moves in either direction on any connection, existing or new, and no socket
 *   is closed: data is held (in the sockets' buffers, in order), and an end or a close from one side
 *   is not passed on to the other. New connections are accepted and connected upstream, but held
 *   the same way.
 * - `resume()`: forwarding starts again; what was held back flows on, and a side that closed
 *   meanwhile takes its peer with it.
 * - `close()`: stops listening and destroys every connection.
 */
import net from 'node:net'

export interface TcpProxy {
  /** the port the proxy listens on (127.0.0.1) */
  readonly port: number
  /** connections currently open through the proxy */
  readonly connections: number
  readonly paused: boolean
  pause(): void
  resume(): void
  close(): Promise<void>
}

interface Pair { client: net.Socket, upstream: net.Socket, closed: boolean }

export async function startTcpProxy (target: { port: number, host?: string }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  let paused = false

  const destroy = (p: Pair) => {
    pairs.delete(p)
    p.client.destroy()
    p.upstream.destroy()
  }
  const flow = (p: Pair) => {
    if (p.closed) return destroy(p)
    p.client.pipe(p.upstream)
    p.upstream.pipe(p.client)
  }
  const hold = (p: Pair) => {
    p.client.unpipe(p.upstream)
    p.upstream.unpipe(p.client)
    p.client.pause()
    p.upstream.pause()
  }

  // allowHalfOpen: an end from one side is passed on by pipe() while forwarding, and not at all
  // while paused.
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    const upstream = net.connect({ port: target.port, host, allowHalfOpen: true })
    const pair: Pair = { client, upstream, closed: false }
    pairs.add(pair)
    // One side went away: the other follows, but not while paused (a partition passes nothing on,
    // not even a close); then it follows on resume.
    const gone = () => {
      pair.closed = true
      if (!paused) destroy(pair)
    }
    client.on('error', gone).on('close', gone)
    upstream.on('error', gone).on('close', gone)
    if (paused) hold(pair)
    else flow(pair)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as net.AddressInfo).port

  return {
    port,
    get connections () { return pairs.size },
    get paused () { return paused },
    pause () {
      if (paused) return
      paused = true
      for (const p of pairs) hold(p)
    },
    resume () {
      if (!paused) return
      paused = false
      for (const p of [...pairs]) flow(p)
    },
    async close () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const p of [...pairs]) destroy(p)
      await closed
    }
  }
}
