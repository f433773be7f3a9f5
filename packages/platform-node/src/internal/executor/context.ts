/**
 * What the executor's endpoint handlers share: the server's configuration and state.
 *
 * @internal
 */
import type * as GoFiles from "../goFiles.js"
import type { ProcessGroups } from "../processGroups.js"
import type { ProcessTable } from "../processTable.js"

/** The port the TCP proxy forwards to (a string, unvalidated, as in the stock). */
export interface PortBinding {
  current: string | undefined
}

/** Everything the handlers need. */
export interface AppContext {
  readonly secret: string
  readonly cwd: string
  readonly baseEnv: Readonly<Record<string, string>>
  readonly maxBodyBytes: number
  readonly groups: ProcessGroups
  readonly processes: ProcessTable
  readonly files: GoFiles.GoFiles
  readonly binding: PortBinding
}
