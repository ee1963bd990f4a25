import { realpathSync } from 'node:fs'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** True when the module at `moduleUrl` is the script node was started with (tsx or compiled),
 *  so a script can be both a CLI and a library that tests import. */
export function isMain (moduleUrl: string): boolean {
  const arg = process.argv[1]
  if (!arg) return false
  try {
    return realpathSync(fileURLToPath(moduleUrl)) === realpathSync(resolve(arg))
  } catch {
    return false
  }
}
