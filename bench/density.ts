/**
 * What local sandboxes cost the machine, measured from the outside: the memory (PSS, from
 * `/proc/<pid>/smaps_rollup`) of every process that exists only because a sandbox exists, i.e. the
 * descendants of this process that were not there before (the executor node process, bubblewrap,
 * slirp4netns…), and what a batch leaves behind (processes, directories). Linux only: elsewhere the
 * figures are NaN.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { descendantsOf } from "../packages/platform-node/src/internal/localProcesses.js"

/** Pids of every descendant of `root` (a /proc walk). */
export const descendants = (root: number = process.pid): Set<number> => new Set(descendantsOf(root))

/** A process's memory in bytes: `Rss` and `Pss` of `/proc/<pid>/smaps_rollup` (0 when it is gone). */
export const processMemory = (pid: number): { readonly rss: number; readonly pss: number } => {
  try {
    const rollup = Fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8")
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? 0) * 1024
    return { rss: field("Rss"), pss: field("Pss") }
  } catch {
    return { rss: 0, pss: 0 }
  }
}

/** The processes this process started since `before` (a `descendants()` snapshot), with their memory summed. */
export const newProcesses = (before: ReadonlySet<number>) => {
  const pids = [...descendants()].filter((pid) => !before.has(pid))
  const memory = pids.map(processMemory)
  const names = pids.map((pid) => {
    try {
      return Fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim()
    } catch {
      return "?"
    }
  })
  return {
    pids,
    names,
    rss: memory.reduce((sum, m) => sum + m.rss, 0),
    pss: memory.reduce((sum, m) => sum + m.pss, 0)
  }
}

/** The directories of `ids` still under `baseDir`. */
export const leftDirectories = (baseDir: string, ids: ReadonlyArray<string>): Array<string> =>
  ids.filter((id) => Fs.existsSync(Path.join(baseDir, id)))
