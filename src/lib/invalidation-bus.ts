import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { unavailable } from './errors.ts'

export interface BroadcastResult { acked: number, expected: number }

export interface InvalidationBusOptions {
  /** the command connection (publishes invalidations, acks and heartbeats) */
  redis: Redis
  /** a dedicated connection in subscriber mode */
  subscriber: Redis
  keyPrefix: string
  replicaId: string
  ackTimeoutMs: number
  /** drop the users locally; must be synchronous so the ack means "done". Not called for this
   *  replica's own broadcasts: the sender drops its users itself. */
  onInvalidate: (userIds: number[]) => void
  /** false: the subscription is down or silent, invalidations may be missed; true: it is back,
   *  subscribed, and a heartbeat has gone through it since */
  onSubscriptionChange: (up: boolean) => void
  /** how often this replica publishes a heartbeat to itself; default 1000 */
  heartbeatIntervalMs?: number
  /** no heartbeat for this long and the subscription counts as dead: `onSubscriptionChange(false)`
   *  and the subscriber connection is replaced; default 3000 */
  silentAfterMs?: number
  log?: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

interface Pending { acks: Set<string>, expected: number, done: () => void }

export const DEFAULT_HEARTBEAT_INTERVAL_MS = 1000
export const DEFAULT_SILENT_AFTER_MS = 3000

/** Broadcasts invalidations to every replica over Redis pub/sub and waits for their acks.
 *
 *  PUBLISH returns how many subscribers received the message, which is how many acks to expect.
 *  That count includes the sender's own subscriber connection, so the sender acks too: when its
 *  own message comes back it counts itself, without a round trip and without calling
 *  `onInvalidate`: the sender drops its users itself, once. (That drop has to come after the users
 *  moved to a new generation in Redis, or a fill that read the old value in between keeps it.)
 *  Every other replica drops the
 *  entries and then acks on the sender's ack channel; the sender answers when all acks are in or
 *  the timeout passes.
 *
 *  A subscription can die without a sound (a half-open socket after a failover: no error, no
 *  messages, and PUBLISH stops counting this replica, so `acked == expected` while it misses
 *  everything). So each replica publishes a heartbeat every `heartbeatIntervalMs` on a channel only
 *  this instance subscribes to, through the command connection, and expects it back on the
 *  subscriber connection. Nothing for `silentAfterMs`, or a heartbeat PUBLISH that reaches nobody,
 *  and the subscription is down: `onSubscriptionChange(false)` and the subscriber connection is
 *  replaced. It is up again only once it has resubscribed AND a heartbeat has come through. */
export class InvalidationBus {
  private readonly channel: string
  private readonly ackChannel: string
  private readonly heartbeatChannel: string
  /** tells this instance's messages from another instance's that (misconfigured) shares its replica id */
  private readonly instance = randomUUID()
  private readonly pending = new Map<string, Pending>()
  private readonly heartbeatIntervalMs: number
  private readonly silentAfterMs: number
  /** what was last reported through onSubscriptionChange */
  private isUp = false
  /** SUBSCRIBE confirmed on the current subscriber connection */
  private subscribed = false
  /** bumped whenever the subscriber connection closes or is replaced: late replies from an older
   *  connection change nothing */
  private connection = 0
  /** the connection a SUBSCRIBE is outstanding on */
  private subscribingOn: number | undefined
  private heartbeatInFlight = false
  private heartbeatSeq = 0
  /** (clock) the last sign of progress towards a working subscription */
  private progressAt = 0
  /** (clock) when the last heartbeat came through */
  private heartbeatAt = 0
  private ticker: NodeJS.Timeout | undefined
  /** fires `silentAfterMs` after the last heartbeat came through, while up */
  private deadline: NodeJS.Timeout | undefined
  private closing = false
  private readonly waiters = new Set<() => void>()

  constructor (private readonly opts: InvalidationBusOptions) {
    this.channel = `${opts.keyPrefix}invalidate`
    this.ackChannel = `${opts.keyPrefix}invalidate-ack:${opts.replicaId}`
    this.heartbeatChannel = `${opts.keyPrefix}invalidate-heartbeat:${opts.replicaId}:${this.instance}`
    this.heartbeatIntervalMs = opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS
    this.silentAfterMs = opts.silentAfterMs ?? DEFAULT_SILENT_AFTER_MS
    if (!(this.heartbeatIntervalMs > 0) || !(this.silentAfterMs > this.heartbeatIntervalMs)) {
      throw new Error(`invalidation bus: silentAfterMs (${this.silentAfterMs}) must exceed heartbeatIntervalMs (${this.heartbeatIntervalMs}) > 0`)
    }
  }

  /** Subscribed, and heartbeats come through: every invalidation sent is heard here. */
  get up (): boolean { return this.isUp }

  /** Subscribes and waits (at most `silentAfterMs`) for the first heartbeat. If none comes, the bus
   *  starts down (`onSubscriptionChange(false)`) and keeps trying in the background. */
  async start (): Promise<void> {
    const sub = this.opts.subscriber
    sub.on('message', (channel: string, message: string) => this.onMessage(channel, message))
    sub.on('close', () => {
      this.connection++
      this.subscribed = false
      this.setDown('invalidation subscription lost; not trusting the in-process cache until it is back')
    })
    sub.on('ready', () => {
      if (this.closing) return
      this.progressAt = performance.now()
      this.subscribe()
    })
    this.progressAt = performance.now()
    this.ticker = setInterval(() => this.tick(), this.heartbeatIntervalMs).unref()
    const arrived = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.silentAfterMs).unref()
      this.waiters.add(() => { clearTimeout(timer); resolve() })
    })
    if (sub.status === 'ready') this.subscribe()
    await arrived
    this.waiters.clear()
    if (!this.isUp && !this.closing) {
      this.opts.log?.warn({ channel: this.channel }, 'invalidation subscription not confirmed at start; not trusting the in-process cache until it is')
      this.opts.onSubscriptionChange(false)
    }
  }

  /** SUBSCRIBE on the current connection (at most one outstanding per connection), then a
   *  heartbeat right away to confirm it. */
  private subscribe (): void {
    const connection = this.connection
    if (this.subscribingOn === connection || this.subscribed || this.closing) return
    this.subscribingOn = connection
    this.opts.subscriber.subscribe(this.channel, this.ackChannel, this.heartbeatChannel)
      .then(() => {
        if (connection !== this.connection || this.closing) return
        this.subscribed = true
        this.progressAt = performance.now()
        this.heartbeat()
      }, (err: unknown) => {
        if (!this.closing) this.opts.log?.warn({ err }, 'invalidation subscribe failed; retrying')
      })
      .finally(() => { if (this.subscribingOn === connection) this.subscribingOn = undefined })
  }

  /** One heartbeat at a time, outstanding until Redis answers or the command connection's own
   *  timeout fails it: if that connection is stuck, none piles up behind it (and the heartbeats
   *  that stop arriving say the subscription cannot be confirmed). */
  private heartbeat (): void {
    if (this.heartbeatInFlight || !this.subscribed || this.closing) return
    this.heartbeatInFlight = true
    const connection = this.connection
    this.opts.redis.publish(this.heartbeatChannel, String(++this.heartbeatSeq))
      .then((receivers) => {
        // Only this instance subscribes to the channel: nobody received it means Redis no longer
        // has our subscription, whatever our socket says.
        if (receivers === 0 && connection === this.connection && this.subscribed && !this.closing) this.silent('a heartbeat reached no subscriber')
      }, () => { /* the command connection failed: the missing heartbeat says enough */ })
      .finally(() => { this.heartbeatInFlight = false })
  }

  private onHeartbeat (): void {
    if (!this.subscribed || this.closing) return
    this.heartbeatAt = this.progressAt = performance.now()
    this.armDeadline(this.silentAfterMs)
    if (this.isUp) return
    this.isUp = true
    this.opts.log?.info({ channel: this.channel }, 'invalidation subscription confirmed; trusting the in-process cache')
    this.opts.onSubscriptionChange(true)
    for (const wake of this.waiters) wake()
  }

  private tick (): void {
    if (this.closing) return
    if (this.subscribed) this.heartbeat()
    else if (this.opts.subscriber.status === 'ready') this.subscribe()
    // Down and getting nowhere (a reconnect that hangs, a subscribe without answer, heartbeats that
    // never arrive): replace the connection again. While ioredis waits to reconnect, leave it be.
    const status = this.opts.subscriber.status
    if (!this.isUp && performance.now() - this.progressAt >= this.silentAfterMs && status !== 'reconnecting' && status !== 'connecting') {
      this.reconnect()
    }
  }

  private onDeadline (): void {
    // Checked after this loop turn's I/O: if the event loop was blocked, the heartbeat that is
    // already waiting in the socket is read before the subscription is declared silent.
    setImmediate(() => {
      if (this.closing || !this.isUp) return
      const remaining = this.heartbeatAt + this.silentAfterMs - performance.now()
      if (remaining <= 0) this.silent(`no heartbeat for ${this.silentAfterMs} ms`)
      else this.armDeadline(remaining)
    })
  }

  private armDeadline (ms: number): void {
    clearTimeout(this.deadline)
    this.deadline = setTimeout(() => this.onDeadline(), Math.ceil(ms)).unref()
  }

  private silent (why: string): void {
    this.setDown(`invalidation subscription silent (${why}); not trusting the in-process cache and reconnecting`)
    this.reconnect()
  }

  private reconnect (): void {
    if (this.closing) return
    this.connection++
    this.subscribed = false
    this.progressAt = performance.now()
    const sub = this.opts.subscriber
    if (sub.status === 'end') sub.connect().catch(() => { /* retried on the next tick */ })
    else sub.disconnect(true)
  }

  private setDown (msg: string): void {
    if (!this.isUp) return
    this.isUp = false
    if (!this.closing) this.opts.log?.warn({ channel: this.channel }, msg)
    this.opts.onSubscriptionChange(false)
  }

  /** Sends the invalidation and resolves with how many replicas acknowledged it. */
  async broadcast (userIds: number[]): Promise<BroadcastResult> {
    const id = randomUUID()
    const entry: Pending = { acks: new Set(), expected: Number.POSITIVE_INFINITY, done: () => {} }
    const finished = new Promise<void>((resolve) => { entry.done = resolve })
    this.pending.set(id, entry)
    const timer = setTimeout(entry.done, this.opts.ackTimeoutMs)
    try {
      try {
        entry.expected = await this.opts.redis.publish(this.channel, JSON.stringify({ id, from: this.opts.replicaId, instance: this.instance, users: userIds }))
      } catch (err) {
        throw Object.assign(unavailable('redis'), { cause: err })
      }
      if (entry.acks.size >= entry.expected) entry.done()
      await finished
      return { acked: Math.min(entry.acks.size, entry.expected), expected: entry.expected }
    } finally {
      clearTimeout(timer)
      this.pending.delete(id)
    }
  }

  private onMessage (channel: string, message: string): void {
    if (channel === this.heartbeatChannel) {
      // Proof of life only: never an invalidation, never an ack.
      this.onHeartbeat()
      return
    }
    let msg: { id?: string, from?: string, instance?: string, users?: unknown, by?: string }
    try { msg = JSON.parse(message) } catch { return }
    if (channel === this.ackChannel) {
      const p = msg.id ? this.pending.get(msg.id) : undefined
      if (p && msg.by) this.ack(p, msg.by)
      return
    }
    if (channel !== this.channel || !Array.isArray(msg.users) || !msg.id || !msg.from) return
    if (msg.from === this.opts.replicaId && msg.instance === this.instance) {
      // Our own broadcast, counted by PUBLISH through our own subscription: ack it here, no round trip.
      const p = this.pending.get(msg.id)
      if (p) this.ack(p, this.opts.replicaId)
      return
    }
    this.opts.onInvalidate(msg.users.filter((u): u is number => Number.isInteger(u)))
    this.opts.redis.publish(`${this.opts.keyPrefix}invalidate-ack:${msg.from}`, JSON.stringify({ id: msg.id, by: this.opts.replicaId }))
      .catch((err: unknown) => this.opts.log?.warn({ err }, 'could not acknowledge an invalidation'))
  }

  private ack (p: Pending, by: string): void {
    p.acks.add(by)
    if (p.acks.size >= p.expected) p.done()
  }

  async close (): Promise<void> {
    this.closing = true
    clearInterval(this.ticker)
    clearTimeout(this.deadline)
    for (const wake of this.waiters) wake()
    for (const p of this.pending.values()) p.done()
  }
}
