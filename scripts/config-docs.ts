// Writes .env.example and prints the README's configuration table, both from src/config.ts, so the
// three never disagree. Usage: npm run config-docs
import { writeFileSync } from 'node:fs'
import { describeConfig } from '../src/config.ts'

const dynamic = new Set(['REPLICA_ID', 'SCORER_THREADS'])
const rows = describeConfig()
const env = ['# recsvc configuration. Every variable is optional; the value shown is the default.', '']
for (const r of rows) {
  env.push(`# ${r.description}`)
  env.push(dynamic.has(r.name) ? `# ${r.name}=` : `${r.name}=${String(r.default)}`)
}
writeFileSync(new URL('../.env.example', import.meta.url), env.join('\n') + '\n')

console.log('| variable | default | meaning |\n| --- | --- | --- |')
for (const r of rows) console.log(`| \`${r.name}\` | ${dynamic.has(r.name) ? '(computed)' : `\`${String(r.default)}\``} | ${r.description} |`)
