import t from 'tap'
import { CircuitBreaker, type BreakerState } from '../src/lib/circuit-breaker.ts'

const setup = () => {
  let now = 0
  const states: BreakerState[] = []
  const breaker = new CircuitBreaker({ name: 'dep', failureThreshold: 3, cooldownMs: 1000, now: () => now, onStateChange: (s) => states.push(s) })
  return { breaker, states, advance: (ms: number) => { now += ms } }
}
const fail = () => Promise.reject(new Error('down'))
const ok = () => Promise.resolve('up')

t.test('opens after consecutive failures and then fails fast without calling the dependency', async (t) => {
  const { breaker, states } = setup()
  for (let i = 0; i < 3; i++) await t.rejects(breaker.run(fail), /down/)
  t.equal(breaker.current, 'open')
  let called = false
  await t.rejects(breaker.run(async () => { called = true }), { code: 'REC_ERR_UNAVAILABLE', statusCode: 503 })
  t.notOk(called)
  t.same(states, ['open'])
})

t.test('a success resets the failure count', async (t) => {
  const { breaker } = setup()
  await t.rejects(breaker.run(fail))
  await t.rejects(breaker.run(fail))
  await breaker.run(ok)
  await t.rejects(breaker.run(fail))
  t.equal(breaker.current, 'closed')
})

t.test('after the cooldown one probe goes through: success closes, failure reopens', async (t) => {
  const { breaker, states, advance } = setup()
  for (let i = 0; i < 3; i++) await t.rejects(breaker.run(fail))
  advance(1000)
  t.equal(breaker.current, 'half-open')
  await t.rejects(breaker.run(fail))
  t.equal(breaker.current, 'open', 'a failed probe reopens')
  advance(999)
  t.equal(breaker.current, 'open', 'for a whole new cooldown')
  advance(1)
  let release: () => void = () => {}
  const probe = breaker.run(() => new Promise<string>((resolve) => { release = () => resolve('up') }))
  await t.rejects(breaker.run(ok), { code: 'REC_ERR_UNAVAILABLE' }, 'only one probe at a time')
  release()
  t.equal(await probe, 'up')
  t.equal(breaker.current, 'closed')
  t.same(states, ['open', 'half-open', 'open', 'half-open', 'closed'])
})
