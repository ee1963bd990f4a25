// Progress of a long seed on stderr: a redrawn bar on a terminal, a line every 5 s otherwise (so
// CI and `docker compose` logs stay readable).

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')

export type ProgressMode = 'bar' | 'lines' | 'off'

export class Progress {
  private readonly started = performance.now()
  private lastDraw = 0
  private lastLine = 0
  rows = 0
  users = 0
  constructor (private readonly totalUsers: number, private readonly mode: ProgressMode, private readonly log: (l: string) => void) {}
  update (force = false): void {
    if (this.mode === 'off') return
    const now = performance.now()
    const secs = (now - this.started) / 1000
    const frac = this.totalUsers > 0 ? this.users / this.totalUsers : 1
    const rate = secs > 0 ? this.rows / secs : 0
    const eta = frac > 0 && frac < 1 ? ` eta ${Math.round(secs / frac - secs)}s` : ''
    const text = `${(frac * 100).toFixed(1).padStart(5)}% users ${fmt(this.users)}/${fmt(this.totalUsers)} rows ${fmt(this.rows)} ${fmt(rate)} rows/s${eta}`
    if (this.mode === 'bar') {
      // at most 10 redraws a second: batches can finish far more often than that
      if (!force && now - this.lastDraw < 100) return
      this.lastDraw = now
      const width = 30
      const full = Math.round(frac * width)
      process.stderr.write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${text}\x1b[K`)
    } else {
      if (!force && now - this.lastLine < 5000) return
      this.lastLine = now
      this.log(`seed: ${text}`)
    }
  }

  done (): void {
    // leave the finished bar on its own line for whatever is printed next
    if (this.mode === 'bar') process.stderr.write('\n')
  }
}
