/**
 * The local side of `Filesystem.upload` and `download`: the host's file system (`@effect/platform`
 * `FileSystem`), its errors as the SDK's, and a download written to a temporary file renamed into
 * place only once complete.
 *
 * The public signatures name no `@effect/platform` type: the service takes the host file system
 * from the caller's context when the call runs, else from the context its `make` ran in.
 *
 * @internal
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import { FileNotFound, FilesystemError } from "../SandboxError.js"
import { randomToken } from "./shell.js"

/**
 * The host file system for `operation`: the caller's, else `captured` (the one of the context the
 * service was built in). Without either the call dies, as an effect does when a service is missing.
 */
export const hostFileSystem = (
  captured: Option.Option<FileSystem.FileSystem>,
  operation: string
): Effect.Effect<FileSystem.FileSystem> =>
  Effect.flatMap(
    Effect.serviceOption(FileSystem.FileSystem),
    (current) =>
      Option.match(Option.orElse(current, () => captured), {
        onNone: () =>
          Effect.dieMessage(
            `${operation} needs the host's file system: provide @effect/platform's FileSystem ` +
              "(for example NodeContext.layer) to the program, or where the Filesystem service is built"
          ),
        onSome: Effect.succeed
      })
  )

/** Maps a local (platform) file error of upload/download to the SDK's errors, naming the local path. */
export const localFileError = (path: string) => (error: PlatformError.PlatformError): FileNotFound | FilesystemError =>
  error._tag === "SystemError" && error.reason === "NotFound"
    ? new FileNotFound({ path, detail: `local: ${error.message}` })
    : new FilesystemError({
      path,
      reason: error._tag === "SystemError" && error.reason === "PermissionDenied" ? "PermissionDenied" : "Unknown",
      detail: `local: ${error.message}`
    })

/** The size of the local file `localPath`; a directory is `IsADirectory`, a missing file `FileNotFound`. */
export const localFileSize = (
  fs: FileSystem.FileSystem,
  localPath: string
): Effect.Effect<number, FileNotFound | FilesystemError> =>
  Effect.flatMap(
    fs.stat(localPath).pipe(Effect.mapError(localFileError(localPath))),
    (info) =>
      info.type === "Directory"
        ? Effect.fail(
          new FilesystemError({ path: localPath, reason: "IsADirectory", detail: "local path is a directory" })
        )
        : Effect.succeed(Number(info.size))
  )

/** Writes `source` to the local `localPath` through a temporary file renamed into place only once complete. */
export const writeLocalFile = <E, R>(
  fs: FileSystem.FileSystem,
  localPath: string,
  source: Stream.Stream<Uint8Array, E, R>
): Effect.Effect<void, E | FileNotFound | FilesystemError, R> => {
  const local = localFileError(localPath)
  const partial = `${localPath}.effect-koyeb-${randomToken()}.partial`
  return source.pipe(
    Stream.run(fs.sink(partial).pipe(Sink.mapError(local))),
    Effect.zipRight(fs.rename(partial, localPath).pipe(Effect.mapError(local))),
    Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : fs.remove(partial).pipe(Effect.ignore))
  )
}
