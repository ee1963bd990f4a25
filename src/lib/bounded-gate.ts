import { overloaded } from './errors.ts'

interface Waiter { start: () => void, fail: (err: Error) => void, timer?: NodeJS.Timeout }

/** At most `limit` jobs run at once; up to `maxQueue` more wait, each at most `queueTimeoutMs`.
 *  A job that cannot get a slot fails fast with REC_ERR_OVERLOADED instead of piling up, so the
 *  work behind the gate (MySQL, the scoring threads) is bounded and callers can degrade at once. */
export class BoundedGate {
  private running = 0
  private readonly queue: Waiter[] = []
  private head = 0
  private waiting = 0

  constructor (private readonly opts: { name: string, limit: number, maxQueue: number, queueTimeoutMs: number }) {}

  async run<T> (job: () => Promise<T>): Promise<T> {
    if (this.running >= this.opts.limit) await this.wait()
    else this.running++
    try {
      return await job()
    } finally {
      this.release()
    }
  }

  get active (): number { return this.running }
  get queued (): number { return this.waiting }

  private wait (): Promise<void> {
    if (this.queued >= this.opts.maxQueue) return Promise.reject(overloaded(this.opts.name))
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { start: resolve, fail: reject }
      w.timer = setTimeout(() => {
        // Marked done in place; release() skips it. Compacted lazily so a timeout is O(1).
        w.start = noop
        this.waiting--
        w.fail(overloaded(this.opts.name))
        w.fail = noop
      }, this.opts.queueTimeoutMs)
      this.queue.push(w)
      this.waiting++
    })
  }

  private release (): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head++] as Waiter
      if (w.start === noop) continue
      clearTimeout(w.timer)
      this.waiting--
      // The slot passes straight to the next waiter: `running` stays as it is.
      w.start()
      this.compact()
      return
    }
    this.running--
    this.compact()
  }

  private compact (): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
    }
  }
}

function noop (): void {}
