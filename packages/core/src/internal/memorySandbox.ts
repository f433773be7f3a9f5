/**
 * One memory sandbox of `Testing`: the filesystem tree, the command runner and the process table,
 * with every view on them: the `Sandbox`, `Executor`, `Filesystem` and `Processes` services, an
 * `ExecutorClient` (for `Sandbox.make` over the memory control plane) and the inspection service.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { LifecycleOptions } from "../ControlPlane.js"
import type { ExecutorShape } from "../Executor.js"
import type { CommandRequest, ExecutorClientShape, RunStreamEvent } from "../ExecutorClient.js"
import type { FilesystemShape } from "../Filesystem.js"
import type { ProcessesShape } from "../Processes.js"
import type { SandboxShape } from "../Sandbox.js"
import { ExecutorError, FileExists, FilesystemError, InvalidArgument, PortAlreadyBound } from "../SandboxError.js"
import { ExposedPort, SandboxInfo } from "../SandboxSchema.js"
import type { CommandHandler, CommandReply, MemoryOptions, MemorySandboxShape } from "../Testing.js"
import { toBytes } from "./bytes.js"
import { isHealthy } from "./capabilities.js"
import { joinLines } from "./commandStrategy.js"
import { makeExecutor, makeProcesses, makeProcessTable, makeRunner, splitLines } from "./memoryCommands.js"
import {
  childNames,
  decodeText,
  existing,
  fail,
  fileBytes,
  initialTree,
  listNames,
  makeDirAll,
  makeFilesystem,
  makeTree,
  removeAll,
  resolve,
  type Tree,
  writeNode
} from "./memoryFilesystem.js"
import { isTcpPort } from "./ports.js"
import { checkPort } from "./sandbox.js"

/** The public URL of a memory sandbox's exposed port. */
export const exposedUrl = (id: string): string => `https://${id}.sandbox.test/`

/** The public host of a memory sandbox. */
export const domainOf = (id: string): string => `${id}.sandbox.test`

/** The info of a memory sandbox: defaults, then overrides. */
export const infoOf = (overrides: Partial<SandboxInfo> | undefined): SandboxInfo =>
  new SandboxInfo({
    id: "memory-sandbox",
    appId: "memory-app",
    name: "memory-sandbox",
    region: "na",
    instanceType: "micro",
    image: "koyeb/sandbox",
    createdAt: new Date(0),
    ownsApp: true,
    ...overrides
  })

/** Every view on one memory sandbox. */
export interface MemoryBackend {
  readonly sandbox: SandboxShape
  readonly executor: ExecutorShape
  readonly filesystem: FilesystemShape
  readonly processes: ProcessesShape
  readonly client: ExecutorClientShape
  readonly inspect: MemorySandboxShape
  /** Marks the sandbox deleted (its executor then stops answering) and interrupts its processes. */
  readonly remove: Effect.Effect<void>
}

export const make = (options: {
  readonly info: SandboxInfo
  readonly files?: Readonly<Record<string, string | Uint8Array>> | undefined
  readonly handlers?: ReadonlyArray<CommandHandler> | undefined
  readonly env?: Readonly<Record<string, string>> | undefined
  readonly onDelete?: Effect.Effect<void> | undefined
}): Effect.Effect<MemoryBackend, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { info } = options
    const scope = yield* Effect.scope
    const tree = makeTree(yield* Ref.make<Tree>(initialTree(options.files, yield* Clock.currentTimeMillis)))
    const filesystem = makeFilesystem(tree)
    const runner = makeRunner({ handlers: options.handlers ?? [], env: options.env ?? {}, filesystem })
    const executor = makeExecutor(runner)
    const table = yield* makeProcessTable(runner, scope)
    const processes = makeProcesses(table)
    let port: ExposedPort | undefined
    let lifecycle: LifecycleOptions = {}
    let deleted = false

    const gone = (endpoint: string) =>
      new ExecutorError({ reason: "Transport", endpoint, detail: `memory sandbox ${info.id} was deleted` })
    const alive = (endpoint: string) => Effect.suspend(() => (deleted ? Effect.fail(gone(endpoint)) : Effect.void))

    const remove = Effect.suspend(() => {
      if (deleted) return Effect.void
      deleted = true
      const killAll = Effect.flatMap(table.list, (all) =>
        Effect.forEach(all.filter((p) => p.isRunning), (p) => Effect.ignore(table.kill(p.id)), { discard: true }))
      return Effect.zipRight(killAll, options.onDelete ?? Effect.void)
    })

    const exposePort = (value: number) =>
      Effect.gen(function*() {
        yield* checkPort(value)
        yield* alive("/bind_port")
        port = new ExposedPort({ port: value, url: exposedUrl(info.id) })
        return port
      }).pipe(Effect.withSpan("Sandbox.exposePort", { attributes: { "sandbox.id": info.id, "sandbox.port": value } }))

    const sandbox: SandboxShape = {
      info,
      exposePort,
      unexposePort: Effect.zipRight(
        alive("/unbind_port"),
        Effect.sync(() => {
          port = undefined
        })
      ),
      domain: Effect.succeed(Option.some(domainOf(info.id))),
      tcpProxy: Effect.succeed(Option.none()),
      isHealthy: Effect.sync(() =>
        !deleted
      ),
      waitReady: () => Effect.void,
      updateLifecycle: (update) =>
        Effect.sync(() => {
          lifecycle = { ...lifecycle, ...update }
        }),
      delete: remove
    }

    const replyToRun = (reply: CommandReply) => ({
      stdout: joinLines(splitLines(reply.stdout)),
      stderr: joinLines(splitLines(reply.stderr)),
      code: reply.exitCode ?? 0
    })

    // The stock file endpoints never report "exists".
    const fileEndpoint = <A, E>(name: string, effect: Effect.Effect<A, E | FileExists>) =>
      Effect.zipRight(alive(name), Effect.catchIf(effect, (e): e is FileExists => e instanceof FileExists, Effect.die))

    const runStreaming: ExecutorClientShape["runStreaming"] = (request: CommandRequest) =>
      Stream.unwrap(
        alive("/run_streaming").pipe(
          Effect.zipRight(runner.respond(request.cmd, request, "run")),
          Effect.catchTag(
            "Timeout",
            (error) =>
              Effect.fail(new ExecutorError({ reason: "Transport", endpoint: "/run_streaming", detail: error.message }))
          ),
          Effect.map((reply) => {
            const output: Array<RunStreamEvent> = [
              ...splitLines(reply.stdout).map((data) => ({ _tag: "Output", stream: "stdout", data }) as const),
              ...splitLines(reply.stderr).map((data) => ({ _tag: "Output", stream: "stderr", data }) as const)
            ]
            return Stream.fromIterable(output).pipe(
              Stream.concat(
                reply.keepRunning === true
                  ? Stream.never
                  : Stream.succeed<RunStreamEvent>({ _tag: "Complete", code: reply.exitCode ?? 0 })
              )
            )
          })
        )
      )

    const health = Effect.as(alive("/health"), { status: "ok" })
    const client: ExecutorClientShape = {
      options: { url: `memory://${info.id}`, secret: Redacted.make("memory") },
      health,
      // the memory executor advertises no extension, as the stock executor
      capabilities: Effect.succeed(new Set()),
      isHealthy: isHealthy(health),
      run: (request) =>
        alive("/run").pipe(
          Effect.zipRight(runner.respond(request.cmd, request, "run")),
          Effect.flatMap((reply) => reply.keepRunning === true ? Effect.never : Effect.succeed(replyToRun(reply))),
          Effect.catchTag(
            "Timeout",
            (error) => Effect.fail(new ExecutorError({ reason: "Transport", endpoint: "/run", detail: error.message }))
          )
        ),
      runStreaming,
      runStreamingCollect: (request) => Effect.map(Stream.runCollect(runStreaming(request)), Chunk.toReadonlyArray),
      writeFile: (path, content) =>
        fileEndpoint(
          "/write_file",
          tree.transact((draft, now) => writeNode(draft, now, path, toBytes(content), "truncate"))
        ),
      readFile: (path) => fileEndpoint("/read_file", tree.read((current) => decodeText(fileBytes(current, path)))),
      writeFileBytes: (path, content) =>
        fileEndpoint(
          "/write_file_bytes",
          tree.transact((draft, now) => writeNode(draft, now, path, content, "truncate"))
        ),
      readFileBytes: (path) =>
        Stream.fromEffect(fileEndpoint("/read_file_bytes", tree.read((current) => fileBytes(current, path)))),
      deleteFile: (path) =>
        fileEndpoint(
          "/delete_file",
          tree.transact((draft) => {
            const key = resolve(path)
            // the stock endpoint removes a file or an empty directory
            if (existing(draft, key, path).type === "directory" && childNames(draft, key).length > 0) {
              fail(
                new FilesystemError({
                  path,
                  reason: "DirectoryNotEmpty",
                  detail: `remove ${path}: directory not empty`
                })
              )
            }
            draft.delete(key)
          })
        ),
      deleteDir: (path) => fileEndpoint("/delete_dir", tree.transact((draft) => removeAll(draft, resolve(path)))),
      makeDir: (path) => fileEndpoint("/make_dir", tree.transact((draft, now) => makeDirAll(draft, now, path))),
      listDir: (path) => fileEndpoint("/list_dir", tree.read((current) => listNames(current, path))),
      bindPort: (value) =>
        Effect.gen(function*() {
          yield* alive("/bind_port")
          const parsed = Number(value)
          if (!/^[0-9]+$/.test(value) || !isTcpPort(parsed)) {
            return yield* new InvalidArgument({ argument: "port", detail: `invalid port: ${value}` })
          }
          if (port !== undefined) {
            return yield* new PortAlreadyBound({ port: value, currentPort: String(port.port) })
          }
          port = new ExposedPort({ port: parsed, url: exposedUrl(info.id) })
        }),
      unbindPort: sandbox.unexposePort,
      startProcess: (request) =>
        Effect.zipRight(
          alive("/start_process"),
          Effect.map(table.start(request.cmd, request), (started) => ({
            id: started.id,
            pid: started.pid,
            status: started.status
          }))
        ),
      listProcesses: Effect.zipRight(alive("/list_processes"), table.list),
      killProcess: (id) => Effect.zipRight(alive("/kill_process"), table.kill(id)),
      processLogs: (id) => Stream.unwrap(Effect.as(alive("/process_logs_streaming"), table.logs(id)))
    }

    const inspect: MemorySandboxShape = {
      info,
      files: Effect.map(Ref.get(tree.ref), (current) =>
        new Map(
          Array.from(current).flatMap((
            [path, node]
          ) => (node.type === "file" ? [[path, node.bytes.slice()] as const] : []))
            .sort(([a], [b]) => (a < b ? -1 : 1))
        )),
      fileText: (path) =>
        Effect.map(Ref.get(tree.ref), (current) => {
          const node = current.get(resolve(path))
          return node?.type === "file" ? Option.some(decodeText(node.bytes)) : Option.none()
        }),
      directories: Effect.map(
        Ref.get(tree.ref),
        (current) => Array.from(current).flatMap(([path, node]) => (node.type === "directory" ? [path] : [])).sort()
      ),
      commands: Effect.sync(() => runner.recorded()),
      processes: table.list,
      exposedPort: Effect.sync(() => Option.fromNullable(port)),
      lifecycle: Effect.sync(() => lifecycle),
      deleted: Effect.sync(() => deleted)
    }

    return { sandbox, executor, filesystem, processes, client, inspect, remove } satisfies MemoryBackend
  })

/** The memory sandbox of `Testing.layerMemory`. */
export const fromOptions = (options: MemoryOptions): Effect.Effect<MemoryBackend, never, Scope.Scope> =>
  make({ info: infoOf(options.info), files: options.files, handlers: options.commands, env: options.env })
