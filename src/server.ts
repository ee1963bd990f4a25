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

// On SIGTERM: fail readiness first so the balancer stops sending work, let in-flight requests
// finish, then close the pools (plugins' onClose, in reverse order).
closeWithGrace({ delay: config.SHUTDOWN_GRACE_MS }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'shutting down')
  app.shuttingDown = true
  await app.close()
})

await app.listen({ port: config.PORT, host: config.HOST })
