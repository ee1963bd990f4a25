// What the report says about the machine and the checkout.
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import type { Machine } from '../report/types.ts'
import { ROOT } from './procs.ts'

export function machine (): Machine {
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 5000 })
    return r.status === 0 ? r.stdout.trim() : undefined
  }
  const commit = git('rev-parse', 'HEAD')
  const status = git('status', '--porcelain', '--untracked-files=no')
  return {
    hostname: os.hostname(),
    platform: os.platform(),
    arch: os.arch(),
    cpus: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    totalMemBytes: os.totalmem(),
    loadAvgBefore: os.loadavg(),
    node: process.version,
    gitCommit: commit,
    gitDirty: status === undefined ? undefined : status !== ''
  }
}
