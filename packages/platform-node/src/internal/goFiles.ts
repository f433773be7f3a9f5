/**
 * The six file operations of the executor with the semantics of the Go calls behind them
 * (`os.WriteFile`, `os.ReadFile`, `os.Remove`, `os.RemoveAll`, `os.MkdirAll`, `os.ReadDir`) and
 * their exact `*PathError` texts, plus streamed byte writes and reads with the same opens and
 * texts (the `binary-files` extension). Paths are resolved against `cwd`, then handed to a
 * {@link FileOps}: this process's own file system, or a spawner's, which resolves them inside its
 * sandbox.
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

/**
 * The system calls behind the operations, on absolute paths (or `""`); failures reject with an
 * `ErrnoException` (`code`, `errno`, `syscall`) as Node's fs does.
 */
export interface FileOps {
  /** Opens `path` there with `flags` (numeric, `fs.constants`) and `mode`; resolves to this process's handle of that file. */
  readonly open: (path: string, flags: number, mode: number) => Promise<Fs.FileHandle>
  readonly stat: (path: string) => Promise<{ readonly isDirectory: boolean }>
  readonly lstat: (path: string) => Promise<{ readonly isDirectory: boolean }>
  readonly mkdir: (path: string, mode: number) => Promise<void>
  readonly unlink: (path: string) => Promise<void>
  readonly rmdir: (path: string) => Promise<void>
  /** As `fs.rm(path, { recursive: true, force: true })`. */
  readonly removeAll: (path: string) => Promise<void>
  /** The names in directory `path` (unsorted). */
  readonly readdir: (path: string) => Promise<Array<string>>
}

/** {@link FileOps} on this process's file system. */
export const nodeFileOps: FileOps = {
  open: (path, flags, mode) => Fs.open(path, flags, mode),
  stat: (path) => Fs.stat(path).then((stat) => ({ isDirectory: stat.isDirectory() })),
  lstat: (path) => Fs.lstat(path).then((stat) => ({ isDirectory: stat.isDirectory() })),
  mkdir: (path, mode) => Fs.mkdir(path, { mode }),
  unlink: (path) => Fs.unlink(path),
  rmdir: (path) => Fs.rmdir(path),
  removeAll: (path) => Fs.rm(path, { recursive: true, force: true }),
  readdir: (path) => Fs.readdir(path)
}

// os.WriteFile's open: O_WRONLY | O_CREATE | O_TRUNC, 0644 for a new file; os.Open's: O_RDONLY
const writeFlags = Fs.constants.O_WRONLY | Fs.constants.O_CREAT | Fs.constants.O_TRUNC
const readFlags = Fs.constants.O_RDONLY

/**
 * The promise of `f`; a rejection with a {@link FileError} fails with it, any other with the
 * `*PathError` of `op` on `path`.
 */
const attempt = <A>(op: string, path: string, f: () => Promise<A>): Effect.Effect<A, FileError> =>
  Effect.tryPromise({ try: f, catch: (cause) => cause instanceof FileError ? cause : pathError(op, path, cause) })

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
export const make = (cwd: string, ops: FileOps = nodeFileOps): GoFiles => {
  // an empty path must fail like Go's (ENOENT), not resolve to `cwd`
  const abs = (p: string) => p === "" ? "" : Path.resolve(cwd, p)

  // Each operation is one async function (a single promise for the fiber to wait on: the hot path
  // of `/read_file` and `/write_file`), which closes what it opened even when its fiber is interrupted.

  const open = async (path: string, flags: number, mode: number): Promise<Fs.FileHandle> => {
    try {
      return await ops.open(abs(path), flags, mode)
    } catch (cause) {
      throw pathError("open", path, cause)
    }
  }

  // os.WriteFile: open, write, then close, whose error counts when the write succeeded
  const writeText = async (path: string, content: string): Promise<void> => {
    const handle = await open(path, writeFlags, 0o644)
    let failure: FileError | undefined
    try {
      await handle.writeFile(content)
    } catch (cause) {
      failure = pathError("write", path, cause)
    }
    try {
      await handle.close()
    } catch (cause) {
      failure ??= pathError("close", path, cause)
    }
    if (failure !== undefined) throw failure
  }

  // os.ReadFile ignores the close error: the reply need not wait for the close either
  const readText = async (path: string): Promise<string> => {
    const handle = await open(path, readFlags, 0)
    try {
      return GoJson.fromBytes(await handle.readFile())
    } finally {
      handle.close().catch(() => undefined)
    }
  }

  const openStream = async (path: string): Promise<Readable> => {
    const handle = await open(path, readFlags, 0)
    try {
      return await streamOf(handle)
    } catch (cause) {
      await handle.close()
      throw cause
    }
  }

  // os.Remove: unlink, then rmdir; the rmdir error wins unless it is ENOTDIR
  const remove = async (path: string): Promise<void> => {
    const target = abs(path)
    try {
      await ops.unlink(target)
    } catch (unlinkError) {
      try {
        await ops.rmdir(target)
      } catch (rmdirError) {
        throw pathError("remove", path, GoErrors.hasCode(rmdirError, "ENOTDIR") ? unlinkError : rmdirError)
      }
    }
  }

  // os.MkdirAll, step for step, so the failing path in the error is the one Go reports
  const mkdirAll = async (path: string): Promise<void> => {
    let isDirectory: boolean
    try {
      isDirectory = (await ops.stat(abs(path))).isDirectory
    } catch {
      return create(path)
    }
    if (!isDirectory) throw pathError("mkdir", path, { code: "ENOTDIR" })
  }

  const create = async (path: string): Promise<void> => {
    let i = path.length
    while (i > 0 && path[i - 1] === "/") i--
    let j = i
    while (j > 0 && path[j - 1] !== "/") j--
    if (j > 1) await mkdirAll(path.slice(0, j - 1))
    try {
      await ops.mkdir(abs(path), 0o755)
    } catch (cause) {
      // lost a race with another creator, or `dir/.`: fine when a directory is there now
      const there = await ops.lstat(abs(path)).then((stat) => stat.isDirectory, () => false)
      if (!there) throw pathError("mkdir", path, cause)
    }
  }

  // os.ReadDir: open (its errors), then the names
  const list = async (path: string): Promise<ReadonlyArray<string>> => {
    await (await open(path, readFlags, 0)).close()
    let names: Array<string>
    try {
      names = await ops.readdir(abs(path))
    } catch (cause) {
      throw pathError("readdirent", path, cause)
    }
    return names.sort(byUtf8)
  }

  return {
    writeFile: (path, content) => attempt("write", path, () => writeText(path, content)),
    readFile: (path) => attempt("read", path, () => readText(path)),
    writeStream: (path, body) =>
      Effect.acquireUseRelease(
        attempt("open", path, () => open(path, writeFlags, 0o644)),
        (handle) => pump(handle, path, body),
        // a no-op once the stream closed it; closes it when interrupted before the stream existed
        close
      ),
    // uninterruptible: the handle is closed or owned by the returned stream, never dropped
    readStream: (path) => Effect.uninterruptible(attempt("read", path, () => openStream(path))),
    deleteFile: (path) => attempt("remove", path, () => remove(path)),
    deleteDir: (path) =>
      Effect.suspend(() => {
        if (path === "") return Effect.void
        if (path === "." || path.endsWith("/.")) return Effect.fail(pathError("RemoveAll", path, { code: "EINVAL" }))
        return attempt("unlinkat", path, () => ops.removeAll(abs(path)))
      }),
    makeDir: (path) => attempt("mkdir", path, () => mkdirAll(path)),
    listDir: (path) => attempt("readdirent", path, () => list(path))
  }
}
