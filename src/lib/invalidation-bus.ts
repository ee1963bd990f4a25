import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { unavailable } from './errors.ts'

export interface BroadcastResult { acked: number, expected: number }

export interface InvalidationBusOptions {
  /** the command connection (publishes) */
  redis: Redis
  /** a dedicated connection in subscriber mode */
  subscriber: Redis
  keyPrefix: string
  replicaId: string
  ackTimeoutMs: number
  /** drop the users locally; must be synchronous so the ack means "done" */
  onInvalidate: (userIds: number[]) => void
  /** the subscription went down (true) or is back and complete (false) */
  onSubscriptionChange: (up: boolean) => void
  log?: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

interface Pending { acks: Set<string>, expected: number, done: () => void }

/** Broadcasts invalidations to every replica over Redis pub/sub and waits for their acks.
 *  PUBLISH returns how many subscribers received the message, which is how many acks to expect;
 *  every replica (the sender too) acks on the sender's own ack channel once it has dropped the
 *  entries, and the sender answers when all acks are in or the timeout passes. */
export class InvalidationBus {
  private readonly channel: string
  private readonly ackChannel: string
  private readonly pending = new Map<string, Pending>()
  private subscribed = false
  private closing = false

  constructor (private readonly opts: InvalidationBusOptions) {
    this.channel = `${opts.keyPrefix}invalidate`
    this.ackChannel = `${opts.keyPrefix}invalidate-ack:${opts.replicaId}`
  }

  get up (): boolean { return this.subscribed }

  async start (): Promise<void> {
    const sub = this.opts.subscriber
    sub.on('message', (channel: string, message: string) => this.onMessage(channel, message))
    sub.on('close', () => {
      if (!this.subscribed) return
      this.subscribed = false
      if (!this.closing) this.opts.log?.warn({ channel: this.channel }, 'invalidation subscription lost; not trusting the in-process cache until it is back')
      this.opts.onSubscriptionChange(false)
    })
    sub.on('ready', () => {
      if (this.closing || this.subscribed) return
      this.subscribe().catch((err: unknown) => this.opts.log?.warn({ err }, 'resubscribe failed; will retry on the next reconnect'))
    })
    await this.subscribe()
  }

  private async subscribe (): Promise<void> {
    await this.opts.subscriber.subscribe(this.channel, this.ackChannel)
    if (this.subscribed) return
    this.subscribed = true
    this.opts.onSubscriptionChange(true)
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
        entry.expected = await this.opts.redis.publish(this.channel, JSON.stringify({ id, from: this.opts.replicaId, users: userIds }))
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
    let msg: { id?: string, from?: string, users?: unknown, by?: string }
    try { msg = JSON.parse(message) } catch { return }
    if (channel === this.ackChannel) {
      const p = msg.id ? this.pending.get(msg.id) : undefined
      if (p && msg.by) {
        p.acks.add(msg.by)
        if (p.acks.size >= p.expected) p.done()
      }
      return
    }
    if (channel !== this.channel || !Array.isArray(msg.users) || !msg.id || !msg.from) return
    this.opts.onInvalidate(msg.users.filter((u): u is number => Number.isInteger(u)))
    this.opts.redis.publish(`${this.opts.keyPrefix}invalidate-ack:${msg.from}`, JSON.stringify({ id: msg.id, by: this.opts.replicaId }))
      .catch((err: unknown) => this.opts.log?.warn({ err }, 'could not acknowledge an invalidation'))
  }

  async close (): Promise<void> {
    this.closing = true
    for (const p of this.pending.values()) p.done()
  }
}
