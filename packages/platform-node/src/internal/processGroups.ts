/**
 * Spawning of executor commands (`sh -c`, stdin `/dev/null`, own process group) and the registry
 * of the process groups the server started, so that kills and shutdown reach every descendant.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"

/** A command as the executor receives it, after validation. */
export interface CommandSpec {
  readonly cmd: string
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
}

/** How a command ended: its exit code, or -1 when the shell died from a signal. */
export interface CommandExit {
  readonly code: number
  readonly signaled: boolean
}

/** A started command with piped stdout and stderr. */
export interface Spawned {
  readonly child: ChildProcess.ChildProcessWithoutNullStreams
  readonly pid: number
}

// Go's wording for the errno values a fork/exec of `sh` can fail with
const spawnErrors: Record<string, string> = {
  E2BIG: "argument list too long",
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EAGAIN: "resource temporarily unavailable",
  ENOMEM: "cannot allocate memory"
}

/** The text of a spawn failure, shaped like Go's `fork/exec /usr/bin/sh: <errno text>`. */
export const spawnErrorText = (cause: unknown): string => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  const text = code !== undefined ? spawnErrors[code] : undefined
  return `fork/exec /usr/bin/sh: ${text ?? (cause instanceof Error ? cause.message : String(cause))}`
}

const isGroupAlive = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch (e) {
    // EPERM: a member changed its credentials, it still exists
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * The groups among `pgids` that still have a live member. `kill(-pgid, 0)` also succeeds while only
 * zombies are left: a member orphaned by the group's leader is reparented to init and stays a
 * zombie until init reaps it, which some inits do late and a plain PID 1 (a container's own
 * program) never does. On Linux, /proc tells them apart; elsewhere a zombie counts as alive.
 */
const liveGroups = (pgids: ReadonlyArray<number>): Array<number> => {
  const existing = pgids.filter(isGroupAlive)
  if (existing.length === 0) return existing
  let entries: Array<string>
  try {
    entries = Fs.readdirSync("/proc")
  } catch {
    return existing
  }
  const wanted = new Set(existing)
  const live = new Set<number>()
  for (const entry of entries) {
    if (!/^[0-9]+$/.test(entry)) continue
    let stat: string
    try {
      stat = Fs.readFileSync(`/proc/${entry}/stat`, "latin1")
    } catch {
      continue // exited meanwhile, or not ours to read
    }
    // The command name may contain spaces and parentheses: fields follow the last ")" (state, ppid, pgrp, …).
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ", 3)
    if (state !== "Z" && state !== "X" && wanted.has(Number(pgrp))) live.add(Number(pgrp))
  }
  // A group only this process cannot signal (EPERM) may have members /proc hides: keep it.
  return existing.filter((pgid) => live.has(pgid) || !isSignalable(pgid))
}

const isSignalable = (pgid: number): boolean => {
  try {
    process.kill(-pgid, 0)
    return true
  } catch {
    return false
  }
}

const signalGroup = (pgid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pgid, signal)
  } catch {
    // the group is gone
  }
}

/** The registry of the process groups started by one server. */
export interface ProcessGroups {
  /** Starts `sh -c cmd` as the leader of a new process group; fails with the spawn error text. */
  readonly spawn: (spec: CommandSpec) => Effect.Effect<Spawned, string>
  /** SIGTERM to the group, then SIGKILL once the grace period has passed and the group still exists. */
  readonly kill: (pgid: number) => Effect.Effect<void>
  /** Kills every group still alive (shutdown). */
  readonly killAll: Effect.Effect<void>
}

const pollInterval = Duration.millis(25)

/** Creates a registry; groups whose members are all gone are forgotten on the next spawn. */
export const make = (gracePeriod: Duration.Duration): ProcessGroups => {
  const groups = new Set<number>()

  const prune = () => {
    for (const pgid of groups) if (!isGroupAlive(pgid)) groups.delete(pgid)
  }

  const killGroups = (pgids: ReadonlyArray<number>) =>
    Effect.gen(function*() {
      for (const pgid of pgids) signalGroup(pgid, "SIGTERM")
      const deadline = Date.now() + Duration.toMillis(gracePeriod)
      let alive = liveGroups(pgids)
      while (alive.length > 0 && Date.now() < deadline) {
        yield* Effect.sleep(pollInterval)
        alive = liveGroups(alive)
      }
      for (const pgid of alive) signalGroup(pgid, "SIGKILL")
      const left = new Set(liveGroups(pgids))
      for (const pgid of pgids) if (!left.has(pgid)) groups.delete(pgid)
    }).pipe(Effect.uninterruptible)

  return {
    spawn: (spec) =>
      Effect.suspend(() => {
        prune()
        let child: ChildProcess.ChildProcessWithoutNullStreams
        try {
          child = ChildProcess.spawn("sh", ["-c", spec.cmd], {
            cwd: spec.cwd,
            env: spec.env,
            stdio: ["ignore", "pipe", "pipe"],
            detached: true
          }) as unknown as ChildProcess.ChildProcessWithoutNullStreams
        } catch (cause) {
          return Effect.fail(spawnErrorText(cause))
        }
        if (child.pid === undefined) {
          // the error event follows on the next tick; wait for its errno
          return Effect.async<never, string>((resume) => {
            child.once("error", (cause) => resume(Effect.fail(spawnErrorText(cause))))
          })
        }
        // later errors (e.g. a failed kill) must not crash the server
        child.on("error", () => {})
        groups.add(child.pid)
        return Effect.succeed({ child, pid: child.pid })
      }),
    kill: (pgid) => killGroups([pgid]),
    killAll: Effect.suspend(() => killGroups([...groups]))
  }
}

/** Resolves when the child has exited (not waiting for its pipes). */
export const awaitExit = (child: ChildProcess.ChildProcess): Effect.Effect<CommandExit> =>
  Effect.async<CommandExit>((resume) => {
    const done = (code: number | null, signal: NodeJS.Signals | null) =>
      resume(
        Effect.succeed(signal !== null || code === null ? { code: -1, signaled: true } : { code, signaled: false })
      )
    if (child.exitCode !== null || child.signalCode !== null) {
      done(child.exitCode, child.signalCode)
      return
    }
    child.once("exit", done)
    return Effect.sync(() => child.off("exit", done))
  })
