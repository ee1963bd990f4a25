import type { Proc, Runner } from './processes.ts'

/** Waits for `probe` to succeed, failing early when `proc` exits or the stack is stopped. */
export type WaitFor = (what: string, probe: () => Promise<boolean>, timeoutMs: number, proc?: Proc) => Promise<void>

/** What the parts of a starting stack share with startStack. */
export interface StackContext {
  runner: Runner
  stateDir: string
  /** Pid files to remove on stop. */
  pidFiles: string[]
  log: (msg: string) => void
  /** Throws when the stack is being aborted or stopped. */
  checkAbort: () => void
  waitFor: WaitFor
}
