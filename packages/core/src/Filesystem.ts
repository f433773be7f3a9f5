/**
 * The `Filesystem` service: files and directories of one sandbox, with byte-exact binary
 * transfer on the stock executor (whose file endpoints carry UTF-8 text only).
 *
 * How it talks to the executor:
 * - text writes and reads use `/write_file` and `/read_file`; names use `/list_dir`;
 * - bytes are written with the shell's `printf` builtin (small files, and batches of many files in
 *   one command), or staged as base64 chunks next to the destination with `/write_file` and decoded
 *   by one short command (large files); bytes are read by streaming `base64` output;
 * - when the executor's `/health` lists `binary-files` (ours does), bytes travel as raw HTTP
 *   bodies with no base64 and no command: a write is one `/write_file_bytes` request (a stream
 *   stages byte chunks that one `cat` joins), a read one `/read_file_bytes` stream;
 * - every other operation is one quoted command whose guards (`test`) exit with a code of their
 *   own, so failures are typed without parsing error text.
 *
 * Semantics that differ from the stock endpoints on purpose: `deleteFile` refuses directories,
 * `deleteDir` fails on a missing path and on a file, `move` / `rename` never move *into* an
 * existing directory (the destination is the exact new path) and refuse to overwrite unless asked.
 * Nothing is atomic: an interrupted write may leave a partially written destination (never a
 * staging file).
 *
 * Commands use POSIX `sh` and GNU coreutils / findutils (`base64 -w`, `mv -T`, `find -printf`), as
 * in Koyeb's Ubuntu-based sandbox images.
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { ExecutorClient } from "./ExecutorClient.js"
import { alignToGroups, encode, IncrementalDecoder } from "./internal/base64Transfer.js"
import * as Capabilities from "./internal/capabilities.js"
import {
  arg,
  baseName,
  checkPath,
  classifyStderr,
  fileHandle,
  type Guard,
  guarded,
  guardError,
  guardExit,
  joinPath,
  localFileError,
  mustExist,
  parentMustBeDirectory,
  parentOf,
  present,
  printfFormat,
  utf8Length,
  writeFailure,
  writeFailureFunction,
  writeLocalFile,
  type WriteMode,
  writePrelude,
  writeStatement
} from "./internal/fileCommands.js"
import { quote, randomToken } from "./internal/shell.js"
import { FileExists, FileNotFound, FilesystemError } from "./SandboxError.js"
import type { ExecutorFailure, FilesystemFailure, InvalidArgument } from "./SandboxError.js"
import { FileEntry, type FileType } from "./SandboxSchema.js"

/**
 * Options of `writeFile`, `writeStream` and `upload`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions {
  /** Fail with `FileExists` instead of replacing an existing file (checked in the sandbox). */
  readonly exclusive?: boolean | undefined
}

/**
 * Options of `mkdir`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MkdirOptions {
  /** Create missing parent directories (default false: a missing parent is `FileNotFound`). */
  readonly recursive?: boolean | undefined
  /** Fail with `FileExists` if the path exists (default false: an existing directory is fine). */
  readonly exclusive?: boolean | undefined
}

/**
 * Options of `move` and `rename`.
 *
 * @since 0.1.0
 * @category models
 */
export interface MoveOptions {
  /** Replace an existing destination (default false: an existing destination is `FileExists`). */
  readonly overwrite?: boolean | undefined
}

/**
 * Options of `rm`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RmOptions {
  /** Remove directories and their contents (default false: a directory is `IsADirectory`). */
  readonly recursive?: boolean | undefined
  /** Succeed when nothing is at the path (default false: `FileNotFound`). */
  readonly force?: boolean | undefined
}

/**
 * One file of `writeFiles`.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileToWrite {
  readonly path: string
  /** Text (written as UTF-8) or bytes (written exactly). */
  readonly content: string | Uint8Array
}

/**
 * A handle on one sandbox file, as returned by `open` (the Python SDK's `open`).
 *
 * @since 0.1.0
 * @category models
 */
export interface FileHandle {
  /** The path the handle was opened with. */
  readonly path: string
  /** The file's bytes. */
  readonly read: Effect.Effect<Uint8Array, FilesystemFailure>
  /** The file's text (UTF-8; invalid bytes become U+FFFD). */
  readonly readString: Effect.Effect<string, FilesystemFailure>
  /** Replaces the file's content (creating it). */
  readonly write: (content: string | Uint8Array) => Effect.Effect<void, FilesystemFailure>
  /** Appends to the file (creating it), in the sandbox, without reading it back. */
  readonly append: (content: string | Uint8Array) => Effect.Effect<void, FilesystemFailure>
}

/**
 * The operations of the `Filesystem` service.
 *
 * @example
 * ```ts
 * import * as Filesystem from "@effect-koyeb/core/Filesystem"
 * import * as Testing from "@effect-koyeb/core/Testing"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const fs = yield* Filesystem.Filesystem
 *   yield* fs.mkdir("/app/data", { recursive: true })
 *   yield* fs.writeFile("/app/config.json", JSON.stringify({ port: 8080 })) // a string is written as UTF-8
 *   yield* fs.writeFile("/app/data/blob.bin", new Uint8Array([0, 255, 128])) // bytes are written exactly
 *   const config = JSON.parse(yield* fs.readFileString("/app/config.json"))
 *   const blob = yield* fs.readFile("/app/data/blob.bin")
 *   const missing = yield* fs.readFileString("/app/missing.txt").pipe(
 *     Effect.catchTag("FileNotFound", (error) => Effect.succeed(`no ${error.path}`))
 *   )
 *   return { port: config.port, blob: Array.from(blob), missing }
 * })
 *
 * // In a sandbox: provide `Sandbox.layer(...)`. Here, the in-memory sandbox of `Testing`.
 * Effect.runPromise(program.pipe(Effect.provide(Testing.layerMemory()))).then(console.log)
 * // { port: 8080, blob: [ 0, 255, 128 ], missing: 'no /app/missing.txt' }
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface FilesystemShape {
  /** Writes a file: a string as UTF-8 text, bytes exactly. The parent directory must exist. */
  readonly writeFile: (
    path: string,
    content: string | Uint8Array,
    options?: WriteOptions
  ) => Effect.Effect<void, FilesystemFailure>
  /** Appends text or bytes to a file, creating it if missing. */
  readonly appendFile: (path: string, content: string | Uint8Array) => Effect.Effect<void, FilesystemFailure>
  /** Writes a file from a stream of bytes, holding only a few chunks in memory. */
  readonly writeStream: <E, R>(
    path: string,
    stream: Stream.Stream<Uint8Array, E, R>,
    options?: WriteOptions
  ) => Effect.Effect<void, FilesystemFailure | E, R>
  /** Writes many files quickly (batched into few commands); fails on the first file that cannot be written. */
  readonly writeFiles: (files: Iterable<FileToWrite>) => Effect.Effect<void, FilesystemFailure>
  /** Reads a file's bytes exactly. */
  readonly readFile: (path: string) => Effect.Effect<Uint8Array, FilesystemFailure>
  /** Reads a file as UTF-8 text (invalid bytes become U+FFFD). */
  readonly readFileString: (path: string) => Effect.Effect<string, FilesystemFailure>
  /** Streams a file's bytes exactly, decoding as they arrive. */
  readonly readStream: (path: string) => Stream.Stream<Uint8Array, FilesystemFailure>
  /** Creates a directory. */
  readonly mkdir: (path: string, options?: MkdirOptions) => Effect.Effect<void, FilesystemFailure>
  /** The names in a directory, sorted. */
  readonly list: (path: string) => Effect.Effect<ReadonlyArray<string>, FilesystemFailure>
  /** The entries of a directory with type, size, mode and modification time, sorted by name (symlinks are not followed). */
  readonly listDetailed: (path: string) => Effect.Effect<ReadonlyArray<FileEntry>, FilesystemFailure>
  /** Metadata of one path (a symlink is followed, a dangling one is reported as `symlink`). */
  readonly stat: (path: string) => Effect.Effect<FileEntry, FilesystemFailure>
  /** Deletes a file or symlink; a directory is refused with `IsADirectory` (use `deleteDir` or `rm`). */
  readonly deleteFile: (path: string) => Effect.Effect<void, FilesystemFailure>
  /** Deletes a directory and its contents; a missing path is `FileNotFound`, a file `NotADirectory`. */
  readonly deleteDir: (path: string) => Effect.Effect<void, FilesystemFailure>
  /** Renames `from` to exactly `to` (same as `move`). */
  readonly rename: (from: string, to: string, options?: MoveOptions) => Effect.Effect<void, FilesystemFailure>
  /** Moves `from` to exactly `to`; an existing `to` is `FileExists` unless `overwrite`. */
  readonly move: (from: string, to: string, options?: MoveOptions) => Effect.Effect<void, FilesystemFailure>
  /** Whether anything is at the path (a dangling symlink counts as absent). */
  readonly exists: (path: string) => Effect.Effect<boolean, FilesystemError | InvalidArgument | ExecutorFailure>
  /** Whether the path is a regular file (following symlinks). */
  readonly isFile: (path: string) => Effect.Effect<boolean, FilesystemError | InvalidArgument | ExecutorFailure>
  /** Whether the path is a directory (following symlinks). */
  readonly isDir: (path: string) => Effect.Effect<boolean, FilesystemError | InvalidArgument | ExecutorFailure>
  /** Removes a path like `rm` (`recursive` for directories, `force` to accept a missing path). */
  readonly rm: (path: string, options?: RmOptions) => Effect.Effect<void, FilesystemFailure>
  /** Copies a local file into the sandbox, streaming; a missing local file is `FileNotFound` with the local path. */
  readonly upload: (
    localPath: string,
    remotePath: string,
    options?: WriteOptions
  ) => Effect.Effect<void, FilesystemFailure, FileSystem.FileSystem>
  /** Copies a sandbox file to a local path, streaming; the local file is replaced only on success. */
  readonly download: (
    remotePath: string,
    localPath: string
  ) => Effect.Effect<void, FilesystemFailure, FileSystem.FileSystem>
  /** A handle on one file (nothing is opened in the sandbox). */
  readonly open: (path: string) => Effect.Effect<FileHandle, InvalidArgument>
}

/**
 * The filesystem of one sandbox.
 *
 * @since 0.1.0
 * @category tags
 */
export class Filesystem extends Context.Tag("@effect-koyeb/core/Filesystem")<Filesystem, FilesystemShape>() {}

// A command travels as one argv element: the kernel caps it at 128 KiB (MAX_ARG_STRLEN).
const maxCommandBytes = 100_000
// Raw bytes per staged base64 chunk (4 MiB of base64 per `/write_file`), and chunks in flight.
const stagedChunkBytes = alignToGroups(3 * 1024 * 1024)
const stagedConcurrency = 2
// Column width of `base64` output when reading: a multiple of 4, so each line decodes alone.
const readLineWidth = 131_072
// `writeFiles`: files above this go through `writeFile`; the rest share scripts of at most this size.
const batchedFileMaxBytes = 256 * 1024
const batchScriptMaxChars = 4 * 1024 * 1024
// Text up to this size goes through `/write_file` in one request; larger text is staged like bytes
// (bounded request bodies, and executors may cap the body size).
const textEndpointMaxChars = 8 * 1024 * 1024
// stderr kept for error details when streaming
const maxStderrChars = 16 * 1024

const utf8Encoder = new TextEncoder()
const toBytes = (content: string | Uint8Array): Uint8Array =>
  typeof content === "string" ? utf8Encoder.encode(content) : content

/** Splits a byte stream into chunks of exactly `size` bytes (the last may be shorter), copying only to join pieces. */
const regroup = (size: number) => <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
  Stream.suspend(() => {
    let buffer: Uint8Array | undefined
    let filled = 0
    const push = (piece: Uint8Array): Array<Uint8Array> => {
      const out: Array<Uint8Array> = []
      let offset = 0
      while (offset < piece.length) {
        if (filled === 0 && piece.length - offset >= size) {
          out.push(piece.subarray(offset, offset + size))
          offset += size
          continue
        }
        buffer ??= new Uint8Array(size)
        const n = Math.min(size - filled, piece.length - offset)
        buffer.set(piece.subarray(offset, offset + n), filled)
        filled += n
        offset += n
        if (filled === size) {
          out.push(buffer)
          buffer = undefined
          filled = 0
        }
      }
      return out
    }
    return self.pipe(
      Stream.mapConcat(push),
      Stream.concat(
        Stream.suspend(() => (buffer === undefined ? Stream.empty : Stream.succeed(buffer.subarray(0, filled))))
      )
    )
  })

const concatBytes = (chunks: Chunk.Chunk<Uint8Array>): Uint8Array => {
  if (chunks.length === 1) return Chunk.unsafeHead(chunks)
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const fileTypes: Record<string, FileType> = { f: "file", d: "directory", l: "symlink" }

// find -printf fields: type letter, size, permission bits (octal), mtime (epoch seconds), then the name
const entryFormat = "%y %s %m %T@ %f\\0"
const entryPattern = /^(\S) (\d+) ([0-7]+) (\d+(?:\.\d+)?) ([\s\S]*)$/

const parseEntry = (record: string, dir: string | undefined, path: string): FileEntry | undefined => {
  const match = entryPattern.exec(record)
  if (match === null) return undefined
  const name = dir === undefined ? baseName(path) : match[5]!
  return new FileEntry({
    name,
    path: dir === undefined ? path : joinPath(dir, name),
    type: fileTypes[match[1]!] ?? "other",
    size: Number(match[2]),
    mode: Number.parseInt(match[3]!, 8),
    modifiedAt: new Date(Math.round(Number(match[4]) * 1000))
  })
}

// find needs "./" before relative paths: names starting with "-", "(", "!" or "," are expression syntax
const findArg = (path: string): string => quote(path.startsWith("/") ? path : `./${path}`)

/**
 * Builds the service from an `ExecutorClient`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<FilesystemShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient
  const supports = yield* Capabilities.makeProbe(client)
  const bytesEndpoints = supports(Capabilities.binaryFiles)

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
   * Large writes: base64 chunks staged with `/write_file` next to the destination (same filesystem,
   * and a missing parent fails there too), then one command decodes them in order and removes
   * them. On failure or interruption the chunks are removed as well. A stream is prechecked first so
   * that a write that cannot succeed fails before its data is read; content already in memory skips
   * that round trip: staging fails on a missing or non-directory parent, and the decode script
   * classifies the other failures the same way.
   */
  const writeStaged = <E, R>(
    path: string,
    stream: Stream.Stream<Uint8Array, E, R>,
    mode: WriteMode,
    precheck: boolean
  ) => {
    const prefix = joinPath(parentOf(path), `.effect-koyeb-${randomToken()}.`)
    const glob = `${arg(prefix)}*`
    const retarget = (error: FilesystemFailure | E): FilesystemFailure | E =>
      error instanceof FileNotFound
        ? new FileNotFound({ path, detail: `parent directory ${parentOf(path)} does not exist` })
        : error instanceof FilesystemError
        ? new FilesystemError({ path, reason: error.reason, detail: error.detail })
        : error
    // With the extension, chunks are staged as bytes and only concatenated in the sandbox.
    const upload = (bytes: boolean) =>
      stream.pipe(
        regroup(stagedChunkBytes),
        Stream.zipWithIndex,
        Stream.mapEffect(
          ([chunk, i]) => {
            const staged = `${prefix}${String(i).padStart(8, "0")}`
            // Uninterruptible: a chunk abandoned in flight could land after the cleanup below removed the others.
            return Effect.uninterruptible(
              bytes ? client.writeFileBytes(staged, chunk) : client.writeFile(staged, encode(chunk))
            )
          },
          { concurrency: stagedConcurrency }
        ),
        Stream.runCount,
        Effect.map((chunks) => ({ chunks, bytes })),
        Effect.mapError(retarget)
      )
    const decode = ({ bytes, chunks }: { readonly chunks: number; readonly bytes: boolean }) =>
      runWriteScript(
        [path],
        [
          writeFailureFunction,
          `trap ${quote(`rm -f -- ${glob}`)} EXIT`,
          writePrelude(path, mode),
          writeStatement(
            0,
            path,
            mode,
            chunks === 0 ? "printf ''" : bytes ? `cat -- ${glob}` : `cat -- ${glob} | base64 -d`
          )
        ].join("\n")
      )
    const staged = Effect.flatMap(bytesEndpoints, upload)
    return (precheck ? Effect.zipRight(precheckWrite(path, mode), staged) : staged).pipe(
      Effect.flatMap(decode),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) ? Effect.void : client.run({ cmd: `rm -f -- ${glob}` }).pipe(Effect.ignore)
      )
    )
  }

  const writeContent = (path: string, content: string | Uint8Array, mode: WriteMode) =>
    Effect.flatMap(bytesEndpoints, (bytes) => {
      // one request and no command: the extension writes like the text endpoint, byte-exact
      if (bytes && mode === "truncate") {
        return client.writeFileBytes(path, toBytes(content))
      }
      const cmd = inlineWrite(path, content, mode)
      return cmd === undefined
        ? writeStaged(path, Stream.succeed(toBytes(content)), mode, false)
        : runWriteScript([path], cmd)
    })

  const writeFile = Effect.fn("Filesystem.writeFile")(
    function*(path: string, content: string | Uint8Array, options?: WriteOptions) {
      yield* checkPath("path", path)
      if (typeof content === "string" && content.length <= textEndpointMaxChars && options?.exclusive !== true) {
        return yield* client.writeFile(path, content)
      }
      yield* writeContent(path, content, options?.exclusive === true ? "exclusive" : "truncate")
    }
  )

  const appendFile = Effect.fn("Filesystem.appendFile")(function*(path: string, content: string | Uint8Array) {
    yield* checkPath("path", path)
    yield* writeContent(path, content, "append")
  })

  const writeStream = Effect.fn("Filesystem.writeStream")(
    function*<E, R>(path: string, stream: Stream.Stream<Uint8Array, E, R>, options?: WriteOptions) {
      yield* checkPath("path", path)
      yield* writeStaged(path, stream, options?.exclusive === true ? "exclusive" : "truncate", true)
    }
  )

  /** Runs one batch script: inline when it fits in a command, else staged in /tmp and removed as it starts. */
  const runBatch = (paths: ReadonlyArray<string>, statements: ReadonlyArray<string>) => {
    const script = [writeFailureFunction, ...statements].join("\n")
    if (utf8Length(script) <= maxCommandBytes) return runWriteScript(paths, script)
    const scriptPath = `/tmp/.effect-koyeb-${randomToken()}.sh`
    return client.writeFile(scriptPath, script).pipe(
      Effect.zipRight(runWriteScript(paths, `{ rm -f -- ${quote(scriptPath)}; exec sh -s; } < ${quote(scriptPath)}`)),
      Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : client.deleteFile(scriptPath).pipe(Effect.ignore))
    )
  }

  const writeFiles = Effect.fn("Filesystem.writeFiles")(function*(files: Iterable<FileToWrite>) {
    const all = Array.from(files)
    for (const file of all) yield* checkPath("path", file.path)
    const large: Array<FileToWrite> = []
    let paths: Array<string> = []
    let statements: Array<string> = []
    let size = 0
    for (const file of all) {
      if (file.content.length > batchedFileMaxBytes) {
        large.push(file)
        continue
      }
      const producer = `printf ${quote(printfFormat(file.content))}`
      if (size + producer.length > batchScriptMaxChars && statements.length > 0) {
        yield* runBatch(paths, statements)
        paths = []
        statements = []
        size = 0
      }
      statements.push(writeStatement(paths.length, file.path, "truncate", producer))
      paths.push(file.path)
      size += producer.length
    }
    if (statements.length > 0) yield* runBatch(paths, statements)
    for (const file of large) yield* writeContent(file.path, file.content, "truncate")
  })

  const readStream = (path: string): Stream.Stream<Uint8Array, FilesystemFailure> =>
    Stream.unwrap(Effect.gen(function*() {
      yield* checkPath("path", path)
      if (yield* bytesEndpoints) return client.readFileBytes(path)
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
            return bytes === undefined ? Effect.fail(undecodable) : Effect.succeed(bytes.length === 0 ? [] : [bytes])
          }
          if (event.code !== 0) {
            return Effect.fail(guardError(guards, event.code) ?? classifyStderr(path, event.code, stderr))
          }
          return decoder.isComplete ? Effect.succeed([]) : Effect.fail(undecodable)
        })
      )
    })).pipe(Stream.withSpan("Filesystem.readStream"))

  const readFile = Effect.fn("Filesystem.readFile")(function*(path: string) {
    return concatBytes(yield* Stream.runCollect(readStream(path)))
  })

  const readFileString = Effect.fn("Filesystem.readFileString")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* client.readFile(path)
  })

  const mkdir = Effect.fn("Filesystem.mkdir")(function*(path: string, options?: MkdirOptions) {
    yield* checkPath("path", path)
    const exclusive = options?.exclusive === true
    const recursive = options?.recursive === true
    if (recursive && !exclusive) return yield* client.makeDir(path)
    const guards: ReadonlyArray<Guard> = [
      exclusive
        ? { failsIf: present(path), error: new FileExists({ path }) }
        : {
          failsIf: `${present(path)} && ! [ -d ${arg(path)} ]`,
          error: new FilesystemError({ path, reason: "NotADirectory", detail: "a file is in the way" })
        },
      ...(recursive ? [] : parentMustBeDirectory(path))
    ]
    // the last `mkdir` has no -p so that a directory created concurrently is still `FileExists`
    const action = exclusive
      ? `${recursive ? `mkdir -p ${arg(parentOf(path))} && ` : ""}mkdir ${arg(path)}`
      : `[ -d ${arg(path)} ] || mkdir ${arg(path)}`
    yield* runGuarded(guards, `exec >/dev/null; ${action}`, path)
  })

  const list = Effect.fn("Filesystem.list")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* client.listDir(path)
  })

  const notADirectoryGuard = (path: string): Guard => ({
    failsIf: `! [ -d ${arg(path)} ]`,
    error: new FilesystemError({ path, reason: "NotADirectory", detail: "the path is not a directory" })
  })

  const listDetailed = Effect.fn("Filesystem.listDetailed")(function*(path: string) {
    yield* checkPath("path", path)
    const stdout = yield* runGuarded(
      [mustExist(path), notADirectoryGuard(path)],
      `exec find -H ${findArg(path)} -mindepth 1 -maxdepth 1 -printf ${quote(entryFormat)}`,
      path
    )
    const entries: Array<FileEntry> = []
    for (const record of stdout.split("\0")) {
      if (record.length === 0) continue
      const entry = parseEntry(record, path, path)
      if (entry === undefined) {
        return yield* new FilesystemError({ path, reason: "Unknown", detail: `unexpected listing line: ${record}` })
      }
      entries.push(entry)
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  })

  const stat = Effect.fn("Filesystem.stat")(function*(path: string) {
    yield* checkPath("path", path)
    const stdout = yield* runGuarded(
      [mustExist(path)],
      `exec find -H ${findArg(path)} -maxdepth 0 -printf ${quote(entryFormat)}`,
      path
    )
    const entry = parseEntry(stdout.split("\0")[0] ?? "", undefined, path)
    if (entry === undefined) {
      return yield* new FilesystemError({ path, reason: "Unknown", detail: `unexpected stat output: ${stdout}` })
    }
    return entry
  })

  const isADirectoryGuard = (path: string): Guard => ({
    failsIf: `[ -d ${arg(path)} ] && ! [ -L ${arg(path)} ]`,
    error: new FilesystemError({ path, reason: "IsADirectory", detail: "the path is a directory" })
  })

  const deleteFile = Effect.fn("Filesystem.deleteFile")(function*(path: string) {
    yield* checkPath("path", path)
    yield* runGuarded([mustExist(path), isADirectoryGuard(path)], `exec >/dev/null; rm -f ${arg(path)}`, path)
  })

  const deleteDir = Effect.fn("Filesystem.deleteDir")(function*(path: string) {
    yield* checkPath("path", path)
    yield* runGuarded([mustExist(path), notADirectoryGuard(path)], `exec >/dev/null; rm -rf ${arg(path)}`, path)
  })

  const rm = Effect.fn("Filesystem.rm")(function*(path: string, options?: RmOptions) {
    yield* checkPath("path", path)
    const guards = [
      ...(options?.force === true ? [] : [mustExist(path)]),
      ...(options?.recursive === true ? [] : [isADirectoryGuard(path)])
    ]
    yield* runGuarded(guards, `exec >/dev/null; rm -f${options?.recursive === true ? "r" : ""} ${arg(path)}`, path)
  })

  const moveImpl = (span: string) => (from: string, to: string, options?: MoveOptions) =>
    Effect.gen(function*() {
      yield* checkPath("from", from)
      yield* checkPath("to", to)
      const overwrite = options?.overwrite === true
      const exists: Guard = { failsIf: present(to), error: new FileExists({ path: to }) }
      const guards: ReadonlyArray<Guard> = [
        mustExist(from),
        overwrite
          ? {
            failsIf: `[ -d ${arg(to)} ] && ! [ -L ${arg(to)} ] && ! [ -d ${arg(from)} ]`,
            error: new FilesystemError({
              path: to,
              reason: "IsADirectory",
              detail: "cannot replace a directory with a file"
            })
          }
          : exists,
        ...parentMustBeDirectory(to)
      ]
      // `mv -n` skips silently when `to` appeared after the guard: the source still being there tells
      const action = overwrite
        ? `mv -f -T ${arg(from)} ${arg(to)}`
        : `mv -n -T ${arg(from)} ${arg(to)} || exit; if ${present(from)}; then exit ${guardExit(guards, exists)}; fi`
      yield* runGuarded(guards, `exec >/dev/null; ${action}`, from)
    }).pipe(Effect.withSpan(span))

  const move = moveImpl("Filesystem.move")
  const rename = moveImpl("Filesystem.rename")

  const test = (flag: "-e" | "-f" | "-d", span: string) => (path: string) =>
    Effect.gen(function*() {
      yield* checkPath("path", path)
      const reply = yield* client.run({ cmd: `[ ${flag} ${arg(path)} ]` })
      if (reply.code === 0 || reply.code === 1) return reply.code === 0
      return yield* new FilesystemError({
        path,
        reason: "Unknown",
        detail: `test ${flag} exited with ${reply.code}: ${reply.stderr}`
      })
    }).pipe(Effect.withSpan(span))

  const exists = test("-e", "Filesystem.exists")
  const isFile = test("-f", "Filesystem.isFile")
  const isDir = test("-d", "Filesystem.isDir")

  const upload = Effect.fn("Filesystem.upload")(
    function*(localPath: string, remotePath: string, options?: WriteOptions) {
      yield* checkPath("localPath", localPath)
      yield* checkPath("remotePath", remotePath)
      const fs = yield* FileSystem.FileSystem
      const local = localFileError(localPath)
      const info = yield* fs.stat(localPath).pipe(Effect.mapError(local))
      if (info.type === "Directory") {
        return yield* new FilesystemError({
          path: localPath,
          reason: "IsADirectory",
          detail: "local path is a directory"
        })
      }
      const mode: WriteMode = options?.exclusive === true ? "exclusive" : "truncate"
      if (Number(info.size) <= stagedChunkBytes) {
        const bytes = yield* fs.readFile(localPath).pipe(Effect.mapError(local))
        return yield* writeContent(remotePath, bytes, mode)
      }
      yield* writeStaged(
        remotePath,
        fs.stream(localPath, { chunkSize: FileSystem.Size(stagedChunkBytes) }).pipe(Stream.mapError(local)),
        mode,
        true
      )
    }
  )

  const download = Effect.fn("Filesystem.download")(function*(remotePath: string, localPath: string) {
    yield* checkPath("remotePath", remotePath)
    yield* checkPath("localPath", localPath)
    yield* writeLocalFile(localPath, readStream(remotePath))
  })

  const open = Effect.fn("Filesystem.open")(function*(path: string) {
    yield* checkPath("path", path)
    return fileHandle(path, { readFile, readFileString, writeFile, appendFile })
  })

  return {
    writeFile,
    appendFile,
    writeStream,
    writeFiles,
    readFile,
    readFileString,
    readStream,
    mkdir,
    list,
    listDetailed,
    stat,
    deleteFile,
    deleteDir,
    rename,
    move,
    exists,
    isFile,
    isDir,
    rm,
    upload,
    download,
    open
  } satisfies FilesystemShape
})

/**
 * The `Filesystem` service over the sandbox's `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Filesystem, never, ExecutorClient> = Layer.effect(Filesystem, make)
