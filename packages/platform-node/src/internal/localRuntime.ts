/**
 * Runs one executor process per local sandbox: root directory, spawn (optionally inside
 * bubblewrap), readiness, and a kill that takes the whole process tree down. Children never
 * outlive this process: they are tracked in a registry that is killed synchronously on exit and
 * on an unhandled SIGINT/SIGTERM; `--die-with-parent` (bubblewrap) or `EFFECT_KOYEB_PARENT_PID`
 * (no isolation) covers a crash of this process.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { executorCommand } from "./executorCommand.js"
import * as Processes from "./localProcesses.js"

/** How a local sandbox is isolated from the host. */
export type Isolation = "none" | "bubblewrap"

/** The isolation a caller asks for: `"auto"` picks bubblewrap when it works on this machine. */
export type IsolationOption = Isolation | "auto"

/** A running executor of one local sandbox. */
export interface LocalExecutorProcess {
  readonly id: string
  /** Host directory holding the sandbox's `home` and `tmp`. */
  readonly dir: string
  /** Executor base URL on loopback. */
  readonly url: string
  readonly port: number
  /** The executor's TCP proxy port (what `/bind_port` forwards). */
  readonly proxyPort: number
  /** Pid of the spawned process (the executor, or the outer `bwrap`); leader of its process group. */
  readonly pid: number
  readonly secret: Redacted.Redacted<string>
  readonly isolation: Isolation
  /** Home directory of the sandbox as commands see it (their default cwd and `HOME`). */
  readonly home: string
  /** Kills the whole process tree and removes the directory. Idempotent. */
  readonly kill: Effect.Effect<void>
  /** Completes when the process has exited (killed or crashed). */
  readonly exited: Effect.Effect<void>
}

/**
 * Why an executor did not start: the isolation asked for does not work here, its directory could
 * not be made, the process could not be spawned, it exited or did not announce itself in time,
 * or it does not answer `/health`.
 */
export const ExecutorStartReason = Schema.Literal("Isolation", "Directory", "Spawn", "Exited", "Timeout", "Unhealthy")

/** The executor of a local sandbox did not start. */
export class ExecutorStartError extends Schema.TaggedError<ExecutorStartError>(
  "@effect-koyeb/platform-node/ExecutorStartError"
)("ExecutorStartError", { sandbox: Schema.String, reason: ExecutorStartReason, detail: Schema.String }) {
  get message(): string {
    return `The executor of sandbox ${this.sandbox} did not start (${this.reason}): ${this.detail}`
  }
}

/** Options of `spawnExecutor`. */
export interface SpawnOptions {
  readonly id: string
  readonly secret: Redacted.Redacted<string>
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly isolation?: IsolationOption | undefined
  /** Parent of the sandbox directories (default `<os tmpdir>/effect-koyeb`). */
  readonly baseDir?: string | undefined
  /** Bound on start-up (default 30 seconds). */
  readonly startTimeout?: Duration.DurationInput | undefined
}

/** Default parent of sandbox directories. */
export const defaultBaseDir = (): string => Path.join(Os.tmpdir(), "effect-koyeb")

/** Inside bubblewrap the sandbox sees its own home and tmp at these fixed paths. */
const SANDBOX_HOME = "/home/sandbox"
const GRACE_MILLIS = 2_000

// ---------------------------------------------------------------------------------------------
// Isolation

let bwrapProbe: Promise<boolean> | undefined
let warnedNoIsolation = false

const bwrapWorks = (): Promise<boolean> => (bwrapProbe ??= new Promise((resolve) => {
  ChildProcess.execFile(
    "bwrap",
    ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent", "true"],
    { timeout: 5_000 },
    (error) => resolve(error === null)
  )
}))

/** Resolves `"auto"` (probing bubblewrap once per process) and checks an explicit `"bubblewrap"`. */
export const resolveIsolation = (option: IsolationOption): Effect.Effect<Isolation, ExecutorStartError> =>
  option === "none" ? Effect.succeed("none") : Effect.promise(bwrapWorks).pipe(
    Effect.flatMap((works): Effect.Effect<Isolation, ExecutorStartError> => {
      if (works) return Effect.succeed("bubblewrap")
      if (option === "bubblewrap") {
        return Effect.fail(
          new ExecutorStartError({
            sandbox: "local",
            reason: "Isolation",
            detail: "bubblewrap (bwrap) is not available or does not work here"
          })
        )
      }
      if (warnedNoIsolation) return Effect.succeed("none")
      warnedNoIsolation = true
      return Effect.logWarning(
        "effect-koyeb: bubblewrap is not available; local sandboxes run as plain processes of this user. The local backend without bubblewrap is NOT a security boundary."
      ).pipe(Effect.as("none"))
    })
  )

// Host homes are hidden; the sandbox gets its own home and /tmp.
const hiddenRoots = ["/home", "/root"]
const isUnder = (path: string, root: string) => path === root || path.startsWith(root + "/")

const bwrapArgs = (root: string, visible: ReadonlyArray<string>): Array<string> => {
  const args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
  for (const hidden of hiddenRoots) {
    if (Fs.existsSync(hidden)) args.push("--tmpfs", hidden)
  }
  args.push("--bind", Path.join(root, "home"), SANDBOX_HOME, "--bind", Path.join(root, "tmp"), "/tmp")
  // What the executor itself runs from (node, its bundle) must stay visible under the hidden paths.
  for (const path of visible) {
    if ([...hiddenRoots, "/tmp"].some((hidden) => isUnder(path, hidden))) args.push("--ro-bind", path, path)
  }
  args.push("--unshare-pid", "--die-with-parent", "--chdir", SANDBOX_HOME, "--")
  return args
}

// ---------------------------------------------------------------------------------------------
// Spawn

interface Listening {
  readonly url: string
  readonly port: number
  readonly proxyPort: number
}

const failed = (id: string, reason: ExecutorStartError["reason"], detail: string) =>
  new ExecutorStartError({ sandbox: id, reason, detail })

const tail = (s: string) => (s.length > 2_000 ? `…${s.slice(-2_000)}` : s)

/** True when `GET <url>/health` answers 2xx within 2 seconds. */
export const healthy = (url: string): Effect.Effect<boolean> =>
  Effect.promise(() =>
    fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) }).then(
      (response) => response.ok,
      () => false
    )
  )

/** Starts an executor: ready (listening and `/health` OK) when it succeeds; killed when the scope closes. */
export type SpawnExecutor = (
  options: SpawnOptions
) => Effect.Effect<LocalExecutorProcess, ExecutorStartError, Scope.Scope>

/** Spawns the executor of sandbox `id`; ready (listening and `/health` OK) when it succeeds; killed when the scope closes. */
export const spawnExecutor = Effect.fnUntraced(function*(options: SpawnOptions) {
  const isolation = yield* resolveIsolation(options.isolation ?? "auto")
  const start = yield* executorCommand
  const baseDir = options.baseDir ?? defaultBaseDir()
  const dir = Path.join(baseDir, options.id)
  yield* Effect.try({
    try: () => {
      Processes.sweepOrphans(baseDir)
      Fs.mkdirSync(Path.join(dir, "home"), { recursive: true })
      Fs.mkdirSync(Path.join(dir, "tmp"), { recursive: true })
      Fs.writeFileSync(Path.join(dir, Processes.OWNER_FILE), String(process.pid))
    },
    catch: (cause) => failed(options.id, "Directory", `cannot create ${dir}: ${String(cause)}`)
  })
  const home = isolation === "bubblewrap" ? SANDBOX_HOME : Path.join(dir, "home")
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: home,
    TMPDIR: isolation === "bubblewrap" ? "/tmp" : Path.join(dir, "tmp"),
    ...options.env,
    // The secret goes through stdin: in the environment, commands could read it from /proc/<pid>/environ.
    SANDBOX_SECRET_STDIN: "1",
    // In a PID namespace the parent's pid means nothing; --die-with-parent covers it there.
    ...(isolation === "none" ? { EFFECT_KOYEB_PARENT_PID: String(process.pid) } : {})
  }
  const executorArgs = [...start.args, "executor", "--host", "127.0.0.1", "--port", "0", "--proxy-port", "0"]
  const [file, args] = isolation === "bubblewrap"
    ? ["bwrap", [...bwrapArgs(dir, start.visiblePaths), start.command, ...executorArgs]] as const
    : [start.command, executorArgs] as const

  const listening = yield* Deferred.make<Listening, ExecutorStartError>()
  const exited = yield* Deferred.make<void>()
  const child = yield* Effect.try({
    try: () =>
      ChildProcess.spawn(file, args, {
        cwd: isolation === "bubblewrap" ? "/" : Path.join(dir, "home"),
        env,
        detached: true,
        stdio: ["pipe", "pipe", "pipe"]
      }),
    catch: (cause) => failed(options.id, "Spawn", `cannot spawn the executor: ${String(cause)}`)
  })
  child.stdin?.end(Redacted.value(options.secret))
  const pid = child.pid
  if (pid === undefined) {
    Processes.removeDirSync(dir)
    return yield* Effect.fail(failed(options.id, "Spawn", "cannot spawn the executor"))
  }
  const record: Processes.Child = { pid, dir }
  Processes.register(record)

  let stdout = ""
  let stderr = ""
  let ready = false
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    if (ready) return
    stdout += chunk
    let newline: number
    while ((newline = stdout.indexOf("\n")) >= 0) {
      const line = stdout.slice(0, newline).trim()
      stdout = stdout.slice(newline + 1)
      try {
        const event = JSON.parse(line)
        if (event?.event === "listening" && typeof event.port === "number" && typeof event.proxyPort === "number") {
          ready = true
          Deferred.unsafeDone(
            listening,
            Effect.succeed({ url: String(event.url), port: event.port, proxyPort: event.proxyPort })
          )
          return
        }
      } catch {
        // not our line
      }
    }
  })
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = tail(stderr + chunk)
  })
  child.on("error", (error) => {
    Deferred.unsafeDone(
      listening,
      Effect.fail(failed(options.id, "Spawn", `executor failed to start: ${error.message}`))
    )
  })
  child.on("exit", (code, sig) => {
    Processes.unregister(pid)
    Deferred.unsafeDone(
      listening,
      Effect.fail(
        failed(
          options.id,
          "Exited",
          `executor exited (${sig ?? code}) before listening${stderr ? `: ${tail(stderr)}` : ""}`
        )
      )
    )
    Deferred.unsafeDone(exited, Effect.void)
  })

  // Polled, for at most the grace period: inside this uninterruptible finalizer a timeout could not
  // end a plain await, and an interruptible one would be cut short at once when the caller is
  // being interrupted.
  const awaitExit = Deferred.isDone(exited).pipe(
    Effect.repeat({ schedule: Schedule.spaced("25 millis"), until: (done) => done, times: GRACE_MILLIS / 25 })
  )
  let killed = false
  const kill: Effect.Effect<void> = Effect.suspend(() => {
    if (killed) return Deferred.await(exited)
    killed = true
    Processes.unregister(pid)
    return Effect.gen(function*() {
      if (child.exitCode === null && child.signalCode === null) {
        // Without namespaces, let the executor stop its process groups first; bwrap's PID namespace dies with it anyway.
        if (isolation === "none") {
          Processes.signal(-pid, "SIGTERM")
          yield* awaitExit
        }
        Processes.killTreeSync(record)
        yield* awaitExit
      }
      // SIGKILL is asynchronous, and reparented stragglers are no longer in the tree: sweep until
      // none is left. Under bubblewrap none can leave: its PID namespace dies with the executor.
      if (isolation === "none") {
        yield* Effect.sync(() => {
          const left = Processes.processesIn(dir)
          for (const straggler of left) Processes.signal(straggler, "SIGKILL")
          return left.length === 0
        }).pipe(
          Effect.repeat({ schedule: Schedule.spaced("50 millis"), until: (none) => none, times: GRACE_MILLIS / 50 })
        )
      }
      yield* Effect.promise(() => Fs.promises.rm(dir, { recursive: true, force: true }).catch(() => undefined))
    })
  }).pipe(Effect.uninterruptible)

  yield* Effect.addFinalizer(() => kill)

  const started = yield* Deferred.await(listening).pipe(
    Effect.timeoutFail({
      duration: options.startTimeout ?? Duration.seconds(30),
      onTimeout: () =>
        failed(options.id, "Timeout", `executor did not start in time${stderr ? `: ${tail(stderr)}` : ""}`)
    }),
    Effect.tapError(() => kill)
  )
  const url = `http://127.0.0.1:${started.port}`
  yield* healthy(url).pipe(
    Effect.filterOrFail(
      (ok) => ok,
      () => failed(options.id, "Unhealthy", `executor at ${url} does not answer /health`)
    ),
    Effect.retry({ schedule: Schedule.spaced("25 millis"), times: 20 }),
    Effect.tapError(() => kill)
  )
  // Keep draining the pipes so the executor never blocks on a full pipe, without holding this process open.
  child.stdout!.resume()
  child.unref()
  ;(child.stdout as unknown as { unref?: () => void }).unref?.()
  ;(child.stderr as unknown as { unref?: () => void }).unref?.()

  return {
    id: options.id,
    dir,
    url,
    port: started.port,
    proxyPort: started.proxyPort,
    pid,
    secret: options.secret,
    isolation,
    home,
    kill,
    exited: Deferred.await(exited)
  } satisfies LocalExecutorProcess
}) as SpawnExecutor
