import type { Registry } from 'prom-client'

// Histograms and counters whose labelled series are found through one Map per label (no key is
// built or hashed), so that an observation on the request path is a lookup and an array increment.
// prom-client validates and hashes the labels on every observation, even through a `labels()`
// child: the three per request of an LRU hit were about 8 % of its main-thread CPU
// (bench/README.md). What these expose is prom-client's own text: they are registered on its
// registry, which formats what `get()` returns as it formats its own metrics.

interface SeriesValue { labels: Record<string, string | number>, sharedLabels: Record<string, string>, value: number, metricName: string }

abstract class SeriesMetric<L extends string, S extends { reset(): void }> {
  abstract readonly type: 'histogram' | 'counter'
  readonly aggregator = 'sum'
  private readonly all: Array<{ labels: Record<string, string>, s: S }> = []
  /** label values, one Map level per label, down to the series: a lookup builds no key */
  private readonly index = new Map<string, unknown>()

  constructor (readonly name: string, readonly help: string, private readonly labelNames: readonly L[], registers: Registry[]) {
    for (const r of registers) r.registerMetric(this as never)
  }

  /** The series for these label values, in `labelNames` order. */
  series (...values: string[]): S {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected labels ${this.labelNames.join(', ')}`)
    let level = this.index
    for (let i = 0; i < values.length - 1; i++) {
      let next = level.get(values[i]!) as Map<string, unknown> | undefined
      if (next === undefined) level.set(values[i]!, next = new Map())
      level = next
    }
    const last = values[values.length - 1]!
    let s = level.get(last) as S | undefined
    if (s === undefined) {
      s = this.create()
      level.set(last, s)
      this.all.push({ labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i] as string])), s })
    }
    return s
  }

  protected abstract create (): S
  protected abstract values (s: S, labels: Record<string, string>): SeriesValue[]

  get (): { name: string, help: string, type: string, aggregator: string, values: SeriesValue[] } {
    const values = this.all.flatMap((e) => this.values(e.s, e.labels))
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    for (const e of this.all) e.s.reset()
  }
}

export class HistogramSeries {
  /** per bucket, not cumulative; past the last bound only `count` grows (the +Inf bucket) */
  readonly counts: Float64Array
  sum = 0
  count = 0

  constructor (private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length)
  }

  observe (value: number): void {
    const b = this.bounds
    for (let i = 0; i < b.length; i++) {
      if (value <= b[i]!) { this.counts[i]!++; break }
    }
    this.sum += value
    this.count++
  }

  reset (): void {
    this.counts.fill(0)
    this.sum = 0
    this.count = 0
  }
}

export class SeriesHistogram<L extends string> extends SeriesMetric<L, HistogramSeries> {
  readonly type = 'histogram'
  private readonly bounds: readonly number[]

  constructor (o: { name: string, help: string, labelNames: readonly L[], buckets: readonly number[], registers: Registry[] }) {
    super(o.name, o.help, o.labelNames, o.registers)
    this.bounds = [...o.buckets].sort((a, b) => a - b)
  }

  protected create (): HistogramSeries { return new HistogramSeries(this.bounds) }

  protected values (s: HistogramSeries, labels: Record<string, string>): SeriesValue[] {
    const bucket = `${this.name}_bucket`
    let acc = 0
    const out: SeriesValue[] = this.bounds.map((le, i) => {
      acc += s.counts[i]!
      return { labels: { le }, sharedLabels: labels, value: acc, metricName: bucket }
    })
    out.push(
      { labels: { le: '+Inf' }, sharedLabels: labels, value: s.count, metricName: bucket },
      { labels: {}, sharedLabels: labels, value: s.sum, metricName: `${this.name}_sum` },
      { labels: {}, sharedLabels: labels, value: s.count, metricName: `${this.name}_count` }
    )
    return out
  }
}

export class CounterSeries {
  value = 0
  inc (n = 1): void { this.value += n }
  reset (): void { this.value = 0 }
}

export class SeriesCounter<L extends string> extends SeriesMetric<L, CounterSeries> {
  readonly type = 'counter'

  constructor (o: { name: string, help: string, labelNames: readonly L[], registers: Registry[] }) {
    super(o.name, o.help, o.labelNames, o.registers)
  }

  protected create (): CounterSeries { return new CounterSeries() }

  protected values (s: CounterSeries, labels: Record<string, string>): SeriesValue[] {
    return [{ labels: {}, sharedLabels: labels, value: s.value, metricName: this.name }]
  }
}
