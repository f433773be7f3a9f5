/**
 * The host side of local sandboxes' processes: a registry of live executors, killed synchronously
 * (whole process trees, directories removed) on exit and on an unhandled SIGINT/SIGTERM; finding
 * the processes of a sandbox directory, including those that left the executor's tree; and the
 * sweeping of directories whose owner was SIGKILLed.
 *
 * @internal
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { exists, processList, signal } from "./processGroups.js"

export { signal }

/** A live executor process and the directory of its sandbox. */
export interface Child {
  readonly pid: number
  readonly dir: string
}

const children = new Map<number, Child>()
let hooksInstalled = false

/** Tracks a live child: it is killed, and its directory removed, if this process goes away first. */
export const register = (child: Child): void => {
  installHooks()
  children.set(child.pid, child)
}

/** Stops tracking a child (it exited, or is being killed). */
export const unregister = (pid: number): void => {
  children.delete(pid)
}

/** Pids of every descendant of `pid` (Linux /proc walk; empty elsewhere). */
export const descendantsOf = (pid: number): Array<number> => {
  const parentOf = new Map<number, Array<number>>()
  for (const p of processList() ?? []) {
    const list = parentOf.get(p.ppid)
    if (list) list.push(p.pid)
    else parentOf.set(p.ppid, [p.pid])
  }
  const out: Array<number> = []
  const stack = [pid]
  while (stack.length > 0) {
    for (const c of parentOf.get(stack.pop()!) ?? []) {
      out.push(c)
      stack.push(c)
    }
  }
  return out
}

/**
 * Live processes of the sandbox in `dir`, found by working directory or `TMPDIR` inside it: this
 * also catches those that left the executor's tree (setsid, double fork) and were reparented.
 */
export const processesIn = (dir: string): Array<number> => {
  const tmpdir = `\0TMPDIR=${dir}/`
  const out: Array<number> = []
  for (const p of processList() ?? []) {
    if (p.pid === process.pid || p.state === "Z") continue
    try {
      const cwd = Fs.readlinkSync(`/proc/${p.pid}/cwd`)
      if (
        cwd === dir || cwd.startsWith(`${dir}/`) ||
        `\0${Fs.readFileSync(`/proc/${p.pid}/environ`, "latin1")}`.includes(tmpdir)
      ) {
        out.push(p.pid)
      }
    } catch {
      // gone, or not readable: not ours
    }
  }
  return out
}

/** SIGKILLs the process group of `child` and every descendant (including those that left the group). */
export const killTreeSync = (child: Child): void => {
  const descendants = descendantsOf(child.pid)
  signal(-child.pid, "SIGKILL")
  signal(child.pid, "SIGKILL")
  for (const pid of descendants) signal(pid, "SIGKILL")
}

/** Removes a directory tree, best effort. */
export const removeDirSync = (dir: string): void => {
  try {
    Fs.rmSync(dir, { recursive: true, force: true })
  } catch {
    // best effort at exit
  }
}

// Directories kept by a kill for a later start (a sleeping sandbox): they go with this process too.
const keptDirs = new Set<string>()

/** Tracks (`true`) or forgets the directory of a sleeping sandbox, removed if this process goes away first. */
export const keepDir = (dir: string, kept: boolean): void => {
  if (kept) {
    installHooks()
    keptDirs.add(dir)
  } else {
    keptDirs.delete(dir)
  }
}

const killAllSync = (): void => {
  for (const child of children.values()) {
    killTreeSync(child)
    removeDirSync(child.dir)
  }
  children.clear()
  for (const dir of keptDirs) removeDirSync(dir)
  keptDirs.clear()
}

const onSignal = (sig: NodeJS.Signals) => {
  const handler = (): void => {
    // Another listener (e.g. NodeRuntime.runMain) owns the shutdown: let it run finalizers, which
    // stop each sandbox gracefully; the exit hook still catches whatever is left. This handler
    // runs first (prepended), while that listener is still registered: runMain removes its own
    // listeners as soon as it handles a signal, so a second signal during the shutdown ends up here.
    if (process.listeners(sig).some((listener) => listener !== handler)) return
    process.removeListener(sig, handler)
    killAllSync()
    process.kill(process.pid, sig)
  }
  return handler
}

const installHooks = (): void => {
  if (hooksInstalled) return
  hooksInstalled = true
  process.on("exit", killAllSync)
  process.prependListener("SIGINT", onSignal("SIGINT"))
  process.prependListener("SIGTERM", onSignal("SIGTERM"))
}

// A parent killed by SIGKILL cannot remove its directories: the next program using the same
// base directory removes those whose owner is gone.

/** The file of a sandbox directory that holds the pid of the process owning it. */
export const OWNER_FILE = "owner.pid"
const swept = new Set<string>()

/** Removes, once per process and base directory, the sandbox directories whose owner is dead. */
export const sweepOrphans = (baseDir: string): void => {
  if (swept.has(baseDir)) return
  swept.add(baseDir)
  let entries: Array<string>
  try {
    entries = Fs.readdirSync(baseDir)
  } catch {
    return
  }
  for (const entry of entries) {
    const dir = Path.join(baseDir, entry)
    try {
      const owner = Number(Fs.readFileSync(Path.join(dir, OWNER_FILE), "utf8"))
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && !exists(owner)) {
        Fs.rmSync(dir, { recursive: true, force: true })
      }
    } catch {
      // not a sandbox directory, or removed concurrently
    }
  }
}
