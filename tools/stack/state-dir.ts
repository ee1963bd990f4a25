// The state directory: its lock (one stack per state dir), the processes a killed run left behind,
// and wiping it for --fresh.

import { readFileSync, readlinkSync } from 'node:fs'
import { readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { StackError } from './errors.ts'
import { rel } from './format.ts'
import { isAlive, MARKER, waitGone } from './processes.ts'

/** True when the process is one we started for this state dir: it carries our marker in its
 *  environment, or its working directory is the state directory we gave it (redis-server rewrites
 *  its environ area for its process title, so for it only the cwd check works). */
function ownedBy (pid: number, stateDir: string, cwd?: string): boolean {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    if (env.includes(`${MARKER}=${stateDir}`)) return true
  } catch {}
  if (cwd) {
    try {
      return resolve(readlinkSync(`/proc/${pid}/cwd`)) === resolve(cwd)
    } catch {}
  }
  return false
}

export async function readPid (file: string): Promise<number | undefined> {
  try {
    const n = Number((await readFile(file, 'utf8')).trim())
    return Number.isInteger(n) && n > 0 ? n : undefined
  } catch {
    return undefined
  }
}

export async function takeLock (lockFile: string): Promise<void> {
  const pid = await readPid(lockFile)
  if (pid && pid !== process.pid && isAlive(pid)) {
    let cmd = ''
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ') } catch {}
    if (cmd === '' || /node|tsx/.test(cmd)) {
      throw new StackError(`another stack is running with state dir ${dirname(lockFile)} (pid ${pid}); stop it first (kill -INT ${pid})`)
    }
  }
  await writeFile(lockFile, `${process.pid}\n`)
}

/** A previous run that was killed (SIGKILL, closed terminal) may have left its children running;
 *  they would hold the ports and the InnoDB lock. Stop those that are provably ours. */
export async function stopLeftovers (stateDir: string, log: (m: string) => void): Promise<void> {
  const candidates: Array<{ file: string, cwd?: string }> = [
    { file: join(stateDir, 'redis', 'redis.pid'), cwd: join(stateDir, 'redis') },
    { file: join(stateDir, 'mysql', 'mysqld.pid'), cwd: join(stateDir, 'mysql', 'data') }
  ]
  try {
    for (const name of await readdir(join(stateDir, 'run'))) if (name.endsWith('.pid') && name !== 'nginx.pid') candidates.unshift({ file: join(stateDir, 'run', name) })
  } catch {}
  // nginx (like redis-server) overwrites its environment with its process title: check its cwd.
  // Stopped before the replicas, as in stop().
  candidates.unshift({ file: join(stateDir, 'run', 'nginx.pid'), cwd: join(stateDir, 'nginx') })
  for (const { file, cwd } of candidates) {
    const pid = await readPid(file)
    if (pid && isAlive(pid) && ownedBy(pid, stateDir, cwd)) {
      log(`stopping leftover process from a previous run: pid ${pid} (${relative(stateDir, file)})`)
      try { process.kill(pid, 'SIGTERM') } catch {}
      if (!await waitGone(pid, 60_000)) {
        try { process.kill(pid, 'SIGKILL') } catch {}
        await waitGone(pid, 5000)
      }
    }
    if (pid && !isAlive(pid)) await rm(file, { force: true })
  }
}


/** --fresh: everything in the state dir but the lock file goes; refused for directories that are
 *  not the stack's own. */
export async function wipeStateDir (stateDir: string, root: string, log: (m: string) => void): Promise<void> {
  if ([root, '/', homedir(), tmpdir()].map((d) => resolve(d)).includes(stateDir)) throw new StackError(`refusing to wipe ${stateDir} (--fresh); pick a dedicated --state-dir`)
  log(`--fresh: wiping ${rel(stateDir)}`)
  for (const name of await readdir(stateDir)) if (name !== 'stack.pid') await rm(join(stateDir, name), { recursive: true, force: true })
}
