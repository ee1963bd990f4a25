import { overloaded } from './errors.ts'

interface Waiter { start: () => void, fail: (err: Error) => void, timer?: NodeJS.Timeout, done: boolean }

/** At most `limit` jobs run at once; up to `maxQueue` more wait, each at most `queueTimeoutMs`.
 *  A job that cannot get a slot fails fast with REC_ERR_OVERLOADED instead of piling up, so the
 *  work behind the gate (MySQL, the scoring threads) is bounded and callers can degrade at once.
 *
 *  A free slot goes to the newest waiter (LIFO). Under a standing overload the oldest waiters are
 *  the ones whose callers are about to give up; serving them first (FIFO) would spend every slot
 *  on answers that arrive too late, and no request would get its answer in time. The newest has
 *  the most time left. Without a standing queue the order makes no difference. */
export class BoundedGate {
  private running = 0
  private readonly queue: Waiter[] = []
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

  private wait (): Promise<void> {
    if (this.waiting >= this.opts.maxQueue) return Promise.reject(overloaded(this.opts.name))
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { start: resolve, fail: reject, done: false }
      w.timer = setTimeout(() => {
        // Left in place and skipped later, so a timeout is O(1).
        w.done = true
        this.waiting--
        w.fail(overloaded(this.opts.name))
      }, this.opts.queueTimeoutMs)
      this.queue.push(w)
      this.waiting++
      // Timed-out waiters pile up below a standing queue: sweep them out now and then.
      if (this.queue.length > 2 * this.waiting + 64) this.sweep()
    })
  }

  private release (): void {
    while (this.queue.length > 0) {
      const w = this.queue.pop() as Waiter
      if (w.done) continue
      w.done = true
      clearTimeout(w.timer)
      this.waiting--
      // The slot passes straight to the waiter: `running` stays as it is.
      w.start()
      return
    }
    this.running--
  }

  private sweep (): void {
    let j = 0
    for (const w of this.queue) if (!w.done) this.queue[j++] = w
    this.queue.length = j
  }
}
