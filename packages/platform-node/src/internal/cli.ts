/**
 * The `effect-koyeb` command line (`@effect/cli`). The sandbox commands talk to Koyeb, or to the
 * emulator when `KOYEB_API_HOST` points at it (`KOYEB_API_TOKEN` is required either way). A local
 * sandbox lives only as long as the process that created it, so the local backend is reachable
 * only through `create --local`, which keeps running until interrupted.
 *
 * @internal
 */
import * as Cleanup from "@effect-koyeb/core/Cleanup"
import { ControlPlane, type CreateOptions, SandboxInfo } from "@effect-koyeb/core/ControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import type { SandboxError } from "@effect-koyeb/core/SandboxError"
import * as Secrets from "@effect-koyeb/core/Secrets"
import type * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Args from "@effect/cli/Args"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Crypto from "node:crypto"
import * as KoyebEmulator from "../KoyebEmulator.js"
import * as NodeSandbox from "../NodeSandbox.js"
import { runExecutor } from "./cliExecutor.js"
import * as CliSession from "./cliSession.js"
import { isTcpPort } from "./ports.js"

// ---------------------------------------------------------------------------------------------
// output

const out = (text: string) => Effect.sync(() => void process.stdout.write(text))
const err = (text: string) => Effect.sync(() => void process.stderr.write(text))
const printJson = (value: unknown) => out(`${JSON.stringify(value)}\n`)

const json = Options.boolean("json").pipe(Options.withDescription("Print machine-readable JSON instead of text."))

/** Fields of a tagged error, for `--json` error output. */
const errorJson = (error: { readonly _tag: string; readonly message: string }) => {
  const { cause: _cause, ...fields } = error as unknown as Record<string, unknown>
  return { error: { ...fields, _tag: error._tag, message: error.message } }
}

type CliFailure = SandboxError | ConfigError.ConfigError

const describeFailure = (failure: CliFailure): { readonly _tag: string; readonly message: string } =>
  ConfigError.isConfigError(failure) ? { _tag: "ConfigError", message: String(failure) } : failure

/** Reports a typed failure on stderr (as JSON with `--json`) and sets exit code 1. */
const reportFailures =
  (asJson: boolean) => <A, R>(effect: Effect.Effect<A, CliFailure, R>): Effect.Effect<void, never, R> =>
    Effect.catchAll(effect, (failure) => {
      const described = describeFailure(failure)
      return err(asJson ? `${JSON.stringify(errorJson(described))}\n` : `effect-koyeb: ${described.message}\n`).pipe(
        Effect.zipRight(Effect.sync(() => void (process.exitCode = 1)))
      )
    }).pipe(Effect.asVoid)

// ---------------------------------------------------------------------------------------------
// backends

const noBackend = new InvalidArgument({
  argument: "KOYEB_API_TOKEN",
  detail: "not set. The sandbox commands need Koyeb, or the emulator: run `effect-koyeb emulator`, then set " +
    "KOYEB_API_HOST to its url and KOYEB_API_TOKEN to its token. A local sandbox lives only inside the process " +
    "that created it: use `effect-koyeb create --local` (it runs until interrupted)."
})

/** A layer of Koyeb (or the emulator) built from `KOYEB_API_TOKEN`; no local fallback. */
const withToken = <A>(
  f: (token: Redacted.Redacted<string>) => Layer.Layer<A, ConfigError.ConfigError>
): Layer.Layer<A, InvalidArgument | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Config.option(Config.redacted("KOYEB_API_TOKEN")).pipe(
      Effect.map(Option.filter((token) => Redacted.value(token).trim() !== "")),
      Effect.map(Option.match({
        onNone: (): Layer.Layer<A, InvalidArgument | ConfigError.ConfigError> => Layer.fail(noBackend),
        onSome: f
      }))
    )
  )

/** Koyeb (or the emulator) from `KOYEB_API_TOKEN` / `KOYEB_API_HOST` / `KOYEB_REGION`; no local fallback. */
const remote: Layer.Layer<ControlPlane, InvalidArgument | ConfigError.ConfigError> = withToken((token) =>
  NodeSandbox.layerConfig({ token })
)

// ---------------------------------------------------------------------------------------------
// argument parsing

const invalid = (message: string) => ValidationError.invalidValue(HelpDoc.p(message))

/** A duration: a number of seconds, or an Effect duration such as `"90 seconds"` / `"5 minutes"`. */
const durationOption = (name: string, description: string) =>
  Options.text(name).pipe(
    Options.withDescription(`${description} Seconds, or a duration such as "5 minutes".`),
    Options.mapEffect((text) => {
      const seconds = Number(text)
      const duration = text.trim() !== "" && Number.isFinite(seconds) && seconds >= 0
        ? Option.some(Duration.seconds(seconds))
        : Duration.decodeUnknown(text)
      return Option.match(duration, {
        onNone: () => Effect.fail(invalid(`invalid duration for --${name}: ${text}`)),
        onSome: Effect.succeed
      })
    }),
    Options.optional
  )

const envOption = Options.keyValueMap("env").pipe(
  Options.withAlias("e"),
  Options.withDescription("An environment variable NAME=VALUE (repeatable)."),
  Options.optional
)

const envRecord = (env: Option.Option<HashMap.HashMap<string, string>>): Record<string, string> | undefined =>
  Option.match(env, { onNone: () => undefined, onSome: (map) => Object.fromEntries(HashMap.toEntries(map)) })

const sandboxId = Args.text({ name: "sandbox-id" }).pipe(Args.withDescription("The sandbox (Koyeb service) id."))

const portOption = (name: string, env: string, fallback: number, description: string) =>
  Options.integer(name).pipe(
    Options.withDescription(description),
    Options.withFallbackConfig(Config.integer(env).pipe(Config.withDefault(fallback))),
    Options.mapEffect((port) =>
      port === 0 || isTcpPort(port) ? Effect.succeed(port) : Effect.fail(invalid(`invalid --${name}: ${port}`))
    )
  )

const hostOption = Options.text("host").pipe(
  Options.withDescription("Interface to listen on."),
  Options.withDefault("127.0.0.1")
)

// ---------------------------------------------------------------------------------------------
// servers

const executor = Command.make(
  "executor",
  {
    host: hostOption,
    port: portOption("port", "PORT", 3030, "HTTP API port (default $PORT, else 3030; 0: any free port)."),
    proxyPort: portOption(
      "proxy-port",
      "PROXY_PORT",
      3031,
      "TCP proxy port (default $PROXY_PORT, else 3031; 0: any free port)."
    )
  },
  ({ host, port, proxyPort }) =>
    runExecutor({ host, port, proxyPort }).pipe(
      Effect.catchTag("ExecutorServerError", () => Effect.sync(() => void (process.exitCode = 1)))
    )
).pipe(Command.withDescription(
  "Run an executor server (the HTTP API inside a sandbox). The secret is $SANDBOX_SECRET; with " +
    "$EFFECT_KOYEB_PARENT_PID it exits when that process is gone. Prints one JSON line " +
    `{"event":"listening","url":…,"port":…,"proxyPort":…} when ready.`
))

const emulator = Command.make(
  "emulator",
  {
    host: hostOption,
    port: Options.integer("port").pipe(
      Options.withDescription("Port to listen on (default 0: any free port)."),
      Options.withDefault(0),
      Options.mapEffect((port) =>
        port === 0 || isTcpPort(port) ? Effect.succeed(port) : Effect.fail(invalid(`invalid --port: ${port}`))
      )
    ),
    token: Options.text("token").pipe(
      Options.withDescription("API token clients must send (default $KOYEB_API_TOKEN, else a random one, printed)."),
      Options.withFallbackConfig(Config.string("KOYEB_API_TOKEN")),
      Options.optional
    ),
    isolation: Options.choice("isolation", ["none", "bubblewrap", "auto"]).pipe(
      Options.withDescription("Sandbox isolation (default auto: bubblewrap when available)."),
      Options.optional
    ),
    tls: Options.boolean("tls").pipe(
      Options.withDescription(
        "Serve over HTTPS with a CA made at start by openssl (its path is printed as \"ca\"); app domains are " +
          "<app>.koyeb.localhost:<port>."
      )
    )
  },
  ({ host, isolation, port, tls, token }) => {
    const given = Option.getOrElse(token, () => "")
    const generated = given === ""
    const apiToken = generated ? Crypto.randomBytes(24).toString("base64url") : given
    return KoyebEmulator.make({
      token: Redacted.make(apiToken),
      host,
      port,
      isolation: Option.getOrUndefined(isolation),
      tls
    }).pipe(
      Effect.tap((emu) =>
        printJson({
          event: "listening",
          url: emu.url,
          ...(emu.caPath === undefined ? {} : { ca: emu.caPath }),
          ...(generated ? { token: apiToken } : {})
        })
      ),
      Effect.zipRight(Effect.never),
      Effect.scoped,
      Effect.catchTag(
        "KoyebEmulatorError",
        (e) => err(`${e.message}\n`).pipe(Effect.zipRight(Effect.sync(() => void (process.exitCode = 1))))
      )
    )
  }
).pipe(Command.withDescription(
  "Run the Koyeb REST emulator (its sandboxes die with it). Prints one JSON line " +
    `{"event":"listening","url":…} (plus "ca" with --tls, "token" when generated); use the url as KOYEB_API_HOST.`
))

// ---------------------------------------------------------------------------------------------
// sandbox commands

const infoJson = (info: SandboxInfo) => {
  const { ownsApp: _ownsApp, ...fields } = Schema.encodeSync(SandboxInfo)(info)
  return { ...fields, createdAt: info.createdAt.toISOString() }
}

const create = Command.make(
  "create",
  {
    name: Options.text("name").pipe(Options.withDescription("Service name."), Options.optional),
    image: Options.text("image").pipe(
      Options.withDescription("Docker image (default koyeb/sandbox)."),
      Options.optional
    ),
    instanceType: Options.text("instance-type").pipe(
      Options.withDescription("Instance type (default micro)."),
      Options.optional
    ),
    region: Options.text("region").pipe(
      Options.withDescription("Region (default $KOYEB_REGION, else na)."),
      Options.optional
    ),
    env: envOption,
    tcpProxy: Options.boolean("tcp-proxy").pipe(Options.withDescription("Publish the proxy port as raw TCP.")),
    idleTimeout: durationOption("idle-timeout", "Sleep after this much inactivity (0: never)."),
    deleteAfter: durationOption("delete-after", "Delete the sandbox this long after creation."),
    deleteAfterInactivity: durationOption("delete-after-inactivity", "Delete the sandbox after sleeping this long."),
    timeout: durationOption("timeout", "Bound on readiness (default 5 minutes)."),
    noWait: Options.boolean("no-wait").pipe(
      Options.withDescription("Return without waiting until the sandbox is ready.")
    ),
    local: Options.boolean("local").pipe(Options.withDescription(
      "Create the sandbox on this machine. It lives as long as this command: it keeps running, and " +
        "deletes the sandbox on Ctrl-C / SIGTERM."
    )),
    json
  },
  (o) => {
    const options: CreateOptions = {
      name: Option.getOrUndefined(o.name),
      image: Option.getOrUndefined(o.image),
      instanceType: Option.getOrUndefined(o.instanceType),
      region: Option.getOrUndefined(o.region),
      env: envRecord(o.env),
      enableTcpProxy: o.tcpProxy || undefined,
      idleTimeout: Option.getOrUndefined(o.idleTimeout),
      deleteAfterDelay: Option.getOrUndefined(o.deleteAfter),
      deleteAfterInactivityDelay: Option.getOrUndefined(o.deleteAfterInactivity),
      timeout: Option.getOrUndefined(o.timeout),
      waitReady: !o.noWait
    }
    const print = (info: SandboxInfo) => o.json ? printJson(infoJson(info)) : out(`${info.id}\n`)
    if (o.local) {
      return Sandbox.make(options).pipe(
        Effect.tap((sandbox) => print(sandbox.info)),
        Effect.tap((sandbox) =>
          err(`local sandbox ${sandbox.info.id} is running; it is deleted when this command stops (Ctrl-C)\n`)
        ),
        Effect.zipRight(Effect.never),
        Effect.scoped,
        Effect.provide(NodeSandbox.layerLocal()),
        reportFailures(o.json)
      )
    }
    // Not `Sandbox.make`: the sandbox must outlive this command.
    return Effect.gen(function*() {
      const controlPlane = yield* ControlPlane
      const { info } = yield* controlPlane.create(options)
      if (options.waitReady !== false) {
        yield* controlPlane.waitReady(info.id, { timeout: options.timeout }).pipe(
          Effect.onError(() => controlPlane.delete(info).pipe(Effect.ignore))
        )
      }
      yield* print(info)
    }).pipe(Effect.provide(remote), reportFailures(o.json))
  }
).pipe(Command.withDescription(
  "Create a sandbox on Koyeb (or the emulator, with KOYEB_API_HOST) and print its id; it keeps running " +
    "until `delete` or its lifecycle deletes it. With --local: on this machine, until this command stops."
))

/** A rough age: `42s`, `5m`, `3h`, `2d`. */
const age = (millis: number): string => {
  const seconds = Math.max(0, Math.floor(millis / 1000))
  if (seconds < 120) return `${seconds}s`
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`
  if (seconds < 172800) return `${Math.floor(seconds / 3600)}h`
  return `${Math.floor(seconds / 86400)}d`
}

/** Prints rows as aligned columns. */
const table = (rows: ReadonlyArray<ReadonlyArray<string>>) => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return out(rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd() + "\n").join(""))
}

const list = Command.make("list", { json }, ({ json: asJson }) =>
  Effect.gen(function*() {
    const all = yield* (yield* ControlPlane).list
    if (asJson) return yield* printJson(all.map(infoJson))
    const now = yield* Clock.currentTimeMillis
    yield* table([
      ["ID", "NAME", "REGION", "TYPE", "CREATED", "AGE", "STATUS", "LAST ACTIVE", "SDK"],
      ...all.map((i) => [
        i.id,
        i.name,
        i.region,
        i.instanceType,
        i.createdAt.toISOString(),
        age(now - i.createdAt.getTime()),
        i.status ?? "-",
        i.lastActivity === undefined
          ? (i.status === "SLEEPING" ? "-" : "now")
          : `${age(now - i.lastActivity.getTime())} ago`,
        i.managed === false ? "no" : "yes"
      ])
    ])
  }).pipe(Effect.provide(remote), reportFailures(asJson))).pipe(Command.withDescription(
    "List the sandboxes: their age, status (SLEEPING when idle), last activity, and whether effect-koyeb " +
      "created them (SDK: their app is named sandbox-app-<name>-<unix seconds>-<8 hex>)."
  ))

const gc = Command.make(
  "gc",
  {
    olderThan: durationOption("older-than", "Only sandboxes idle at least this long (default 1 hour)."),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Print what would be deleted; delete nothing.")),
    json
  },
  (o) =>
    Cleanup.collect({ olderThan: Option.getOrElse(o.olderThan, () => Duration.hours(1)), dryRun: o.dryRun }).pipe(
      Effect.flatMap((collected) =>
        o.json
          ? printJson({ dryRun: o.dryRun, sandboxes: collected.map(infoJson) })
          : out(collected.map((i) => `${o.dryRun ? "would delete" : "deleted"} ${i.id} ${i.name}\n`).join(""))
      ),
      Effect.provide(remote),
      reportFailures(o.json)
    )
).pipe(Command.withDescription(
  "Delete the sandboxes effect-koyeb created that no live program holds: asleep or stopped (a program " +
    "keeps its sandbox awake while it holds it) and idle at least --older-than, with the app the SDK " +
    "created for each (never an app you supplied). Prints each one."
))

/** One word runs as a shell command line; several are an argv (each quoted). */
const commandOf = (words: ReadonlyArray<string>): ShellCommand.Input => words.length === 1 ? words[0]! : words

const exec = Command.make(
  "exec",
  {
    id: sandboxId,
    command: Args.text({ name: "command" }).pipe(
      Args.withDescription(
        "The command, after `--`: one word is a shell command line (`-- 'ls | wc -l'`), several are an argv."
      ),
      Args.atLeast(1)
    ),
    cwd: Options.text("cwd").pipe(Options.withDescription("Working directory in the sandbox."), Options.optional),
    env: envOption,
    timeout: durationOption("timeout", "Stop the command after this long."),
    detach: Options.boolean("detach").pipe(
      Options.withAlias("d"),
      Options.withDescription("Start it as a background process and print its process id (see `logs`).")
    ),
    interactive: Options.boolean("interactive").pipe(
      Options.withAlias("i"),
      Options.withDescription("Pipe this command's stdin into it (output as it comes, not split into lines).")
    ),
    json
  },
  (o) =>
    Effect.gen(function*() {
      const sandbox = yield* Sandbox.fromId(o.id)
      const command = commandOf(o.command)
      const cwd = Option.getOrUndefined(o.cwd)
      const env = envRecord(o.env)
      if (o.interactive && o.detach) {
        return yield* new InvalidArgument({ argument: "--interactive", detail: "a detached process has no stdin" })
      }
      if (o.interactive && !o.json) {
        const timeout = Option.getOrUndefined(o.timeout)
        process.exitCode = yield* CliSession.execInteractive(sandbox.executor, command, { cwd, env, timeout })
        return
      }
      if (o.detach) {
        const proc = yield* sandbox.processes.launch(command, { cwd, env })
        return yield* o.json
          ? printJson({ id: proc.id, pid: proc.pid, command: proc.command })
          : out(`${proc.id}\n`)
      }
      const stdin = o.interactive ? CliSession.stdinStream : undefined
      yield* sandbox.executor.streamEvents(command, { cwd, env, timeout: Option.getOrUndefined(o.timeout), stdin })
        .pipe(
          Stream.runForEach((event) => {
            if (event._tag === "CommandExit") {
              process.exitCode = event.exitCode < 0 ? 255 : event.exitCode
              return o.json
                ? printJson({ exitCode: event.exitCode, durationMillis: event.durationMillis })
                : Effect.void
            }
            if (o.json) return printJson({ stream: event.stream, data: event.data })
            return event.stream === "stdout" ? out(`${event.data}\n`) : err(`${event.data}\n`)
          })
        )
    }).pipe(Effect.provide(remote), reportFailures(o.json))
).pipe(Command.withDescription(
  "Run a command in the sandbox with live output (line by line: a last line without a newline gets one) " +
    "and exit with its exit code (255 when it was killed by a signal). With --json: one line per output line {stream,data}, then {exitCode,durationMillis}. " +
    "With -i: this command's stdin is piped in, and output is copied as it comes (not split into lines, unless --json)."
))

const shell = Command.make(
  "shell",
  {
    id: sandboxId,
    command: Args.text({ name: "command" }).pipe(
      Args.withDescription("The command, after `--` (default: bash, else sh); as for `exec`."),
      Args.repeated
    ),
    cwd: Options.text("cwd").pipe(Options.withDescription("Working directory in the sandbox."), Options.optional),
    env: envOption
  },
  (o) =>
    Sandbox.fromId(o.id).pipe(
      Effect.flatMap((sandbox) =>
        CliSession.shell(sandbox.executor, o.command.length === 0 ? CliSession.defaultShell : commandOf(o.command), {
          cwd: Option.getOrUndefined(o.cwd),
          env: envRecord(o.env)
        })
      ),
      Effect.flatMap((code) => Effect.sync(() => void (process.exitCode = code))),
      Effect.provide(remote),
      reportFailures(false)
    )
).pipe(Command.withDescription(
  "Open a terminal in the sandbox running the command (default bash, else sh), in raw mode: keys, Ctrl-C " +
    "included, go to the sandbox's terminal, which follows this one's size. Exits with the command's exit code."
))

/** `ID:PATH` names a sandbox path (the id has no `/`); anything else is local. */
const remotePath = (arg: string): Option.Option<{ readonly id: string; readonly path: string }> => {
  const match = /^([^/:]+):(.+)$/.exec(arg)
  return match === null ? Option.none() : Option.some({ id: match[1]!, path: match[2]! })
}

const cp = Command.make(
  "cp",
  {
    from: Args.text({ name: "source" }).pipe(Args.withDescription("A local path, or SANDBOX_ID:PATH.")),
    to: Args.text({ name: "destination" }).pipe(Args.withDescription("A local path, or SANDBOX_ID:PATH.")),
    json
  },
  ({ from, json: asJson, to }) =>
    Effect.gen(function*() {
      const source = remotePath(from)
      const target = remotePath(to)
      if (Option.isSome(source) === Option.isSome(target)) {
        return yield* new InvalidArgument({
          argument: "cp",
          detail: "exactly one of source and destination must be SANDBOX_ID:PATH"
        })
      }
      if (Option.isSome(target)) {
        const sandbox = yield* Sandbox.fromId(target.value.id)
        yield* sandbox.filesystem.upload(from, target.value.path)
      } else if (Option.isSome(source)) {
        const sandbox = yield* Sandbox.fromId(source.value.id)
        yield* sandbox.filesystem.download(source.value.path, to)
      }
      if (asJson) yield* printJson({ from, to })
    }).pipe(Effect.provide(remote), reportFailures(asJson))
).pipe(Command.withDescription(
  "Copy a file into (`cp ./a ID:/tmp/a`) or out of (`cp ID:/tmp/a ./a`) a sandbox, byte for byte, streaming."
))

const logs = Command.make(
  "logs",
  {
    id: sandboxId,
    processId: Args.text({ name: "process-id" }).pipe(Args.withDescription("A process started with `exec --detach`.")),
    json
  },
  (o) =>
    Sandbox.fromId(o.id).pipe(
      Effect.flatMap((sandbox) =>
        sandbox.processes.logs(o.processId).pipe(
          Stream.runForEach((line) =>
            o.json
              ? printJson({ timestamp: line.timestamp, stream: line.stream, data: line.data })
              : line.stream === "stdout"
              ? out(`${line.data}\n`)
              : err(`${line.data}\n`)
          )
        )
      ),
      Effect.provide(remote),
      reportFailures(o.json)
    )
).pipe(Command.withDescription(
  "Print the output of a background process from its start, following it until it exits (Ctrl-C stops following)."
))

const expose = Command.make(
  "expose",
  {
    id: sandboxId,
    port: Args.integer({ name: "port" }).pipe(Args.withDescription("The port inside the sandbox (1-65535).")),
    json
  },
  (o) =>
    Sandbox.fromId(o.id).pipe(
      Effect.flatMap((sandbox) => sandbox.exposePort(o.port)),
      Effect.flatMap((exposed) =>
        o.json ? printJson({ port: exposed.port, url: exposed.url }) : out(`${exposed.url}\n`)
      ),
      Effect.provide(remote),
      reportFailures(o.json)
    )
).pipe(Command.withDescription("Make a port of the sandbox reachable from outside and print its URL."))

const del = Command.make(
  "delete",
  {
    ids: Args.text({ name: "sandbox-id" }).pipe(Args.withDescription("The sandboxes to delete."), Args.atLeast(1)),
    json
  },
  (o) =>
    Effect.forEach(o.ids, (id) =>
      Sandbox.fromId(id).pipe(
        Effect.flatMap((sandbox) => sandbox.delete),
        Effect.zipRight(o.json ? printJson({ deleted: id }) : out(`${id}\n`))
      ), { discard: true }).pipe(Effect.provide(remote), reportFailures(o.json))
).pipe(Command.withDescription("Delete sandboxes."))

// ---------------------------------------------------------------------------------------------
// secrets

const remoteSecrets = withToken((token) =>
  Secrets.layerKoyebConfig({ token }).pipe(Layer.provide(NodeHttpClient.layerUndici))
)

const secretJson = (info: Secrets.SecretInfo) => ({
  id: info.id,
  name: info.name,
  type: info.type,
  createdAt: info.createdAt.toISOString(),
  updatedAt: info.updatedAt.toISOString()
})

/** Everything on stdin, without one trailing newline. */
const readStdin = Effect.promise(async () => {
  const chunks: Array<Buffer> = []
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk))
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "")
})

const secretsCreate = Command.make(
  "create",
  { name: Args.text({ name: "name" }).pipe(Args.withDescription("The secret's name.")), json },
  (o) =>
    Effect.gen(function*() {
      const value = Redacted.make(yield* readStdin)
      const info = yield* (yield* Secrets.Secrets).create({ name: o.name, value })
      yield* o.json ? printJson(secretJson(info)) : out(`${info.id}\n`)
    }).pipe(Effect.provide(remoteSecrets), reportFailures(o.json))
).pipe(Command.withDescription(
  "Create a secret and print its id. The value is read from stdin (not from the command line, which other " +
    "users of the machine can see); one trailing newline is removed. Refer to it as {{ secret.<name> }}."
))

const secretsList = Command.make("list", { json }, ({ json: asJson }) =>
  Effect.gen(function*() {
    const all = yield* (yield* Secrets.Secrets).list
    if (asJson) return yield* printJson(all.map(secretJson))
    yield* table([
      ["ID", "NAME", "TYPE", "UPDATED"],
      ...all.map((s) => [s.id, s.name, s.type, s.updatedAt.toISOString()])
    ])
  }).pipe(Effect.provide(remoteSecrets), reportFailures(asJson))).pipe(
    Command.withDescription("List the secrets (never their values).")
  )

const secretsDelete = Command.make(
  "delete",
  {
    names: Args.text({ name: "name" }).pipe(Args.withDescription("The secrets to delete."), Args.atLeast(1)),
    json
  },
  (o) =>
    Effect.forEach(o.names, (name) =>
      Effect.gen(function*() {
        const secrets = yield* Secrets.Secrets
        const found = yield* secrets.findByName(name)
        if (Option.isNone(found)) {
          return yield* new InvalidArgument({ argument: "name", detail: `no secret named ${JSON.stringify(name)}` })
        }
        yield* secrets.delete(found.value.id)
        yield* o.json ? printJson({ deleted: name }) : out(`${name}\n`)
      }), { discard: true }).pipe(Effect.provide(remoteSecrets), reportFailures(o.json))
).pipe(Command.withDescription("Delete secrets by name."))

const secrets = Command.make("secrets").pipe(
  Command.withDescription("Koyeb secrets, referred to as {{ secret.<name> }} in env values and config files."),
  Command.withSubcommands([secretsCreate, secretsList, secretsDelete])
)

const root = Command.make("effect-koyeb").pipe(
  Command.withDescription(
    "Koyeb sandboxes from the command line. The sandbox commands use KOYEB_API_TOKEN and KOYEB_API_HOST " +
      "(point it at `effect-koyeb emulator` to work without an account)."
  ),
  Command.withSubcommands([create, list, gc, exec, shell, cp, logs, expose, del, secrets, executor, emulator])
)

/** Runs the command line `argv` (as `process.argv`) and exits: 2 on a usage error, 130 when interrupted. */
export const main = (argv: ReadonlyArray<string>, version: string): void =>
  NodeRuntime.runMain(
    Command.run(root, { name: "effect-koyeb", version })(argv).pipe(
      Effect.catchIf(ValidationError.isValidationError, () => Effect.sync(() => void (process.exitCode = 2))),
      Effect.provide(Layer.mergeAll(NodeContext.layer, CliConfig.layer({ showBuiltIns: false })))
    ),
    {
      teardown: (exit, onExit) => {
        const code = Exit.isSuccess(exit)
          ? Number(process.exitCode ?? 0)
          : Cause.isInterruptedOnly(exit.cause)
          ? 130
          : 1
        onExit(code)
        // Pools and sockets of the HTTP client must not keep a finished command alive.
        process.exit(code)
      }
    }
  )
