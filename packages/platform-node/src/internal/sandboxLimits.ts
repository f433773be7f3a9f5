/**
 * Resource limits of local sandboxes through cgroups: one `effect-koyeb-<sandbox id>` cgroup per
 * controller, made below this process's own cgroup (so the limits of whoever runs us still
 * hold), joined by a tiny `sh` before it execs the sandbox's first process, so every process of
 * the sandbox is in it from the start. cgroup v1 (`memory`, `pids` hierarchies) and cgroup v2
 * (when this process's cgroup delegates `memory` / `pids`); where neither works the limits are
 * reported as not applied.
 *
 * @internal
 */
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { exists } from "./processGroups.js"
import type { InstanceLimits } from "./sandboxStart.js"

/** The limits a sandbox got: each undefined when it could not be applied (`detail` says why). */
export interface AppliedLimits {
  readonly instanceType: string
  readonly memoryBytes: number | undefined
  readonly processes: number | undefined
  /** Why a limit was not applied; absent when both were. */
  readonly detail?: string | undefined
}

/** The cgroups of one sandbox. */
export interface SandboxCgroups {
  /** The limits set, before any process joined them (`joined` tells what a process got). */
  readonly applied: AppliedLimits
  /** The limits `pid` (started through `wrap`) is under. */
  readonly joined: (pid: number) => AppliedLimits
  /** Prefixes a command so that it runs inside the cgroups (where it may join them). */
  readonly wrap: (argv: ReadonlyArray<string>) => ReadonlyArray<string>
  /** Removes the cgroups once their processes are gone (retried for a while). */
  readonly remove: Effect.Effect<void>
}

const ROOT = "/sys/fs/cgroup"
const PREFIX = "effect-koyeb-"

/** `hierarchy-id:controllers:path` lines of /proc/<pid>/cgroup; empty when it cannot be read (gone). */
const cgroupsOf = (
  pid: number | "self"
): ReadonlyArray<{ readonly controllers: ReadonlyArray<string>; readonly path: string }> => {
  try {
    return Fs.readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").filter((line) => line !== "").map((line) => {
      const [, controllers = "", ...rest] = line.split(":")
      return { controllers: controllers.split(","), path: rest.join(":") }
    })
  } catch {
    return []
  }
}

/** The cgroup v2 line of /proc/<pid>/cgroup (`0::path`). */
const isUnified = (entry: { readonly controllers: ReadonlyArray<string> }): boolean =>
  entry.controllers.length === 1 && entry.controllers[0] === ""

interface Controller {
  readonly name: "memory" | "pids"
  readonly v2: boolean
  /** Where this process's cgroup of the controller is, on this host. */
  readonly parent: string
  readonly limitFile: string
}

/** The parent cgroup directory of each controller, v1 first, else v2. */
const detect = (): ReadonlyArray<Controller> => {
  const own = cgroupsOf("self")
  const found: Array<Controller> = []
  for (const [name, limitFile] of [["memory", "memory.limit_in_bytes"], ["pids", "pids.max"]] as const) {
    const v1 = own.find((entry) => entry.controllers.includes(name))
    // The parent must be visible here (not so without a cgroup namespace inside a container).
    const parent = v1 === undefined ? undefined : Path.join(ROOT, name, v1.path)
    if (parent !== undefined && Fs.existsSync(Path.join(parent, "cgroup.procs"))) {
      found.push({ name, v2: false, parent, limitFile })
    }
  }
  const v2 = own.find(isUnified)
  if (v2 !== undefined && Fs.existsSync(Path.join(ROOT, v2.path, "cgroup.controllers"))) {
    const parent = Path.join(ROOT, v2.path)
    let delegated: ReadonlyArray<string> = []
    try {
      delegated = Fs.readFileSync(Path.join(parent, "cgroup.subtree_control"), "utf8").trim().split(/\s+/)
    } catch {
      // not readable: nothing delegated
    }
    for (const [name, limitFile] of [["memory", "memory.max"], ["pids", "pids.max"]] as const) {
      if (!found.some((c) => c.name === name) && delegated.includes(name)) {
        found.push({ name, v2: true, parent, limitFile })
      }
    }
  }
  return found
}

let detected: ReadonlyArray<Controller> | undefined

/** The controllers available to this process (looked up once per process, like its cgroup). */
const controllers = (): ReadonlyArray<Controller> => detected ??= detect()

const swept = new Set<string>()

/**
 * Removes the cgroups of owners that died without removing them (`<prefix><owner pid>-<id>`), once
 * empty; once per process and parent, as the sandbox directories of dead owners are.
 */
const sweep = (parent: string) => {
  if (swept.has(parent)) return
  swept.add(parent)
  let names: Array<string>
  try {
    names = Fs.readdirSync(parent).filter((name) => name.startsWith(PREFIX))
  } catch {
    return
  }
  for (const name of names) {
    const owner = Number(name.slice(PREFIX.length).split("-")[0])
    if (!Number.isInteger(owner) || exists(owner)) continue
    try {
      Fs.rmdirSync(Path.join(parent, name))
    } catch {
      // still has processes, or already gone
    }
  }
}

/** Makes the cgroups of sandbox `id` with `limits` (and sweeps those of owners that died). */
export const make = (id: string, limits: InstanceLimits): SandboxCgroups => {
  const valueOf = (kind: "memory" | "pids") => kind === "memory" ? limits.memoryBytes : limits.processes
  const made: Array<string> = []
  const failures: Array<string> = []
  const set: Array<Controller> = []
  const available = controllers()
  const name = `${PREFIX}${process.pid}-${id}`
  for (const kind of ["memory", "pids"] as const) {
    const controller = available.find((c) => c.name === kind)
    if (controller === undefined) {
      failures.push(`no ${kind} cgroup controller available to this process`)
      continue
    }
    sweep(controller.parent)
    const dir = Path.join(controller.parent, name)
    try {
      if (!made.includes(dir) && !Fs.existsSync(dir)) Fs.mkdirSync(dir)
      Fs.writeFileSync(Path.join(dir, controller.limitFile), String(valueOf(kind)))
      if (!made.includes(dir)) made.push(dir)
      set.push(controller)
    } catch (cause) {
      failures.push(`cannot set ${controller.limitFile} in ${dir}: ${(cause as Error).message}`)
      if (!made.includes(dir)) Fs.rmdir(dir, () => undefined)
    }
  }
  // Joining is checked afterwards (`joined`): a cgroup this process may make but not enter costs the limit, not the sandbox.
  const join = made.map((dir) => `echo $$ > ${ShellCommand.argv([Path.join(dir, "cgroup.procs")]).line}`).join("; ")
  const removeOnce = Effect.sync(() =>
    made.every((dir) => {
      try {
        Fs.rmdirSync(dir)
        return true
      } catch (cause) {
        return (cause as NodeJS.ErrnoException).code === "ENOENT"
      }
    })
  )
  const report = (applied: ReadonlyArray<Controller>, more: ReadonlyArray<string>): AppliedLimits => {
    const all = [...failures, ...more]
    return {
      instanceType: limits.instanceType,
      memoryBytes: applied.some((c) => c.name === "memory") ? limits.memoryBytes : undefined,
      processes: applied.some((c) => c.name === "pids") ? limits.processes : undefined,
      ...(all.length === 0 ? {} : { detail: all.join("; ") })
    }
  }
  return {
    applied: report(set, []),
    joined: (pid) => {
      const entries = cgroupsOf(pid)
      const inside = (c: Controller) =>
        entries.some((entry) =>
          (c.v2 ? isUnified(entry) : entry.controllers.includes(c.name)) && entry.path.endsWith(`/${name}`)
        )
      const joined = set.filter(inside)
      return report(joined, set.filter((c) => !joined.includes(c)).map((c) => `cannot join the ${c.name} cgroup`))
    },
    wrap: (argv) => made.length === 0 ? argv : ["/bin/sh", "-c", `{ ${join}; } 2>/dev/null; exec "$@"`, "sh", ...argv],
    // The last processes of a PID namespace may outlive its init by a moment (a few ms): tried
    // again after 1, 2, 4… ms, then every 25 ms, ~2 s in all.
    remove: removeOnce.pipe(
      Effect.repeat({
        schedule: Schedule.union(Schedule.exponential("1 millis"), Schedule.spaced("25 millis")),
        until: (done) => done,
        times: 80
      }),
      Effect.asVoid
    )
  }
}
