// Scrapers see the same text from our resolved-once series as from prom-client's own metrics: same
// family, same samples in the same order, same labels and values, after the same observations.
import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { SeriesCounter, SeriesHistogram } from '../src/lib/prom-series.ts'

const buckets = [0.001, 0.005, 0.01, 0.1, 1]
const observations: Array<[string, string, number]> = [
  ['GET', '200', 0.0004], ['GET', '200', 0.001], ['GET', '200', 0.02], ['GET', '404', 3],
  ['POST', '200', 0.5], ['GET', '200', 0.0099], ['POST', '200', 12]
]

t.test('a histogram exposes what a prom-client Histogram exposes', async (t) => {
  const ours = new Registry()
  const theirs = new Registry()
  const h = new SeriesHistogram({ name: 'd_seconds', help: 'durations', labelNames: ['method', 'status'], buckets, registers: [ours] })
  const p = new Histogram({ name: 'd_seconds', help: 'durations', labelNames: ['method', 'status'], buckets, registers: [theirs] })
  for (const [m, s, v] of observations) {
    h.series(m, s).observe(v)
    p.labels(m, s).observe(v)
  }
  t.equal(await ours.metrics(), await theirs.metrics())
  t.equal(h.series('GET', '200'), h.series('GET', '200'), 'a series is resolved once')
  t.throws(() => h.series('GET'), /expected labels method, status/)
})

t.test('a counter exposes what a prom-client Counter exposes', async (t) => {
  const ours = new Registry()
  const theirs = new Registry()
  const c = new SeriesCounter({ name: 'answers_total', help: 'answers', labelNames: ['tier', 'status'], registers: [ours] })
  const p = new Counter({ name: 'answers_total', help: 'answers', labelNames: ['tier', 'status'], registers: [theirs] })
  for (const [tier, status] of [['HIT-L1', '200'], ['MISS', '200'], ['HIT-L1', '200'], ['MISS', '404']] as const) {
    c.series(tier, status).inc()
    p.labels(tier, status).inc()
  }
  c.series('HIT-L1', '200').inc(5)
  p.labels('HIT-L1', '200').inc(5)
  t.equal(await ours.metrics(), await theirs.metrics())
  ours.resetMetrics()
  theirs.resetMetrics()
  // prom-client forgets its series on reset; ours keeps them at zero, as a scraper would read a
  // restarted counter. Only the values are compared.
  t.match(await ours.metrics(), /answers_total\{tier="HIT-L1",status="200"\} 0/)
})
