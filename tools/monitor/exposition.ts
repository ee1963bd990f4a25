/**
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough for what
 * prom-client and fastify-metrics serve: `# HELP` / `# TYPE` comments (other comments ignored),
 * samples with optional labels (values with `\\`, `\"` and `\n` escapes, trailing comma allowed),
 * values including `+Inf`, `-Inf` and `NaN`, and an optional timestamp. A malformed line is
 * recorded in `errors` and skipped: one bad line never hides the rest of the scrape.
 */

export type Labels = Record<string, string>

export interface Sample {
  name: string
  labels: Labels
  value: number
  timestampMs?: number
}

export interface Exposition {
  samples: Sample[]
  /** metric family name -> declared type (counter, gauge, histogram, summary, untyped) */
  types: Map<string, string>
  help: Map<string, string>
  /** `line N: reason` for every line that could not be parsed */
  errors: string[]
}

/** A sample value as the format writes it: a float, `+Inf`, `-Inf`, `NaN` (any case for these). */
export function parseValue (text: string): number {
  const t = text.trim()
  const lower = t.toLowerCase()
  if (lower === '+inf' || lower === 'inf') return Infinity
  if (lower === '-inf') return -Infinity
  if (lower === 'nan') return NaN
  if (t === '' || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) throw new Error(`bad value "${text}"`)
  return Number(t)
}

const NAME_START = /[a-zA-Z_:]/
const NAME_CHAR = /[a-zA-Z0-9_:]/
const LABEL_START = /[a-zA-Z_]/
const LABEL_CHAR = /[a-zA-Z0-9_]/

function unescapeHelp (text: string): string {
  return text.replace(/\\(\\|n)/g, (_m, c: string) => (c === 'n' ? '\n' : '\\'))
}

/** Parses one sample line (no comment, not blank). Throws with a reason on a malformed line. */
export function parseSampleLine (line: string): Sample {
  let i = 0
  const n = line.length
  const skipSpace = (): void => { while (i < n && (line[i] === ' ' || line[i] === '\t')) i++ }
  skipSpace()
  const start = i
  if (i >= n || !NAME_START.test(line[i]!)) throw new Error('expected a metric name')
  while (i < n && NAME_CHAR.test(line[i]!)) i++
  const name = line.slice(start, i)
  const labels: Labels = {}
  skipSpace()
  if (line[i] === '{') {
    i++
    for (;;) {
      skipSpace()
      if (line[i] === '}') { i++; break }
      const ls = i
      if (i >= n || !LABEL_START.test(line[i]!)) throw new Error('expected a label name')
      while (i < n && LABEL_CHAR.test(line[i]!)) i++
      const label = line.slice(ls, i)
      skipSpace()
      if (line[i] !== '=') throw new Error(`expected = after label ${label}`)
      i++
      skipSpace()
      if (line[i] !== '"') throw new Error(`expected " to open the value of label ${label}`)
      i++
      let value = ''
      for (;;) {
        if (i >= n) throw new Error(`unterminated value of label ${label}`)
        const c = line[i]!
        if (c === '\\') {
          const e = line[i + 1]
          if (e === 'n') value += '\n'
          else if (e === '\\' || e === '"') value += e
          else if (e === undefined) throw new Error(`unterminated value of label ${label}`)
          else value += '\\' + e // unknown escape: kept as written
          i += 2
        } else if (c === '"') {
          i++
          break
        } else {
          value += c
          i++
        }
      }
      if (Object.hasOwn(labels, label)) throw new Error(`duplicate label ${label}`)
      labels[label] = value
      skipSpace()
      if (line[i] === ',') { i++; continue }
      if (line[i] === '}') { i++; break }
      throw new Error('expected , or } after a label')
    }
  }
  const rest = line.slice(i).trim().split(/[ \t]+/)
  if (rest.length === 0 || rest[0] === '') throw new Error('missing value')
  if (rest.length > 2) throw new Error('unexpected text after the timestamp')
  const value = parseValue(rest[0]!)
  const sample: Sample = { name, labels, value }
  if (rest[1] !== undefined) {
    if (!/^-?\d+$/.test(rest[1])) throw new Error(`bad timestamp "${rest[1]}"`)
    sample.timestampMs = Number(rest[1])
  }
  return sample
}

export function parseExposition (text: string): Exposition {
  const out: Exposition = { samples: [], types: new Map(), help: new Map(), errors: [] }
  const lines = text.split(/\r?\n/)
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!
    const trimmed = line.trim()
    if (trimmed === '') continue
    if (trimmed.startsWith('#')) {
      const m = /^#\s*(HELP|TYPE)\s+([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\s+(.*))?$/.exec(trimmed)
      if (m === null) continue // a plain comment
      if (m[1] === 'TYPE') out.types.set(m[2]!, (m[3] ?? 'untyped').trim().toLowerCase())
      else out.help.set(m[2]!, unescapeHelp(m[3] ?? ''))
      continue
    }
    try {
      out.samples.push(parseSampleLine(line))
    } catch (err) {
      out.errors.push(`line ${ln + 1}: ${(err as Error).message}`)
    }
  }
  return out
}

/** Whether `labels` has every label in `match` with that value. A value starting with `!` means
 *  "any value but this one"; a RegExp matches the whole value. */
export type Matcher = Record<string, string | RegExp>

export function matches (labels: Labels, match: Matcher | undefined): boolean {
  if (match === undefined) return true
  for (const [k, want] of Object.entries(match)) {
    const v = labels[k] ?? ''
    if (want instanceof RegExp) {
      if (!new RegExp(`^(?:${want.source})$`, want.flags).test(v)) return false
    } else if (want.startsWith('!')) {
      if (v === want.slice(1)) return false
    } else if (v !== want) return false
  }
  return true
}

/** Samples named exactly `name` whose labels match. */
export function select (expo: Exposition, name: string, match?: Matcher): Sample[] {
  return expo.samples.filter((s) => s.name === name && matches(s.labels, match))
}

/** Canonical key of a label set (sorted), optionally without some labels. */
export function labelKey (labels: Labels, without: readonly string[] = []): string {
  return Object.keys(labels).filter((k) => !without.includes(k)).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')
}
