import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { buildApp } from './app.ts'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message)
    process.exit(78) // EX_CONFIG
  }
  throw err
}

const app = await buildApp(config)

// On SIGTERM: fail readiness first so the balancer stops sending new work, keep serving during the
// drain delay, then stop accepting, let in-flight requests finish, and close the pools last
// (plugins' onClose, in reverse order).
closeWithGrace({ delay: config.SHUTDOWN_DRAIN_DELAY_MS + config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal, drainMs: config.SHUTDOWN_DRAIN_DELAY_MS }, 'shutting down: readiness now fails')
  app.shuttingDown = true
  if (!err && config.SHUTDOWN_DRAIN_DELAY_MS > 0) await new Promise((resolve) => setTimeout(resolve, config.SHUTDOWN_DRAIN_DELAY_MS))
  await app.close()
})

// A deep accept queue: nginx opens its upstream connections in a burst when 1000 clients arrive
// at once, and a SYN dropped from a full queue (Node's default is 511) is resent only after 1 s.
await app.listen({ port: config.PORT, host: config.HOST, backlog: 4096 })
