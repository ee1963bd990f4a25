// One way to run a server process: in its own process group, output to a log file or line by line,
// stopped with a signal and a SIGKILL deadline, and never outliving the process that started it.
//
// Two guards against orphans: a process 'exit' hook (normal exits, uncaught errors), and a watchdog
// shell per child holding a pipe from this process, for deaths that skip the hook (SIGKILL, a test
// runner's timeout). When the pipe closes the watchdog signals the child's group, waits for it, then
// SIGKILLs the group and removes the child's scratch directory if it was given one.

import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { createInterface } from 'node:readline'

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

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

export interface ExitInfo { code: number | null, signal: NodeJS.Signals | null }

export interface SuperviseOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Appended to this file (a header line per start), or handed over line by line. */
  output: { file: string } | { onLine: (line: string) => void }
  /** What the watchdog and the exit hook send when this process dies first: SIGKILL for a test's
   *  throwaway server, SIGTERM for the stack's (MariaDB flushes, nginx drains), SIGKILL after `graceMs`. */
  orphanSignal?: 'SIGTERM' | 'SIGKILL'
  graceMs?: number
  /** removed by the watchdog once the child is gone (a test server's temp dir) */
  scratchDir?: string
  /** no watchdog: short-lived tools (an install-db, a build) that the exit hook covers */
  noWatchdog?: boolean
  /** false: the child does not keep this process's event loop alive (a test that forgets to stop
   *  its server must not hang; the exit hook and the watchdog clean up). Default true. */
  holdsParent?: boolean
}

const live = new Set<Supervised>()

process.on('exit', () => {
  for (const p of live) p.signal(p.orphanSignal)
  for (const p of live) if (p.scratchDir !== undefined && p.orphanSignal === 'SIGKILL') {
    try { rmSync(p.scratchDir, { recursive: true, force: true }) } catch {}
  }
})

// Builtins only, so killing the shell leaves nothing behind. A zombie counts as gone (init may reap late).
const WATCHDOG = `read -r _
kill -"$2" -- "-$1" 2>/dev/null || kill -"$2" "$1" 2>/dev/null
i=0; while [ "$i" -lt "$3" ] && kill -0 "$1" 2>/dev/null && ! grep -qs '^State:.*Z' "/proc/$1/status"; do sleep 0.1; i=$((i+1)); done
kill -KILL -- "-$1" 2>/dev/null || kill -KILL "$1" 2>/dev/null
[ -n "$4" ] && rm -rf -- "$4"; exit 0`

function startWatchdog (pid: number, signal: string, graceMs: number, scratchDir: string | undefined): ChildProcess {
  // Its own process group, so a terminal's Ctrl-C does not reach it (it would leave the child behind).
  const wd = spawn('/bin/sh', ['-c', WATCHDOG, 'recsvc-watchdog', String(pid), signal.replace(/^SIG/, ''), String(Math.ceil(graceMs / 100)), scratchDir ?? ''], {
    stdio: ['pipe', 'ignore', 'ignore'],
    detached: true
  })
  wd.on('error', () => {})
  wd.stdin?.on('error', () => {})
  wd.unref()
  ;(wd.stdin as unknown as { unref?: () => void } | null)?.unref?.()
  return wd
}

/** A running (or exited) child process. */
export class Supervised {
  readonly child: ChildProcess
  readonly pid: number
  exited = false
  /** set by whoever stops it on purpose, so an exit is not reported as a crash */
  stopping = false
  readonly exit: Promise<ExitInfo>
  readonly orphanSignal: NodeJS.Signals
  readonly scratchDir: string | undefined
  private watchdog: ChildProcess | undefined
  private readonly onLine: ((line: string) => void) | undefined

  constructor (readonly cmd: string, readonly args: string[], opts: SuperviseOptions) {
    this.orphanSignal = opts.orphanSignal ?? 'SIGTERM'
    this.scratchDir = opts.scratchDir
    let fd: number | undefined
    if ('file' in opts.output) {
      fd = openSync(opts.output.file, 'a')
      writeSync(fd, `\n=== ${new Date().toISOString()} ${cmd} ${args.join(' ')}\n`)
    }
    try {
      // Its own process group: a terminal Ctrl-C reaches only the parent, which stops children in
      // order; and a signal to the group reaches the whole tree (npm -> sh -> tsc, install-db -> mariadbd).
      this.child = spawn(cmd, args, {
        cwd: opts.cwd,
        env: opts.env,
        stdio: fd !== undefined ? ['ignore', fd, fd] : ['ignore', 'pipe', 'pipe'],
        detached: true
      })
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
    this.pid = this.child.pid ?? -1
    this.exit = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.onLine?.(`could not be spawned: ${err.message}`)
        this.finish()
        resolve({ code: 127, signal: null })
      })
      this.child.once('exit', (code, signal) => {
        this.finish()
        resolve({ code, signal })
      })
    })
    if ('onLine' in opts.output) {
      this.onLine = opts.output.onLine
      for (const stream of [this.child.stdout, this.child.stderr]) {
        if (stream) createInterface({ input: stream, crlfDelay: Infinity }).on('line', (l) => this.onLine?.(l))
      }
    }
    if (opts.holdsParent === false) this.child.unref()
    if (this.pid > 0) {
      live.add(this)
      if (opts.noWatchdog !== true) this.watchdog = startWatchdog(this.pid, this.orphanSignal, opts.graceMs ?? 60_000, opts.scratchDir)
    }
  }

  private finish (): void {
    this.exited = true
    live.delete(this)
    const wd = this.watchdog
    this.watchdog = undefined
    // The child is gone: the watchdog must not act on a pid that may be reused.
    if (wd !== undefined) try { wd.kill('SIGKILL') } catch {}
  }

  /** Signals the whole process group (falls back to the process). */
  signal (sig: NodeJS.Signals): void {
    if (this.exited || this.pid <= 0) return
    try {
      process.kill(-this.pid, sig)
    } catch {
      try { process.kill(this.pid, sig) } catch {}
    }
  }

  /** `sig`, then SIGKILL after `timeoutMs`; resolves once the process has exited. */
  async terminate (sig: NodeJS.Signals, timeoutMs: number, onKill?: () => void): Promise<ExitInfo> {
    this.stopping = true
    if (this.exited) return await this.exit
    this.child.ref() // keep the event loop alive while we wait for 'exit'
    this.signal(sig)
    const timer = setTimeout(() => {
      if (this.exited) return
      onKill?.()
      this.signal('SIGKILL')
    }, timeoutMs)
    try {
      return await this.exit
    } finally {
      clearTimeout(timer)
    }
  }
}

export function supervise (cmd: string, args: string[], opts: SuperviseOptions): Supervised {
  return new Supervised(cmd, args, opts)
}

/** Runs a command to completion within `timeoutMs`; rejects with its exit and `why` when it fails. */
export async function runToCompletion (cmd: string, args: string[], opts: Omit<SuperviseOptions, 'orphanSignal' | 'noWatchdog'> & { timeoutMs: number }): Promise<void> {
  const p = supervise(cmd, args, { ...opts, orphanSignal: 'SIGKILL', noWatchdog: true })
  p.child.ref()
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; p.signal('SIGKILL') }, opts.timeoutMs)
  const { code, signal } = await p.exit
  clearTimeout(timer)
  if (timedOut) throw new Error(`${cmd} did not finish within ${opts.timeoutMs} ms`)
  if (code !== 0) throw new Error(`${cmd} failed (${signal ?? `exit code ${String(code)}`})`)
}

/** The last `maxBytes` of a log file, for an error message. */
export function tailOf (file: string | undefined, maxBytes = 4000): string {
  if (file === undefined) return ''
  try {
    const buf = readFileSync(file)
    const text = buf.subarray(Math.max(0, buf.length - maxBytes)).toString('utf8')
    return `\n--- last lines of ${file} ---\n${text.trimEnd()}\n---`
  } catch {
    return `\n(no log at ${file})`
  }
}

/** Polls `probe` until it answers true; fails as soon as `proc` exits, `abort()` throws, or the time is up. */
export async function waitReady (what: string, probe: () => Promise<boolean>, opts: { timeoutMs: number, proc?: Supervised, intervalMs?: number, abort?: () => void, describeExit?: (e: ExitInfo) => string }): Promise<void> {
  const until = Date.now() + opts.timeoutMs
  for (;;) {
    opts.abort?.()
    if (opts.proc?.exited === true) {
      const e = await opts.proc.exit
      throw new ReadyError(opts.describeExit?.(e) ?? `${what}: the process exited (${e.signal ?? `code ${String(e.code)}`}) before it was ready`, 'exited')
    }
    if (await probe().catch(() => false)) return
    if (Date.now() > until) throw new ReadyError(`timed out after ${(opts.timeoutMs / 1000).toFixed(1)} s waiting for ${what}`, 'timeout')
    await sleep(opts.intervalMs ?? 100)
  }
}

export class ReadyError extends Error {
  constructor (message: string, readonly reason: 'exited' | 'timeout') {
    super(message)
  }
}
