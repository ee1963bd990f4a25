// `npm run keys`: API keys of the rate-limit tiers (table api_keys, sql/003_api_keys.sql).
//
//   npm run keys -- create --tier free|premium|enterprise   prints the new key once; only its hash is stored
//   npm run keys -- list                                    id, tier, created, revoked, hash prefix (never a key)
//   npm run keys -- revoke <id>                             replicas refuse it within RATE_LIMIT_KEY_CACHE_TTL_MS
//   [--mysql-url URL]                                       default: $MYSQL_URL, else the service's default
//   node dist/scripts/keys.js ...                           (the same, compiled, in the image)

import { parseArgs } from 'node:util'
import mysql from 'mysql2/promise'
import { configDefault } from '../src/config.ts'
import { createKey, KEY_TIERS, listKeys, revokeKey, type KeyTier } from '../src/lib/api-keys.ts'
import { redactUrl } from '../src/lib/redact-url.ts'
import { isMain } from './lib/is-main.ts'

export const USAGE = `usage: npm run keys -- create --tier ${KEY_TIERS.join('|')} | list | revoke <id>  [--mysql-url URL]`

export interface KeysIo { out: (line: string) => void, err: (line: string) => void, env?: Record<string, string | undefined> }

const defaultIo: KeysIo = { out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`) }

/** Runs one command; returns the exit code (tests call it in-process and capture `io`). */
export async function main (argv = process.argv.slice(2), io: KeysIo = defaultIo): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { tier: { type: 'string' }, 'mysql-url': { type: 'string' }, help: { type: 'boolean', short: 'h' } } })
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  const [command, ...rest] = positionals
  if (values.help) { io.out(USAGE); return 0 }
  if (command === 'create' && (rest.length || !KEY_TIERS.includes(values.tier as KeyTier))) {
    io.err(`create needs --tier ${KEY_TIERS.join('|')}\n${USAGE}`); return 2
  }
  if (command === 'list' && rest.length) { io.err(USAGE); return 2 }
  const id = Number(rest[0])
  if (command === 'revoke' && (rest.length !== 1 || !Number.isInteger(id) || id < 1)) { io.err(`revoke needs one key id\n${USAGE}`); return 2 }
  if (!['create', 'list', 'revoke'].includes(command ?? '')) { io.err(USAGE); return 2 }

  const url = values['mysql-url'] ?? (io.env ?? process.env).MYSQL_URL ?? configDefault('MYSQL_URL')
  let conn
  try {
    conn = await mysql.createConnection({ uri: url, connectTimeout: 10_000, timezone: 'Z' })
  } catch (err) {
    io.err(`MySQL at ${redactUrl(url)} is not reachable: ${(err as Error).message}`)
    return 1
  }
  try {
    if (command === 'create') {
      const created = await createKey(conn, values.tier as KeyTier)
      io.out(`created key ${created.id} (tier ${created.tier}); it is shown only now, store it safely:`)
      io.out(created.key)
    } else if (command === 'list') {
      const rows = await listKeys(conn)
      io.out(['id', 'tier', 'created', 'revoked', 'hash'].join('\t'))
      for (const r of rows) io.out([r.id, r.tier, r.createdAt.toISOString(), r.revokedAt ? r.revokedAt.toISOString() : '-', `${r.hashPrefix}…`].join('\t'))
      io.out(`${rows.length} key(s)`)
    } else {
      const result = await revokeKey(conn, id)
      if (result === 'not found') { io.err(`no key with id ${id}`); return 1 }
      io.out(result === 'revoked'
        ? `key ${id} revoked; replicas refuse it within their key cache TTL (RATE_LIMIT_KEY_CACHE_TTL_MS)`
        : `key ${id} was already revoked`)
    }
    return 0
  } catch (err) {
    const e = err as { code?: string, message: string }
    io.err(e.code === 'ER_NO_SUCH_TABLE' ? `table api_keys does not exist in ${redactUrl(url)}: run npm run migrate first` : `keys ${command} failed: ${e.message}`)
    return 1
  } finally {
    await conn.end().catch(() => {})
  }
}

if (isMain(import.meta.url)) {
  main().then((code) => { process.exitCode = code }, (err: unknown) => {
    process.stderr.write(`keys failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  })
}
