// Writes a report as `<out>/<timestamp>.json`, `.md` and `.svg`.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { markdown } from './markdown.ts'
import { svg } from './svg.ts'
import type { BenchReport } from './types.ts'

/** 2026-12-03T07-04-03Z: sortable, and valid in a file name everywhere. */
export function stamp (d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z').replace(/:/g, '-')
}

export function writeReport (report: BenchReport, outDir: string): { json: string, md: string, svg: string } {
  mkdirSync(outDir, { recursive: true })
  const base = join(outDir, stamp(new Date(report.startedAt)))
  const files = { json: `${base}.json`, md: `${base}.md`, svg: `${base}.svg` }
  writeFileSync(files.json, JSON.stringify(report, (_k, v) => v === Infinity ? 'Infinity' : v, 2) + '\n')
  writeFileSync(files.md, markdown(report))
  writeFileSync(files.svg, svg(report))
  return files
}
