/**
 * The six file operations of the executor with the semantics of the Go calls behind them
 * (`os.WriteFile`, `os.ReadFile`, `os.Remove`, `os.RemoveAll`, `os.MkdirAll`, `os.ReadDir`) and
 * their exact `*PathError` texts (`koyeb-wire.md` §2.7), plus streamed byte writes and reads with
 * the same opens and texts (the `binary-files` extension). Paths are resolved against `cwd`.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs/promises"
import * as Path from "node:path"
import type { Readable } from "node:stream"

// Go's syscall error strings (zerrors_linux), which are lower-cased libc texts
const errnoTexts: Record<string, string> = {
  ENOENT: "no such file or directory",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EEXIST: "file exists",
  EINVAL: "invalid argument",
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  EBUSY: "device or resource busy",
  EMFILE: "too many open files",
  ENFILE: "too many open files in system",
  EFBIG: "file too large",
  EXDEV: "invalid cross-device link",
  EIO: "input/output error",
  ETXTBSY: "text file busy",
  ENXIO: "no such device or address",
  ENODEV: "no such device",
  EAGAIN: "resource temporarily unavailable",
  ENOMEM: "cannot allocate memory"
}

const codeOf = (cause: unknown): string => (cause as NodeJS.ErrnoException | undefined)?.code ?? "EIO"

const errnoText = (code: string): string => errnoTexts[code] ?? code.toLowerCase()

/** A Go `*PathError` text: `<op> <path>: <errno text>`. */
const pathError = (op: string, path: string, cause: unknown): string => `${op} ${path}: ${errnoText(codeOf(cause))}`

/** The outcome of a file operation: a value, or the Go error text. */
export type Outcome<A> = { readonly _tag: "Ok"; readonly value: A } | { readonly _tag: "Err"; readonly error: string }

const ok = <A>(value: A): Outcome<A> => ({ _tag: "Ok", value })
const err = (error: string): Outcome<never> => ({ _tag: "Err", error })

/** File operations bound to a working directory. */
export interface GoFiles {
  readonly writeFile: (path: string, content: string) => Effect.Effect<Outcome<void>>
  readonly readFile: (path: string) => Effect.Effect<Outcome<string>>
  /**
   * Opens as `os.WriteFile` does, then writes the bytes of `body` as they arrive, pausing it while
   * the disk is behind. A failed write stops it (`write` error text, the rest of `body` is left
   * unread); a body that stops early (aborted) or an interruption keeps what arrived.
   */
  readonly writeStream: (path: string, body: Readable) => Effect.Effect<Outcome<void>>
  /**
   * Opens as `os.ReadFile` does and reads a first chunk, so that every error before the first
   * byte has its texts; then the file's bytes as a stream that closes the file when it ends or is
   * destroyed.
   */
  readonly readStream: (path: string) => Effect.Effect<Outcome<Readable>>
  readonly deleteFile: (path: string) => Effect.Effect<Outcome<void>>
  readonly deleteDir: (path: string) => Effect.Effect<Outcome<void>>
  readonly makeDir: (path: string) => Effect.Effect<Outcome<void>>
  readonly listDir: (path: string) => Effect.Effect<Outcome<ReadonlyArray<string>>>
}

/** Bytes per read of a streamed file, and what a file write stream buffers. */
const chunkBytes = 256 * 1024

/**
 * Writes `body` into the open `handle` until `body` ends or closes, or a write fails; resolves
 * once the file is closed (the stream owns the handle). Interruption flushes what arrived.
 */
const pump = (handle: Fs.FileHandle, path: string, body: Readable): Effect.Effect<Outcome<void>> =>
  Effect.async<Outcome<void>>((resume) => {
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
      resume(Effect.succeed(failure === undefined ? ok(undefined) : err(pathError("write", path, failure))))
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

/** Creates the file operations; relative paths resolve against `cwd` (the executor's working directory). */
export const make = (cwd: string): GoFiles => {
  // an empty path must fail like Go's (ENOENT), not resolve to `cwd`
  const abs = (p: string) => p === "" ? "" : Path.resolve(cwd, p)

  const run = <A>(f: () => Promise<Outcome<A>>): Effect.Effect<Outcome<A>> => Effect.promise(f)

  const tryOp = async <A>(op: string, path: string, f: () => Promise<A>): Promise<Outcome<A>> => {
    try {
      return ok(await f())
    } catch (cause) {
      return err(pathError(op, path, cause))
    }
  }

  // os.MkdirAll, step for step, so the failing path in the error is the one Go reports
  const mkdirAll = async (path: string): Promise<Outcome<void>> => {
    try {
      const stat = await Fs.stat(abs(path))
      return stat.isDirectory() ? ok(undefined) : err(pathError("mkdir", path, { code: "ENOTDIR" }))
    } catch {
      // fall through to creation
    }
    let i = path.length
    while (i > 0 && path[i - 1] === "/") i--
    let j = i
    while (j > 0 && path[j - 1] !== "/") j--
    if (j > 1) {
      const parent = await mkdirAll(path.slice(0, j - 1))
      if (parent._tag === "Err") return parent
    }
    try {
      await Fs.mkdir(abs(path), { mode: 0o755 })
      return ok(undefined)
    } catch (cause) {
      try {
        if ((await Fs.lstat(abs(path))).isDirectory()) return ok(undefined)
      } catch {
        // report the mkdir error
      }
      return err(pathError("mkdir", path, cause))
    }
  }

  return {
    writeFile: (path, content) =>
      run(() => tryOp("open", path, () => Fs.writeFile(abs(path), content, { mode: 0o644 }))),
    readFile: (path) =>
      run(async () => {
        const opened = await tryOp("open", path, () => Fs.open(abs(path), "r"))
        if (opened._tag === "Err") return opened
        const handle = opened.value
        try {
          return ok((await handle.readFile()).toString("utf8"))
        } catch (cause) {
          return err(pathError("read", path, cause))
        } finally {
          await handle.close()
        }
      }),
    writeStream: (path, body) =>
      Effect.acquireUseRelease(
        // os.WriteFile's open: O_WRONLY | O_CREATE | O_TRUNC, 0644 for a new file
        run(() => tryOp("open", path, () => Fs.open(abs(path), "w", 0o644))),
        (opened) => opened._tag === "Err" ? Effect.succeed(opened) : pump(opened.value, path, body),
        // a no-op once the stream closed it; closes it when interrupted before the stream existed
        (opened) => opened._tag === "Err" ? Effect.void : Effect.promise(() => opened.value.close())
      ),
    // uninterruptible: the handle is closed or owned by the returned stream, never dropped
    readStream: (path) =>
      run(async (): Promise<Outcome<Readable>> => {
        const opened = await tryOp("open", path, () => Fs.open(abs(path), "r"))
        if (opened._tag === "Err") return opened
        const handle = opened.value
        try {
          const first = Buffer.allocUnsafe(chunkBytes)
          // reads from the file position, not by size: procfs files and growing files read as they are
          const { bytesRead } = await handle.read(first, 0, chunkBytes, null)
          const stream = handle.createReadStream({ highWaterMark: chunkBytes })
          if (bytesRead > 0) stream.unshift(first.subarray(0, bytesRead))
          return ok(stream)
        } catch (cause) {
          await handle.close()
          return err(pathError("read", path, cause))
        }
      }).pipe(Effect.uninterruptible),
    // os.Remove: unlink, then rmdir; the rmdir error wins unless it is ENOTDIR
    deleteFile: (path) =>
      run(async () => {
        try {
          await Fs.unlink(abs(path))
          return ok(undefined)
        } catch (unlinkError) {
          try {
            await Fs.rmdir(abs(path))
            return ok(undefined)
          } catch (rmdirError) {
            return err(pathError("remove", path, codeOf(rmdirError) === "ENOTDIR" ? unlinkError : rmdirError))
          }
        }
      }),
    deleteDir: (path) =>
      run(async () => {
        if (path === "") return ok(undefined)
        if (path === "." || path.endsWith("/.")) return err(pathError("RemoveAll", path, { code: "EINVAL" }))
        return tryOp("unlinkat", path, () => Fs.rm(abs(path), { recursive: true, force: true }))
      }),
    makeDir: (path) => run(() => mkdirAll(path)),
    listDir: (path) =>
      run(async () => {
        const opened = await tryOp("open", path, () => Fs.open(abs(path), "r"))
        if (opened._tag === "Err") return opened
        await opened.value.close()
        try {
          const names = await Fs.readdir(abs(path))
          // Go sorts by the UTF-8 bytes of the names
          return ok(names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))))
        } catch (cause) {
          return err(pathError("readdirent", path, cause))
        }
      })
  }
}
