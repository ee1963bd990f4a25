import { unavailable } from './errors.ts'

/** Races a dependency call against a deadline. The underlying call may still finish later; its
 *  result is dropped, which is what a caller that has already answered wants. */
export function withTimeout<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(Object.assign(unavailable(what), { cause: new Error(`${what} timed out after ${ms} ms`) })), ms)
  })
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer))
}
