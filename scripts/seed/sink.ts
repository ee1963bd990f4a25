// Rows on their way to MySQL, already formatted for the load method, so that generation (CPU) and
// loading (network) can overlap: a Batch is finished text, ready for any idle connection.

/** 'infile': LOAD DATA LOCAL INFILE text (TSV); 'insert': multi-row INSERT statements. */
export type Method = 'infile' | 'insert'

/** A MySQL string literal; only for INSERT (the TSV of LOAD DATA is loaded with ESCAPED BY ''). */
export const sqlStr = (s: string): string => `'${s.replace(/[\\']/g, (c) => '\\' + c)}'`

/** Rows of one table: TSV for LOAD DATA, or INSERT statements of about 1 MB. */
export class Sink {
  rows = 0
  readonly parts: string[] = []
  private cur = ''
  private curRows = 0
  constructor (readonly table: string, readonly columns: readonly string[], readonly method: Method) {}
  /** `fields` already formatted for the method (numbers as text; strings quoted for INSERT) */
  add (fields: string): void {
    this.rows++
    if (this.method === 'infile') {
      this.cur += fields + '\n'
      return
    }
    this.cur += this.curRows === 0 ? `(${fields})` : `,(${fields})`
    if (++this.curRows >= 20_000 || this.cur.length >= 1_000_000) this.flush()
  }

  flush (): void {
    if (this.cur.length === 0) return
    this.parts.push(this.method === 'infile'
      ? this.cur
      : `INSERT INTO ${this.table} (${this.columns.join(', ')}) VALUES ${this.cur}`)
    this.cur = ''
    this.curRows = 0
  }
}

/** One table's finished rows; `users` is how many users it completes, for the progress line. */
export interface Batch { table: string, columns: readonly string[], rows: number, parts: string[], users: number }
