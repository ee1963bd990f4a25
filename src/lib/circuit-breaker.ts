import { unavailable } from './errors.ts'

export type BreakerState = 'closed' | 'open' | 'half-open'

export interface CircuitBreakerOptions {
  name: string
  /** consecutive failures that open the circuit */
  failureThreshold: number
  /** how long the circuit stays open before one probe is let through */
  cooldownMs: number
  onStateChange?: (state: BreakerState, name: string) => void
  now?: () => number
}

/** Skips a failing dependency fast instead of making every request wait for its timeout.
 *  closed → open after `failureThreshold` consecutive failures; after `cooldownMs` one call is let
 *  through (half-open): success closes the circuit, failure opens it again for another cooldown. */
export class CircuitBreaker {
  private state: BreakerState = 'closed'
  private failures = 0
  private openedAt = 0
  private probing = false
  private readonly now: () => number

  constructor (private readonly opts: CircuitBreakerOptions) {
    this.now = opts.now ?? Date.now
  }

  get current (): BreakerState {
    if (this.state === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) return 'half-open'
    return this.state
  }

  async run<T> (fn: () => Promise<T>): Promise<T> {
    const state = this.current
    if (state === 'open' || (state === 'half-open' && this.probing)) {
      throw unavailable(this.opts.name)
    }
    const probe = state === 'half-open'
    if (probe) { this.probing = true; this.set('half-open') }
    try {
      const result = await fn()
      this.failures = 0
      if (this.state !== 'closed') this.set('closed')
      return result
    } catch (err) {
      this.failures++
      if (probe || this.failures >= this.opts.failureThreshold) {
        this.openedAt = this.now()
        this.set('open')
      }
      throw err
    } finally {
      if (probe) this.probing = false
    }
  }

  private set (state: BreakerState): void {
    if (this.state === state) return
    this.state = state
    this.opts.onStateChange?.(state, this.opts.name)
  }
}
