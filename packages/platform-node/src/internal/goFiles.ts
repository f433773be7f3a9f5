/**
 * The six file operations of the executor with the semantics of the Go calls behind them
 * (`os.WriteFile`, `os.ReadFile`, `os.Remove`, `os.RemoveAll`, `os.MkdirAll`, `os.ReadDir`) and
 * their exact `*PathError` texts, plus streamed byte writes and reads with the same opens and
 * texts (the `binary-files` extension). Paths are resolved against `cwd`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import type { Readable } from "node:stream"
import * as GoErrors from "./goErrors.js"
import * as GoJson from "./goJson.js"

/** A failed file operation; `text` is Go's `*PathError` text: `<op> <path>: <errno text>`. */
export class FileError extends Data.TaggedError("FileError")<{ readonly text: string }> {}

const pathError = (op: string, path: string, cause: unknown): FileError =>
  new FileError({ text: GoErrors.pathError(op, path, cause) })

/** The promise of `f`, failing with the raw rejection (or exception). */
const tryAsync = <A>(f: () => Promise<A>): Effect.Effect<A, unknown> => Effect.tryPromise({ try: f, catch: (e) => e })

/** The promise of `f`, failing with the `*PathError` of `op` on `path`. */
const attempt = <A>(op: string, path: string, f: () => Promise<A>): Effect.Effect<A, FileError> =>
  Effect.tryPromise({ try: f, catch: (cause) => pathError(op, path, cause) })

const close = (handle: Fs.FileHandle): Effect.Effect<void> => Effect.promise(() => handle.close())

/** File operations bound to a working directory; failures carry the Go error text. */
export interface GoFiles {
  readonly writeFile: (path: string, content: string) => Effect.Effect<void, FileError>
  /** The file as text for `GoJson.string`, invalid bytes as Go writes them (`GoJson.fromBytes`). */
  readonly readFile: (path: string) => Effect.Effect<string, FileError>
  /**
   * Opens as `os.WriteFile` does, then writes the bytes of `body` as they arrive, pausing it while
   * the disk is behind. A failed write stops it (`write` error text, the rest of `body` is left
   * unread); a body that stops early (aborted) or an interruption keeps what arrived.
   */
  readonly writeStream: (path: string, body: Readable) => Effect.Effect<void, FileError>
  /**
   * Opens as `os.ReadFile` does and reads a first chunk, so that every error before the first
   * byte has its texts; then the file's bytes as a stream that closes the file when it ends or is
   * destroyed.
   */
  readonly readStream: (path: string) => Effect.Effect<Readable, FileError>
  readonly deleteFile: (path: string) => Effect.Effect<void, FileError>
  readonly deleteDir: (path: string) => Effect.Effect<void, FileError>
  readonly makeDir: (path: string) => Effect.Effect<void, FileError>
  readonly listDir: (path: string) => Effect.Effect<ReadonlyArray<string>, FileError>
}

/** Bytes per read of a streamed file, and what a file write stream buffers. */
const chunkBytes = 256 * 1024

/**
 * Writes `body` into the open `handle` until `body` ends or closes, or a write fails; resolves
 * once the file is closed (the stream owns the handle). Interruption flushes what arrived.
 */
const pump = (handle: Fs.FileHandle, path: string, body: Readable): Effect.Effect<void, FileError> =>
  Effect.async<void, FileError>((resume) => {
    const file = handle.createWriteStream({ highWaterMark: chunkBytes })
    let failure: unknown = undefined
    let closed = false
    const stop = () => {
      body.unpipe(file)
      body.off("close", stop)
      body.off("error", stop)
      if (!file.destroyed && !file.writableEnded) file.end()
    }
    file.on("error", (cause) => {
      failure ??= cause
      stop()
    })
    file.once("close", () => {
      closed = true
      resume(failure === undefined ? Effect.void : Effect.fail(pathError("write", path, failure)))
    })
    // `close` without `end`: the client went away; the bytes already received are kept
    body.once("close", stop)
    body.once("error", stop)
    body.pipe(file)
    return Effect.async<void>((done) => {
      if (closed) return done(Effect.void)
      file.once("close", () => done(Effect.void))
      stop()
    })
  })

/**
 * A stream of the open `handle` that starts with a first chunk already read: reads from the file
 * position, not by size, so procfs files and growing files read as they are.
 */
const streamOf = async (handle: Fs.FileHandle): Promise<Readable> => {
  const first = Buffer.allocUnsafe(chunkBytes)
  const { bytesRead } = await handle.read(first, 0, chunkBytes, null)
  const stream = handle.createReadStream({ highWaterMark: chunkBytes })
  if (bytesRead > 0) stream.unshift(first.subarray(0, bytesRead))
  return stream
}

/** Go sorts directory entries by the UTF-8 bytes of their names. */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b))

/** Creates the file operations; relative paths resolve against `cwd` (the executor's working directory). */
export const make = (cwd: string): GoFiles => {
  // an empty path must fail like Go's (ENOENT), not resolve to `cwd`
  const abs = (p: string) => p === "" ? "" : Path.resolve(cwd, p)

  const open = (path: string, flags: string, mode?: number) =>
    attempt("open", path, () => Fs.open(abs(path), flags, mode))

  // os.MkdirAll, step for step, so the failing path in the error is the one Go reports
  const mkdirAll = (path: string): Effect.Effect<void, FileError> =>
    Effect.matchEffect(tryAsync(() => Fs.stat(abs(path))), {
      onSuccess: (stat) =>
        stat.isDirectory() ? Effect.void : Effect.fail(pathError("mkdir", path, { code: "ENOTDIR" })),
      onFailure: () => create(path)
    })

  const create = (path: string): Effect.Effect<void, FileError> => {
    let i = path.length
    while (i > 0 && path[i - 1] === "/") i--
    let j = i
    while (j > 0 && path[j - 1] !== "/") j--
    const parent = j > 1 ? mkdirAll(path.slice(0, j - 1)) : Effect.void
    const mkdir = tryAsync(() => Fs.mkdir(abs(path), { mode: 0o755 })).pipe(
      // lost a race with another creator: fine when a directory is there now
      Effect.catchAll((cause) =>
        Effect.flatMap(
          Effect.option(tryAsync(() => Fs.lstat(abs(path)))),
          (stat) =>
            stat._tag === "Some" && stat.value.isDirectory()
              ? Effect.void
              : Effect.fail(pathError("mkdir", path, cause))
        )
      )
    )
    return Effect.zipRight(parent, mkdir)
  }

  return {
    writeFile: (path, content) => attempt("open", path, () => Fs.writeFile(abs(path), content, { mode: 0o644 })),
    readFile: (path) =>
      Effect.acquireUseRelease(
        open(path, "r"),
        (handle) => Effect.map(attempt("read", path, () => handle.readFile()), (bytes) => GoJson.fromBytes(bytes)),
        close
      ),
    writeStream: (path, body) =>
      Effect.acquireUseRelease(
        // os.WriteFile's open: O_WRONLY | O_CREATE | O_TRUNC, 0644 for a new file
        open(path, "w", 0o644),
        (handle) => pump(handle, path, body),
        // a no-op once the stream closed it; closes it when interrupted before the stream existed
        close
      ),
    // uninterruptible: the handle is closed or owned by the returned stream, never dropped
    readStream: (path) =>
      Effect.flatMap(open(path, "r"), (handle) =>
        tryAsync(() => streamOf(handle)).pipe(
          Effect.catchAll((cause) => Effect.zipRight(close(handle), Effect.fail(pathError("read", path, cause))))
        )).pipe(Effect.uninterruptible),
    // os.Remove: unlink, then rmdir; the rmdir error wins unless it is ENOTDIR
    deleteFile: (path) =>
      tryAsync(() => Fs.unlink(abs(path))).pipe(
        Effect.catchAll((unlinkError) =>
          Effect.tryPromise({
            try: () => Fs.rmdir(abs(path)),
            catch: (rmdirError) =>
              pathError("remove", path, GoErrors.hasCode(rmdirError, "ENOTDIR") ? unlinkError : rmdirError)
          })
        )
      ),
    deleteDir: (path) =>
      Effect.suspend(() => {
        if (path === "") return Effect.void
        if (path === "." || path.endsWith("/.")) return Effect.fail(pathError("RemoveAll", path, { code: "EINVAL" }))
        return attempt("unlinkat", path, () => Fs.rm(abs(path), { recursive: true, force: true }))
      }),
    makeDir: mkdirAll,
    listDir: (path) =>
      Effect.flatMap(open(path, "r"), close).pipe(
        Effect.zipRight(attempt("readdirent", path, () => Fs.readdir(abs(path)))),
        Effect.map((names) => names.sort(byUtf8))
      )
  }
}
