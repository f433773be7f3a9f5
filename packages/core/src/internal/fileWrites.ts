/**
 * The commands of `Filesystem` that write: guarded commands and write scripts run through
 * `/run`, small content written by the shell's `printf` builtin, and large content staged in
 * chunks next to the destination that one command joins.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import type { ExecutorClientShape, FileEndpointFailure } from "../ExecutorClient.js"
import { FileExists, FileNotFound, FilesystemError } from "../SandboxError.js"
import type { FilesystemFailure } from "../SandboxError.js"
import { alignToGroups } from "./base64Transfer.js"
import { regroup, toBytes } from "./bytes.js"
import {
  arg,
  classifyStderr,
  type Guard,
  guarded,
  guardError,
  joinPath,
  parentMustBeDirectory,
  parentOf,
  present,
  printfFormat,
  writeFailure,
  writeFailureFunction,
  type WriteMode,
  writePrelude,
  writeStatement
} from "./fileCommands.js"
import { quote, randomToken, utf8Length } from "./shell.js"

/** Largest command sent: it travels as one argv element, which the kernel caps at 128 KiB. */
export const maxCommandBytes = 100_000
/** Raw bytes per staged chunk (4 MiB once in base64). */
export const stagedChunkBytes = alignToGroups(3 * 1024 * 1024)
// staged chunks in flight
const stagedConcurrency = 2

/** How the chunks of a staged write travel: written one by one, then joined by one command. */
export interface Staging {
  /** Writes one chunk at `path`, a new file next to the destination. */
  readonly stageChunk: (path: string, chunk: Uint8Array) => Effect.Effect<void, FileEndpointFailure>
  /** The command that prints the bytes of the staged chunks matching `glob` (a quoted prefix and `*`), in order. */
  readonly joinStaged: (glob: string) => string
}

/** The write commands of one client. */
export const makeWrites = (client: ExecutorClientShape) => {
  /** Runs guards + action; a non-zero exit becomes the guard's error or a classified one about `subject`. */
  const runGuarded = (guards: ReadonlyArray<Guard>, action: string, subject: string) =>
    client.run({ cmd: guarded(guards, action) }).pipe(
      Effect.flatMap((reply) =>
        reply.code === 0
          ? Effect.succeed(reply.stdout)
          : Effect.fail(guardError(guards, reply.code) ?? classifyStderr(subject, reply.code, reply.stderr))
      )
    )

  /** Runs a write script; a failure names the file (by the index the script reports). */
  const runWriteScript = (paths: ReadonlyArray<string>, cmd: string) =>
    client.run({ cmd }).pipe(
      Effect.flatMap((reply) =>
        reply.code === 0 ? Effect.void : Effect.fail(writeFailure(paths, reply.code, reply.stderr))
      )
    )

  /** The one-command write of small content, or `undefined` when it would not fit in a command. */
  const inlineWrite = (path: string, content: string | Uint8Array, mode: WriteMode): string | undefined => {
    if (content.length > maxCommandBytes) return undefined
    const cmd = [
      writeFailureFunction,
      writePrelude(path, mode),
      writeStatement(0, path, mode, `printf ${quote(printfFormat(content))}`)
    ].join("\n")
    return utf8Length(cmd) <= maxCommandBytes ? cmd : undefined
  }

  /** Fails early, before any payload travels, when a staged write cannot succeed. */
  const precheckWrite = (path: string, mode: WriteMode) =>
    runGuarded(
      [
        ...parentMustBeDirectory(path),
        {
          failsIf: `[ -d ${arg(path)} ]`,
          error: new FilesystemError({ path, reason: "IsADirectory", detail: "the path is a directory" })
        },
        ...(mode === "exclusive" ? [{ failsIf: present(path), error: new FileExists({ path }) }] : [])
      ],
      ":",
      path
    )

  /**
   * Large writes: chunks staged next to the destination (same filesystem, and a missing parent
   * fails there too) by `staging` (asked for only once the precheck passed), then one command
   * joins them in order and removes them. On failure or interruption the chunks are removed as
   * well. A stream is prechecked first so that a write that cannot succeed fails before its data is
   * read; content already in memory skips that round trip: staging fails on a missing or
   * non-directory parent, and the join script classifies the other failures the same way.
   */
  const writeStaged = <E, R>(
    path: string,
    stream: Stream.Stream<Uint8Array, E, R>,
    mode: WriteMode,
    precheck: boolean,
    staging: Effect.Effect<Staging>
  ): Effect.Effect<void, FilesystemFailure | E, R> => {
    const prefix = joinPath(parentOf(path), `.effect-koyeb-${randomToken()}.`)
    const glob = `${arg(prefix)}*`
    const retarget = (error: FilesystemFailure | E): FilesystemFailure | E =>
      error instanceof FileNotFound
        ? new FileNotFound({ path, detail: `parent directory ${parentOf(path)} does not exist` })
        : error instanceof FilesystemError
        ? new FilesystemError({ path, reason: error.reason, detail: error.detail })
        : error
    const upload = (using: Staging) =>
      stream.pipe(
        regroup(stagedChunkBytes),
        Stream.zipWithIndex,
        Stream.mapEffect(
          ([chunk, i]) =>
            // Uninterruptible: a chunk abandoned in flight could land after the cleanup below removed the others.
            Effect.uninterruptible(using.stageChunk(`${prefix}${String(i).padStart(8, "0")}`, chunk)),
          { concurrency: stagedConcurrency }
        ),
        Stream.runCount,
        Effect.map((chunks) => ({ chunks, using })),
        Effect.mapError(retarget)
      )
    const join = ({ chunks, using }: { readonly chunks: number; readonly using: Staging }) =>
      runWriteScript(
        [path],
        [
          writeFailureFunction,
          `trap ${quote(`rm -f -- ${glob}`)} EXIT`,
          writePrelude(path, mode),
          writeStatement(0, path, mode, chunks === 0 ? "printf ''" : using.joinStaged(glob))
        ].join("\n")
      )
    const staged = Effect.flatMap(staging, upload)
    return (precheck ? Effect.zipRight(precheckWrite(path, mode), staged) : staged).pipe(
      Effect.flatMap(join),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) ? Effect.void : client.run({ cmd: `rm -f -- ${glob}` }).pipe(Effect.ignore)
      )
    )
  }

  /** Writes content in memory with commands: inline when it fits in one, else staged by `staging`. */
  const writeByCommands = (path: string, content: string | Uint8Array, mode: WriteMode, staging: Staging) => {
    const cmd = inlineWrite(path, content, mode)
    return cmd === undefined
      ? writeStaged(path, Stream.succeed(toBytes(content)), mode, false, Effect.succeed(staging))
      : runWriteScript([path], cmd)
  }

  return { runGuarded, runWriteScript, writeStaged, writeByCommands }
}

/** The write commands of one client. */
export type Writes = ReturnType<typeof makeWrites>
