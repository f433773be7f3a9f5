/**
 * The `Filesystem` service: text through the executor's text endpoints, bytes through the
 * strategy chosen once from the executor's capabilities (`binaryStrategy` when it advertises
 * `binary-files`, else `shellStrategy`), entries through guarded commands, and the local side of
 * `upload` / `download` through the host's file system.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"
import { ExecutorClient } from "../ExecutorClient.js"
import type { FilesystemShape, FileToWrite, WatchOptions, WriteOptions } from "../Filesystem.js"
import type { FilesystemFailure } from "../SandboxError.js"
import { concatBytes } from "./bytes.js"
import * as Capabilities from "./capabilities.js"
import {
  checkPath,
  fileHandle,
  printfFormat,
  writeFailureFunction,
  type WriteMode,
  writeStatement
} from "./fileCommands.js"
import { makeEntries } from "./fileEntries.js"
import { binaryStrategy, type FileStrategy, shellStrategy } from "./fileStrategy.js"
import { makeWrites, maxCommandBytes, stagedChunkBytes } from "./fileWrites.js"
import { hostFileSystem, localFileError, localFileSize, writeLocalFile } from "./hostFiles.js"
import { quote, randomToken, utf8Length } from "./shell.js"
import * as Watch from "./watch.js"

// `writeFiles`: files above this go through `writeFile`; the rest share scripts of at most this size.
const batchedFileMaxBytes = 256 * 1024
const batchScriptMaxChars = 4 * 1024 * 1024
// Text up to this size goes through `/write_file` in one request; larger text is staged like bytes
// (bounded request bodies, and executors may cap the body size).
const textEndpointMaxChars = 8 * 1024 * 1024

const writeMode = (options: WriteOptions | undefined): WriteMode =>
  options?.exclusive === true ? "exclusive" : "truncate"

/** Builds the service from an `ExecutorClient` (and the host's file system, when the context has one). */
export const make: Effect.Effect<FilesystemShape, never, ExecutorClient> = Effect.gen(function*() {
  const client = yield* ExecutorClient
  const capturedHost = yield* Effect.serviceOption(FileSystem.FileSystem)
  const writes = makeWrites(client)
  const entries = makeEntries(client, writes)
  const strategy: Effect.Effect<FileStrategy> = Capabilities.choose(
    client.capabilities,
    (capabilities) =>
      capabilities.has(Capabilities.binaryFiles) ? binaryStrategy(client, writes) : shellStrategy(client, writes)
  )

  const writeContent = (path: string, content: string | Uint8Array, mode: WriteMode) =>
    Effect.flatMap(strategy, (chosen) => chosen.writeContent(path, content, mode))

  const writeFile = Effect.fn("Filesystem.writeFile")(
    function*(path: string, content: string | Uint8Array, options?: WriteOptions) {
      yield* checkPath("path", path)
      if (typeof content === "string" && content.length <= textEndpointMaxChars && options?.exclusive !== true) {
        return yield* client.writeFile(path, content)
      }
      yield* writeContent(path, content, writeMode(options))
    }
  )

  const appendFile = Effect.fn("Filesystem.appendFile")(function*(path: string, content: string | Uint8Array) {
    yield* checkPath("path", path)
    yield* writeContent(path, content, "append")
  })

  const writeStream = Effect.fn("Filesystem.writeStream")(
    function*<E, R>(path: string, stream: Stream.Stream<Uint8Array, E, R>, options?: WriteOptions) {
      yield* checkPath("path", path)
      yield* writes.writeStaged(path, stream, writeMode(options), true, strategy)
    }
  )

  /** Runs one batch script: inline when it fits in a command, else staged in /tmp and removed as it starts. */
  const runBatch = (paths: ReadonlyArray<string>, statements: ReadonlyArray<string>) => {
    const script = [writeFailureFunction, ...statements].join("\n")
    if (utf8Length(script) <= maxCommandBytes) return writes.runWriteScript(paths, script)
    const scriptPath = `/tmp/.effect-koyeb-${randomToken()}.sh`
    return client.writeFile(scriptPath, script).pipe(
      Effect.zipRight(
        writes.runWriteScript(paths, `{ rm -f -- ${quote(scriptPath)}; exec sh -s; } < ${quote(scriptPath)}`)
      ),
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
      return (yield* strategy).readStream(path)
    })).pipe(Stream.withSpan("Filesystem.readStream"))

  const readFile = Effect.fn("Filesystem.readFile")(function*(path: string) {
    return concatBytes(yield* Stream.runCollect(readStream(path)))
  })

  const readFileString = Effect.fn("Filesystem.readFileString")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* client.readFile(path)
  })

  const upload = Effect.fn("Filesystem.upload")(
    function*(localPath: string, remotePath: string, options?: WriteOptions) {
      yield* checkPath("localPath", localPath)
      yield* checkPath("remotePath", remotePath)
      const fs = yield* hostFileSystem(capturedHost, "Filesystem.upload")
      const local = localFileError(localPath)
      if ((yield* localFileSize(fs, localPath)) <= stagedChunkBytes) {
        const bytes = yield* fs.readFile(localPath).pipe(Effect.mapError(local))
        return yield* writeContent(remotePath, bytes, writeMode(options))
      }
      yield* writes.writeStaged(
        remotePath,
        fs.stream(localPath, { chunkSize: FileSystem.Size(stagedChunkBytes) }).pipe(Stream.mapError(local)),
        writeMode(options),
        true,
        strategy
      )
    }
  )

  const download = Effect.fn("Filesystem.download")(function*(remotePath: string, localPath: string) {
    yield* checkPath("remotePath", remotePath)
    yield* checkPath("localPath", localPath)
    const fs = yield* hostFileSystem(capturedHost, "Filesystem.download")
    yield* writeLocalFile(fs, localPath, readStream(remotePath))
  })

  const open = Effect.fn("Filesystem.open")(function*(path: string) {
    yield* checkPath("path", path)
    return fileHandle(path, { readFile, readFileString, writeFile, appendFile })
  })

  const watchStrategy = Capabilities.choose(
    client.capabilities,
    (capabilities) =>
      capabilities.has(Capabilities.watch) && client.watch !== undefined
        ? (path: string, options: WatchOptions | undefined) =>
          Watch.executorWatch(client, path, options?.recursive === true)
        : (path: string, options: WatchOptions | undefined) =>
          Watch.pollingWatch(
            writes,
            path,
            options?.recursive === true,
            options?.pollInterval ?? Watch.defaultPollInterval
          )
  )

  const watchScoped = Effect.fn("Filesystem.watchScoped")(function*(path: string, options?: WatchOptions) {
    yield* checkPath("path", path)
    return yield* (yield* watchStrategy)(path, options)
  })

  return {
    ...entries,
    writeFile,
    appendFile,
    writeStream,
    writeFiles,
    readFile,
    readFileString,
    readStream,
    upload,
    download,
    open,
    watch: Watch.fromScoped(watchScoped),
    watchScoped
  } satisfies FilesystemShape
})
