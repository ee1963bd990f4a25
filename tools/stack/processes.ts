// Child processes of the stack: spawned in their own process groups with a watchdog each, their
// output prefixed line by line, stopped with a signal and a SIGKILL deadline.

import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { StackError } from './errors.ts'
import { secs } from './format.ts'

/** Every child's environment carries this, set to the stack's state dir (see ownedBy). */
export const MARKER = 'RECSVC_STACK_DIR'

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function waitGone (pid: number, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (!isAlive(pid)) return true
    await sleep(100)
  }
  return !isAlive(pid)
}

const COLORS = [36, 35, 33, 32, 34, 31]

// Holds a pipe from the stack; when the stack dies without stopping its children (SIGKILL, a test
// runner's timeout) the pipe closes and the watchdog sends the child's group SIGTERM, then SIGKILL.
// Builtins only. Its own process group, so a terminal Ctrl-C does not reach it.
const WATCHDOG = `read -r _
kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null
i=0; while kill -0 "$1" 2>/dev/null && [ "$i" -lt 600 ]; do sleep 0.1; i=$((i+1)); done
kill -KILL -- "-$1" 2>/dev/null; exit 0`

function startWatchdog (pid: number): ChildProcess {
  const wd = spawn('/bin/sh', ['-c', WATCHDOG, 'recsvc-stack-watchdog', String(pid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true })
  wd.on('error', () => {})
  wd.stdin?.on('error', () => {})
  wd.unref()
  ;(wd.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return wd
}

export type Kind = 'api' | 'nginx' | 'redis' | 'mysql' | 'tool'

export interface Proc {
  name: string
  kind: Kind
  child: ChildProcess
  pid: number
  exited: boolean
  exit: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stopping: boolean
  tail: string[]
}

export class Runner {
  readonly procs: Proc[] = []
  private colorOf = new Map<string, number>()
  stopping = false
  private readonly onExit = () => {
    // Last resort when this process goes away without stop(): ask every child to shut down.
    for (const p of this.procs) if (!p.exited) this.signal(p, 'SIGTERM')
  }

  constructor (readonly out: (line: string) => void, private readonly color: boolean, private readonly stateDir: string, private readonly baseEnv: NodeJS.ProcessEnv) {
    process.on('exit', this.onExit)
  }

  prefix (name: string): string {
    if (!this.color) return `[${name}]`
    let c = this.colorOf.get(name)
    if (c === undefined) {
      c = name === 'stack' ? 1 : COLORS[this.colorOf.size % COLORS.length] ?? 36
      this.colorOf.set(name, c)
    }
    return `\x1b[${c}m[${name}]\x1b[0m`
  }

  log (name: string, msg: string): void {
    for (const line of msg.split('\n')) this.out(`${this.prefix(name)} ${line}`)
  }

  /** Spawns in its own process group, so a terminal Ctrl-C reaches only the stack, which then
   *  stops the children in order. Output is prefixed line by line; the last lines are kept. */
  spawn (name: string, kind: Kind, cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, format?: (line: string) => string, quiet?: boolean }): Proc {
    if (this.stopping) throw new StackError('stack is stopping')
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...(opts.env ?? this.baseEnv), [MARKER]: this.stateDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    })
    const tail: string[] = []
    const proc: Proc = {
      name,
      kind,
      child,
      pid: child.pid ?? -1,
      exited: false,
      stopping: false,
      tail,
      exit: new Promise((resolve) => {
        child.once('error', (err) => {
          tail.push(String(err))
          proc.exited = true
          resolve({ code: 127, signal: null })
        })
        child.once('exit', (code, signal) => {
          proc.exited = true
          resolve({ code, signal })
        })
      })
    }
    const onLine = (line: string) => {
      tail.push(line)
      if (tail.length > 40) tail.shift()
      if (!opts.quiet) this.log(name, opts.format ? opts.format(line) : line)
    }
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine)
    }
    if (kind !== 'tool' && proc.pid > 0) {
      const wd = startWatchdog(proc.pid)
      void proc.exit.then(() => { try { wd.kill('SIGKILL') } catch {} })
    }
    this.procs.push(proc)
    return proc
  }

  /** Runs a command to completion; throws with its last output lines when it fails. */
  async run (name: string, cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, quiet?: boolean } = {}): Promise<void> {
    const p = this.spawn(name, 'tool', cmd, args, opts)
    const { code, signal } = await p.exit
    if (code !== 0) {
      if (this.stopping) throw new StackError('stack is stopping')
      const output = opts.quiet ? `\n${p.tail.slice(-15).join('\n')}` : ' (output above)'
      throw new StackError(`${name} failed (${signal ?? `exit code ${code}`}): ${cmd} ${args.join(' ')}${output}`)
    }
  }

  signal (p: Proc, sig: NodeJS.Signals): void {
    if (p.exited || p.pid <= 0) return
    try {
      process.kill(-p.pid, sig) // the whole group: npm -> sh -> tsc, mariadb-install-db -> mariadbd
    } catch {
      try { process.kill(p.pid, sig) } catch {}
    }
  }

  /** sig, then SIGKILL after timeoutMs. */
  async terminate (p: Proc, sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    if (p.exited) return
    p.stopping = true
    this.signal(p, sig)
    const t = setTimeout(() => {
      if (!p.exited) {
        this.log('stack', `${p.name} (pid ${p.pid}) still running after ${secs(timeoutMs)}; SIGKILL`)
        this.signal(p, 'SIGKILL')
      }
    }, timeoutMs)
    await p.exit
    clearTimeout(t)
  }

  detachExitHook (): void {
    process.off('exit', this.onExit)
  }
}

/** Like Promise.all, but waits for every promise to settle before rejecting with the first error,
 *  so nothing is still starting while the stack is being torn down. */
export async function settleAll<T extends readonly unknown[]> (ps: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(ps)
  const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined
  if (failed) {
    // Prefer a real error over the 'stack is stopping' noise of the processes it interrupted.
    const real = results.find((r) => r.status === 'rejected' && !/stack is stopping|^aborted$/.test(String((r.reason as Error)?.message))) as PromiseRejectedResult | undefined
    throw (real ?? failed).reason
  }
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}
