// Writes .env.example and the README's configuration table, both from src/config.ts, so the three
// never disagree. Usage: npm run config-docs
import { readFileSync, writeFileSync } from 'node:fs'
import { describeConfig } from '../src/config.ts'

const dynamic = new Set(['REPLICA_ID', 'SCORER_THREADS'])
const rows = describeConfig()
const env = ['# recsvc configuration. Every variable is optional; the value shown is the default.', '']
for (const r of rows) {
  env.push(`# ${r.description}`)
  env.push(dynamic.has(r.name) ? `# ${r.name}=` : `${r.name}=${String(r.default)}`)
}
writeFileSync(new URL('../.env.example', import.meta.url), env.join('\n') + '\n')

const table = ['| variable | default | meaning |', '| --- | --- | --- |']
for (const r of rows) table.push(`| \`${r.name}\` | ${dynamic.has(r.name) ? '(computed)' : `\`${String(r.default)}\``} | ${r.description} |`)
const readmeUrl = new URL('../README.md', import.meta.url)
const readme = readFileSync(readmeUrl, 'utf8')
  .replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${table.join('\n')}\n<!-- config:end -->`)
writeFileSync(readmeUrl, readme)
