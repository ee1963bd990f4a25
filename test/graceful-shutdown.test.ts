// A replica going away (scale-down, rolling restart) must not fail a request nginx already sent it:
// nginx retries connection errors for GET but never a 503. So while draining, responses carry
// Connection: close (the proxy's kept-alive connections wind down), and a request that reaches the
// closing server on a kept-alive connection is served, not answered with Fastify's 503.
import t from 'tap'
import { Client } from 'undici'
import { holdLoads, withApp } from './helpers/app.ts'

t.test('draining: still served, with Connection: close', async (t) => {
  const { app } = await withApp(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new Client(address)
  t.teardown(() => client.close())
  const before = await client.request({ method: 'GET', path: '/recommend/1' })
  await before.body.text()
  t.not(before.headers.connection, 'close', 'kept alive before')
  app.shuttingDown = true
  const during = await client.request({ method: 'GET', path: '/recommend/1' })
  await during.body.text()
  t.equal(during.statusCode, 200, 'served while draining')
  t.equal(during.headers.connection, 'close', 'and the connection is closed after the response')
})

t.test('closing: a request pipelined on a kept-alive connection is served, not a 503', async (t) => {
  const { app } = await withApp(t)
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  // Two requests on one connection: the first held in MySQL until the server is closing.
  const client = new Client(address, { pipelining: 2 })
  t.teardown(() => client.close())
  const warm = await client.request({ method: 'GET', path: '/health/live' })
  await warm.body.text()
  const loads = holdLoads(app)
  loads.hold()
  const first = client.request({ method: 'GET', path: '/recommend/11' })
  while (!loads.read) await new Promise((resolve) => setTimeout(resolve, 10))
  const second = client.request({ method: 'GET', path: '/recommend/12' })
  await new Promise((resolve) => setTimeout(resolve, 50)) // the second is on the wire, queued behind the first
  const closing = app.close()
  await new Promise((resolve) => setTimeout(resolve, 50))
  loads.release()
  const [a, b] = await Promise.all([first, second])
  const bodies = await Promise.all([a.body.text(), b.body.text()])
  t.equal(a.statusCode, 200, 'the request in flight finishes')
  t.equal(b.statusCode, 200, `the pipelined one is served too (${bodies[1].slice(0, 80)})`)
  t.equal(b.headers.connection, 'close', 'with Connection: close')
  await closing
})
