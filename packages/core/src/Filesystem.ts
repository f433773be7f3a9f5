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
 *   stages byte chunks that one `cat` joins), a read one `/read_file_bytes` stream (the way is
 *   chosen once per service, from `ExecutorClient.capabilities`, when bytes first travel);
 * - every other operation is one quoted command whose guards (`test`) exit with a code of their
 *   own, so failures are typed without parsing error text.
 *
 * Semantics that differ from the stock endpoints on purpose: `deleteFile` refuses directories,
 * `deleteDir` fails on a missing path and on a file, `move` / `rename` never move *into* an
 * existing directory (the destination is the exact new path) and refuse to overwrite unless asked.
 * Nothing is atomic: an interrupted write may leave a partially written destination (never a
 * staging file).
 *
 * `watch` follows the changes below a directory. When `/health` lists `watch` (effect-koyeb's
 * executor), the executor watches with inotify (one watch per directory, Node's `fs.watch`) and
 * streams each event as it happens; a `rename` within the tree is one event with `from`, paired
 * by inode. Elsewhere (Koyeb's stock executor) the SDK polls: one `find -printf` snapshot per
 * `pollInterval` (default 500 ms, one `/run` each), diffed against the previous one. Polling has
 * limits: changes within one interval are merged (a file created then modified is one `create`, one
 * created and deleted is nothing), a `rename` is seen as `delete` plus `create`, a `modify` needs
 * a change of size or mtime (at the file system's mtime resolution), and each poll lists the whole
 * tree. In both, a directory's own mtime is not an event, and the stream ends after the `delete` of
 * the watched directory itself.
 *
 * Commands use POSIX `sh` and GNU coreutils / findutils (`base64 -w`, `mv -T`, `find -printf`), as
 * in Koyeb's Ubuntu-based sandbox images.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ExecutorClient } from "./ExecutorClient.js"
import * as internal from "./internal/filesystem.js"
import type { ExecutorFailure, FilesystemError, FilesystemFailure, InvalidArgument } from "./SandboxError.js"
import type { FileEntry, FileEvent } from "./SandboxSchema.js"

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
 * Options of `watch` and `watchScoped`.
 *
 * @since 0.2.0
 * @category models
 */
export interface WatchOptions {
  /** Also watch every directory below, including those created later (default false: the directory's own entries). */
  readonly recursive?: boolean | undefined
  /** How often the polling fallback (stock executor) takes a snapshot (default 500 millis). */
  readonly pollInterval?: Duration.DurationInput | undefined
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
  /**
   * Copies a local file into the sandbox, streaming; a missing local file is `FileNotFound` with the
   * local path. Local files are read with `@effect/platform`'s `FileSystem`, taken from the caller's
   * context, else from the context the service was built in (one of them must have it).
   */
  readonly upload: (
    localPath: string,
    remotePath: string,
    options?: WriteOptions
  ) => Effect.Effect<void, FilesystemFailure>
  /**
   * Copies a sandbox file to a local path, streaming; the local file is replaced only on success.
   * The local file system is found as for `upload`.
   */
  readonly download: (remotePath: string, localPath: string) => Effect.Effect<void, FilesystemFailure>
  /** A handle on one file (nothing is opened in the sandbox). */
  readonly open: (path: string) => Effect.Effect<FileHandle, InvalidArgument>
  /**
   * The changes below a directory (`create`, `modify`, `delete`, `rename`) from when the stream
   * starts until it is closed, which stops the watch in the sandbox. A missing path is
   * `FileNotFound`, a file `NotADirectory`. Events that happen before the watch is set up are
   * not seen: to act only once it is, use `watchScoped`.
   *
   * @since 0.2.0
   */
  readonly watch: (path: string, options?: WatchOptions) => Stream.Stream<FileEvent, FilesystemFailure>
  /**
   * Like `watch`, but the watch is set up when the effect returns and lasts until the scope closes:
   * changes made after it returns are in the stream, buffered until read.
   *
   * @since 0.2.0
   */
  readonly watchScoped: (
    path: string,
    options?: WatchOptions
  ) => Effect.Effect<Stream.Stream<FileEvent, FilesystemFailure>, FilesystemFailure, Scope.Scope>
}

/**
 * The filesystem of one sandbox.
 *
 * @since 0.1.0
 * @category tags
 */
export class Filesystem extends Context.Tag("@effect-koyeb/core/Filesystem")<Filesystem, FilesystemShape>() {}

/**
 * Builds the service from an `ExecutorClient`. When the context also holds `@effect/platform`'s
 * `FileSystem`, `upload` and `download` use it unless their caller provides another.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<FilesystemShape, never, ExecutorClient> = internal.make

/**
 * The `Filesystem` service over the sandbox's `ExecutorClient`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Filesystem, never, ExecutorClient> = Layer.effect(Filesystem, make)
