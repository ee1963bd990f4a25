import { overloaded, unavailable } from './errors.ts'

interface Waiting<T, R> {
  task: T
  resolve: (r: R) => void
  reject: (e: Error) => void
  timer?: NodeJS.Timeout
  /** still in the queue: counts against maxQueue */
  queued: boolean
  done: boolean
}

export interface BatchingScorerOptions<T, R> {
  /** runs one batch on a worker thread; results in task order */
  runBatch: (tasks: T[]) => Promise<R[]>
  /** batches handed to the workers at once (two per thread: one running, one ready) */
  maxInFlight: number
  maxBatch: number
  /** tasks waiting for a batch slot before new ones are refused */
  maxQueue: number
  queueTimeoutMs: number
  /** how long a caller waits for a batch that is running */
  runTimeoutMs: number
}

/** Sends scoring tasks to the worker pool in batches. A pool task costs the main thread far more
 *  than scoring one user costs the worker (the task bookkeeping, two messages, a promise), so the
 *  misses that arrive in the same turn of the event loop, or wait while the threads are busy,
 *  share one pool task. Waiting is bounded in length and in time; a batch that runs too long is
 *  given up by its callers but never aborted (aborting a running piscina task terminates its
 *  thread and the statistics it has parsed), and it keeps its slot until it really ends. */
export class BatchingScorer<T, R> {
  private readonly queue: Array<Waiting<T, R>> = []
  private waiting = 0
  private inFlight = 0
  private scheduled = false

  constructor (private readonly opts: BatchingScorerOptions<T, R>) {}

  run (task: T): Promise<R> {
    if (this.waiting >= this.opts.maxQueue) return Promise.reject(overloaded('scoring'))
    return new Promise<R>((resolve, reject) => {
      const w: Waiting<T, R> = { task, resolve, reject, queued: true, done: false }
      w.timer = setTimeout(() => {
        this.unqueue(w)
        this.settle(w, undefined, overloaded('scoring'))
      }, this.opts.queueTimeoutMs)
      this.queue.push(w)
      this.waiting++
      if (this.queue.length > 2 * this.waiting + 64) this.sweep()
      this.schedule()
    })
  }

  get queued (): number { return this.waiting }
  get running (): number { return this.inFlight }

  private schedule (): void {
    if (this.scheduled || this.inFlight >= this.opts.maxInFlight) return
    this.scheduled = true
    // Dispatch after this turn of the event loop, so the misses it produced share a batch.
    setImmediate(() => {
      this.scheduled = false
      this.dispatch()
    })
  }

  private dispatch (): void {
    while (this.inFlight < this.opts.maxInFlight && this.waiting > 0) {
      // Newest first, as in BoundedGate: under a standing queue the oldest are about to time out.
      const batch: Array<Waiting<T, R>> = []
      while (batch.length < this.opts.maxBatch && this.queue.length > 0) {
        const w = this.queue.pop() as Waiting<T, R>
        if (w.done) continue
        clearTimeout(w.timer)
        this.unqueue(w)
        batch.push(w)
      }
      if (batch.length === 0) return
      this.inFlight++
      const timer = setTimeout(() => { for (const w of batch) this.settle(w, undefined, unavailable('scoring')) }, this.opts.runTimeoutMs)
      this.opts.runBatch(batch.map((w) => w.task)).then((results) => {
        batch.forEach((w, i) => this.settle(w, results[i]))
      }, (err: Error) => {
        for (const w of batch) this.settle(w, undefined, err)
      }).finally(() => {
        clearTimeout(timer)
        this.inFlight--
        this.dispatch()
      })
    }
  }

  private settle (w: Waiting<T, R>, result: R | undefined, err?: Error): void {
    if (w.done) return
    w.done = true
    clearTimeout(w.timer)
    if (err) w.reject(err)
    else w.resolve(result as R)
  }

  private unqueue (w: Waiting<T, R>): void {
    if (!w.queued) return
    w.queued = false
    this.waiting--
  }

  private sweep (): void {
    let j = 0
    for (const w of this.queue) if (!w.done) this.queue[j++] = w
    this.queue.length = j
  }
}
