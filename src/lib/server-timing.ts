/** Collects durations for the Server-Timing header (l1, l2, db, score). */
export class ServerTiming {
  private readonly parts: string[] = []

  async measure<T> (name: string, fn: () => Promise<T>): Promise<T> {
    const start = performance.now()
    try {
      return await fn()
    } finally {
      this.add(name, performance.now() - start)
    }
  }

  add (name: string, ms: number): void {
    this.parts.push(ServerTiming.only(name, ms))
  }

  /** The header for a single duration, without a collector. */
  static only (name: string, ms: number): string { return `${name};dur=${ms.toFixed(2)}` }

  toString (): string { return this.parts.join(', ') }
}
