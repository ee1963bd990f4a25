// The stack's child processes: supervised by tools/servers/supervisor.ts, their output prefixed and
// coloured line by line, stopped with a signal and a SIGKILL deadline.

import { supervise, type ExitInfo, type Supervised } from '../servers/supervisor.ts'
import { StackError } from './errors.ts'
import { secs } from './format.ts'

export { isAlive, sleep, waitGone } from '../servers/supervisor.ts'

/** Every child's environment carries this, set to the stack's state dir (see ownedBy). */
export const MARKER = 'RECSVC_STACK_DIR'

const COLORS = [36, 35, 33, 32, 34, 31]

export type Kind = 'api' | 'nginx' | 'redis' | 'mysql' | 'tool'

export interface Proc {
  name: string
  kind: Kind
  pid: number
  readonly exited: boolean
  exit: Promise<ExitInfo>
  stopping: boolean
  /** the last 40 lines of output */
  tail: string[]
  readonly process: Supervised
}

export class Runner {
  readonly procs: Proc[] = []
  private colorOf = new Map<string, number>()
  stopping = false

  constructor (readonly out: (line: string) => void, private readonly color: boolean, private readonly stateDir: string, private readonly baseEnv: NodeJS.ProcessEnv) {}

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

  /** Starts a supervised child (tools/servers/supervisor.ts): if the stack dies without stopping it,
   *  it gets SIGTERM, then SIGKILL a minute later. Output is prefixed line by line; the last lines are kept. */
  spawn (name: string, kind: Kind, cmd: string, args: string[], opts: { cwd?: string, env?: NodeJS.ProcessEnv, format?: (line: string) => string, quiet?: boolean }): Proc {
    if (this.stopping) throw new StackError('stack is stopping')
    const tail: string[] = []
    const onLine = (line: string) => {
      tail.push(line)
      if (tail.length > 40) tail.shift()
      if (!opts.quiet) this.log(name, opts.format ? opts.format(line) : line)
    }
    const sup = supervise(cmd, args, {
      cwd: opts.cwd,
      env: { ...(opts.env ?? this.baseEnv), [MARKER]: this.stateDir },
      output: { onLine },
      orphanSignal: 'SIGTERM',
      graceMs: 60_000,
      // a build or a seed ends by itself; the exit hook stops it if the stack goes first
      noWatchdog: kind === 'tool'
    })
    const proc: Proc = {
      name,
      kind,
      pid: sup.pid,
      get exited () { return sup.exited },
      exit: sup.exit,
      get stopping () { return sup.stopping },
      set stopping (v: boolean) { sup.stopping = v },
      tail,
      process: sup
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
    p.process.signal(sig)
  }

  /** sig, then SIGKILL after timeoutMs. */
  async terminate (p: Proc, sig: NodeJS.Signals, timeoutMs: number): Promise<void> {
    await p.process.terminate(sig, timeoutMs, () => this.log('stack', `${p.name} (pid ${p.pid}) still running after ${secs(timeoutMs)}; SIGKILL`))
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
