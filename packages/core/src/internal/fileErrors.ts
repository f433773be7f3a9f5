/**
 * Classification of the Go `*PathError` texts that the executor's file endpoints return in a 200
 * body. The text has the shape `<op> <path>: <errno text>`; the path may
 * itself contain `: `, so only the operation prefix and the errno suffix are matched.
 *
 * @internal
 */
import { FileNotFound, FilesystemError, type FilesystemErrorReason } from "../SandboxError.js"

// errno texts of Linux/Go; EPERM is a permission failure too (e.g. a sticky directory)
const suffixes: ReadonlyArray<readonly [string, FilesystemErrorReason | "NotFound"]> = [
  [": no such file or directory", "NotFound"],
  [": is a directory", "IsADirectory"],
  [": not a directory", "NotADirectory"],
  [": directory not empty", "DirectoryNotEmpty"],
  [": permission denied", "PermissionDenied"],
  [": operation not permitted", "PermissionDenied"],
  [": invalid argument", "InvalidPath"],
  [": file name too long", "InvalidPath"]
]

// Go operation names are single words: open, read, readdirent, remove, mkdir, RemoveAll, unlinkat…
const opPrefix = /^[A-Za-z]+ /

/** Turns the `error` text of a file endpoint into a typed error about `path` (the path the caller sent). */
export const classify = (path: string, text: string): FileNotFound | FilesystemError => {
  const op = opPrefix.exec(text)
  if (op !== null) {
    for (const [suffix, reason] of suffixes) {
      // the path part sits between "<op> " and the suffix and may be empty
      if (text.endsWith(suffix) && text.length >= op[0].length + suffix.length) {
        return reason === "NotFound"
          ? new FileNotFound({ path, detail: text })
          : new FilesystemError({ path, reason, detail: text })
      }
    }
  }
  return new FilesystemError({ path, reason: "Unknown", detail: text })
}
