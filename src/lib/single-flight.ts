/** Concurrent callers for the same key share one in-flight promise. The map only holds keys while
 *  their load runs, so its size is bounded by the number of concurrent distinct loads. */
export class SingleFlight<K, V> {
  private readonly inflight = new Map<K, Promise<V>>()

  do (key: K, load: () => Promise<V>): { promise: Promise<V>, shared: boolean } {
    const existing = this.inflight.get(key)
    if (existing) return { promise: existing, shared: true }
    const promise = load().finally(() => {
      if (this.inflight.get(key) === promise) this.inflight.delete(key)
    })
    this.inflight.set(key, promise)
    return { promise, shared: false }
  }

  /** Later callers start a new load; those already waiting keep the old one. */
  forget (key: K): void { this.inflight.delete(key) }

  get size (): number { return this.inflight.size }
}
