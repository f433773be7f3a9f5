/**
 * Go's texts for failed system calls, as the stock executor writes them: the errno strings of
 * Go's `syscall` package (zerrors_linux: glibc's `strerror` texts, lower-cased) and the shape of
 * an `*os.PathError`, `<op> <path>: <errno text>`. One table for every part of the executor that
 * reports a Node failure the way Go would (files, watches, starting commands).
 *
 * @internal
 */

const errnoTexts: Readonly<Record<string, string>> = {
  E2BIG: "argument list too long",
  EACCES: "permission denied",
  EAGAIN: "resource temporarily unavailable",
  EBUSY: "device or resource busy",
  EDQUOT: "disk quota exceeded",
  EEXIST: "file exists",
  EFBIG: "file too large",
  EINVAL: "invalid argument",
  EIO: "input/output error",
  EISDIR: "is a directory",
  ELOOP: "too many levels of symbolic links",
  EMFILE: "too many open files",
  ENAMETOOLONG: "file name too long",
  ENFILE: "too many open files in system",
  ENODEV: "no such device",
  ENOENT: "no such file or directory",
  ENOEXEC: "exec format error",
  ENOMEM: "cannot allocate memory",
  ENOSPC: "no space left on device",
  ENOTDIR: "not a directory",
  ENOTEMPTY: "directory not empty",
  ENXIO: "no such device or address",
  EPERM: "operation not permitted",
  EROFS: "read-only file system",
  ETXTBSY: "text file busy",
  EXDEV: "invalid cross-device link"
}

// Node refuses a string holding a NUL byte before any system call; Go's syscall layer answers EINVAL.
const nodeCodes: Readonly<Record<string, string>> = { ERR_INVALID_ARG_VALUE: "EINVAL" }

const codeOf = (cause: unknown): string | undefined => {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code
  return typeof code === "string" ? (Object.hasOwn(nodeCodes, code) ? nodeCodes[code] : code) : undefined
}

/** Go's errno text for the failed Node call `cause`; `undefined` when it carries no errno this table names. */
export const errnoText = (cause: unknown): string | undefined => {
  const code = codeOf(cause)
  return code !== undefined && Object.hasOwn(errnoTexts, code) ? errnoTexts[code] : undefined
}

/** `errnoText`, else an unnamed code lower-cased (`ewhatever`), else `EIO`'s text for a failure without a code. */
export const causeText = (cause: unknown): string => errnoText(cause) ?? codeOf(cause)?.toLowerCase() ?? errnoTexts.EIO!

/** Go's `*PathError` text for `op` on `path` failing with `cause`: `<op> <path>: <errno text>`. */
export const pathError = (op: string, path: string, cause: unknown): string => `${op} ${path}: ${causeText(cause)}`

/** Whether `cause` is a failure with errno `code` (`ENOENT`, …). */
export const hasCode = (cause: unknown, code: string): boolean => codeOf(cause) === code
