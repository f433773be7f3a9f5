/**
 * How `Filesystem` moves file bytes, chosen once from the executor's capabilities:
 *
 * - `shellStrategy`, the stock protocol (whose file endpoints carry UTF-8 text only): bytes are
 *   written with the shell's `printf` builtin, or staged as base64 chunks with `/write_file` and
 *   decoded by one command; bytes are read by streaming `base64` output;
 * - `binaryStrategy`, for executors whose `/health` lists `binary-files`: bytes travel as raw HTTP
 *   bodies, a replacing write is one `/write_file_bytes` request, staged chunks are bytes that one
 *   `cat` joins, and a read is one `/read_file_bytes` stream.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import { FilesystemError } from "../SandboxError.js"
import type { FilesystemFailure } from "../SandboxError.js"
import { encode, IncrementalDecoder } from "./base64Transfer.js"
import { toBytes } from "./bytes.js"
import { arg, classifyStderr, type Guard, guarded, guardError, mustExist, type WriteMode } from "./fileCommands.js"
import type { Staging, Writes } from "./fileWrites.js"

/** The byte transfers of one `Filesystem`. */
export interface FileStrategy extends Staging {
  /** Writes content held in memory. */
  readonly writeContent: (
    path: string,
    content: string | Uint8Array,
    mode: WriteMode
  ) => Effect.Effect<void, FilesystemFailure>
  /** Streams a file's bytes exactly. */
  readonly readStream: (path: string) => Stream.Stream<Uint8Array, FilesystemFailure>
}

// Column width of `base64` output when reading: a multiple of 4, so each line decodes alone.
const readLineWidth = 131_072
// stderr kept for error details when streaming
const maxStderrChars = 16 * 1024

/** Bytes through base64 and the shell, on any executor. */
export const shellStrategy = (client: ExecutorClientShape, writes: Writes): FileStrategy => {
  const strategy: FileStrategy = {
    stageChunk: (path, chunk) => client.writeFile(path, encode(chunk)),
    joinStaged: (glob) => `cat -- ${glob} | base64 -d`,
    writeContent: (path, content, mode) => writes.writeByCommands(path, content, mode, strategy),
    readStream: (path) =>
      Stream.suspend(() => {
        const guards: ReadonlyArray<Guard> = [
          mustExist(path),
          {
            failsIf: `[ -d ${arg(path)} ]`,
            error: new FilesystemError({ path, reason: "IsADirectory", detail: "the path is a directory" })
          }
        ]
        const decoder = new IncrementalDecoder()
        let stderr = ""
        const undecodable = new FilesystemError({ path, reason: "Unknown", detail: "base64 output did not decode" })
        return client.runStreaming({ cmd: guarded(guards, `exec base64 -w ${readLineWidth} ${arg(path)}`) }).pipe(
          Stream.mapConcatEffect((event): Effect.Effect<ReadonlyArray<Uint8Array>, FilesystemFailure> => {
            if (event._tag === "Output") {
              if (event.stream === "stderr") {
                if (stderr.length < maxStderrChars) stderr += `${event.data}\n`
                return Effect.succeed([])
              }
              const bytes = decoder.push(event.data)
              return bytes === undefined
                ? Effect.fail(undecodable)
                : Effect.succeed(bytes.length === 0 ? [] : [bytes])
            }
            if (event.code !== 0) {
              return Effect.fail(guardError(guards, event.code) ?? classifyStderr(path, event.code, stderr))
            }
            return decoder.isComplete ? Effect.succeed([]) : Effect.fail(undecodable)
          })
        )
      })
  }
  return strategy
}

/** Bytes as raw HTTP bodies, on executors with the `binary-files` extension. */
export const binaryStrategy = (client: ExecutorClientShape, writes: Writes): FileStrategy => {
  const strategy: FileStrategy = {
    stageChunk: client.writeFileBytes,
    joinStaged: (glob) => `cat -- ${glob}`,
    writeContent: (path, content, mode) =>
      // one request and no command: the extension writes like the text endpoint, byte-exact
      mode === "truncate"
        ? client.writeFileBytes(path, toBytes(content))
        : writes.writeByCommands(path, content, mode, strategy),
    readStream: client.readFileBytes
  }
  return strategy
}
