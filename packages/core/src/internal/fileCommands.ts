/**
 * The shell commands behind `Filesystem`: path arguments, guards that report failures as exit
 * codes (so no error text has to be parsed), `printf` formats that write exact bytes without
 * spawning a process, and the classification of what is left.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { FileHandle, FilesystemShape } from "../Filesystem.js"
import { FileExists, FileNotFound, FilesystemError, InvalidArgument } from "../SandboxError.js"
import type { FilesystemFailure } from "../SandboxError.js"
import { FileEntry, type FileType } from "../SandboxSchema.js"
import { quote } from "./shell.js"

/** Rejects paths no command can carry: empty, or containing NUL. */
export const validatePath = (argument: string, path: string): InvalidArgument | undefined =>
  path.length === 0
    ? new InvalidArgument({ argument, detail: "path must not be empty" })
    : path.includes("\0")
    ? new InvalidArgument({ argument, detail: "path must not contain NUL" })
    : undefined

/** `validatePath` as an effect. */
export const checkPath = (argument: string, path: string): Effect.Effect<void, InvalidArgument> => {
  const invalid = validatePath(argument, path)
  return invalid === undefined ? Effect.void : Effect.fail(invalid)
}

/** The handle `Filesystem.open` returns, over a service's own operations. */
export const fileHandle = (
  path: string,
  fs: Pick<FilesystemShape, "readFile" | "readFileString" | "writeFile" | "appendFile">
): FileHandle => ({
  path,
  read: fs.readFile(path),
  readString: fs.readFileString(path),
  write: (content) => fs.writeFile(path, content),
  append: (content) => fs.appendFile(path, content)
})

/** The path as one quoted shell word that no tool takes for an option. */
export const arg = (path: string): string => quote(path.startsWith("-") ? `./${path}` : path)

const trimSlashes = (path: string): string => {
  const trimmed = path.replace(/\/+$/, "")
  return trimmed.length === 0 && path.startsWith("/") ? "/" : trimmed
}

/** The directory that holds `path` (`.` for a bare name). */
export const parentOf = (path: string): string => {
  const trimmed = trimSlashes(path)
  const slash = trimmed.lastIndexOf("/")
  return slash < 0 ? "." : slash === 0 ? "/" : trimmed.slice(0, slash)
}

/** The last component of `path`. */
export const baseName = (path: string): string => {
  const trimmed = trimSlashes(path)
  return trimmed === "/" ? "/" : trimmed.slice(trimmed.lastIndexOf("/") + 1)
}

/** `dir/name`, without doubling the slash. */
export const joinPath = (dir: string, name: string): string => (dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`)

/** A shell condition for "something (even a dangling symlink) is at this path". */
export const present = (path: string): string => `{ [ -e ${arg(path)} ] || [ -L ${arg(path)} ]; }`

/** A failure checked before the action: when `failsIf` holds, the command exits with the guard's own code. */
export interface Guard {
  readonly failsIf: string
  readonly error: FilesystemFailure
}

// sysexits range: the tools we run (mv, rm, mkdir, base64, find, sh) exit with 1, 2 or ≥ 126
const guardBase = 64

/** One command: the guards in order, then the action. */
export const guarded = (guards: ReadonlyArray<Guard>, action: string): string =>
  [...guards.map((guard, i) => `if ${guard.failsIf}; then exit ${guardBase + i}; fi`), action].join("\n")

/** The error of the guard that produced `code`, if any. */
export const guardError = (guards: ReadonlyArray<Guard>, code: number): FilesystemFailure | undefined =>
  code >= guardBase && code < guardBase + guards.length ? guards[code - guardBase]!.error : undefined

/** The exit code of `guard` in `guards`, for actions that detect the same failure after the fact. */
export const guardExit = (guards: ReadonlyArray<Guard>, guard: Guard): number => guardBase + guards.indexOf(guard)

/** Guards for a path that must exist. */
export const mustExist = (path: string): Guard => ({
  failsIf: `! ${present(path)}`,
  error: new FileNotFound({ path })
})

/** Guards for creating an entry at `path`: its parent directory must exist and be a directory. */
export const parentMustBeDirectory = (path: string): ReadonlyArray<Guard> => {
  const parent = parentOf(path)
  return [
    {
      failsIf: `! [ -e ${arg(parent)} ]`,
      error: new FileNotFound({ path, detail: `parent directory ${parent} does not exist` })
    },
    {
      failsIf: `! [ -d ${arg(parent)} ]`,
      error: new FilesystemError({ path, reason: "NotADirectory", detail: `parent ${parent} is not a directory` })
    }
  ]
}

const stderrReasons: ReadonlyArray<readonly [RegExp, "NotFound" | "Exists" | FilesystemError["reason"]]> = [
  [/(No such file or directory|Directory nonexistent)$/m, "NotFound"],
  [/File exists$/m, "Exists"],
  [/(Permission denied|Operation not permitted)$/m, "PermissionDenied"],
  [/Directory not empty$/m, "DirectoryNotEmpty"],
  [/Not a directory$/m, "NotADirectory"],
  [/Is a directory$/m, "IsADirectory"],
  [/File name too long$/m, "InvalidPath"]
]

/** A failure no guard foresaw (a race, a full disk…): classified from the tool's errno text. */
export const classifyStderr = (path: string, code: number, stderr: string): FilesystemFailure => {
  const detail = stderr.trim() || `exit code ${code}`
  for (const [pattern, reason] of stderrReasons) {
    if (pattern.test(stderr)) {
      return reason === "NotFound"
        ? new FileNotFound({ path, detail })
        : reason === "Exists"
        ? new FileExists({ path })
        : new FilesystemError({ path, reason, detail })
    }
  }
  return new FilesystemError({ path, reason: "Unknown", detail })
}

// ---------------------------------------------------------------------------------------------
// Listing with `find -printf`

const fileTypes: Record<string, FileType> = { f: "file", d: "directory", l: "symlink" }

/** `find -printf` fields: type letter, size, permission bits (octal), mtime (epoch seconds), then the name. */
export const entryFormat = "%y %s %m %T@ %f\\0"
const entryPattern = /^(\S) (\d+) ([0-7]+) (\d+(?:\.\d+)?) ([\s\S]*)$/

/** One `entryFormat` record as an entry of `dir` (or, with no `dir`, as `path` itself); undefined if malformed. */
export const parseEntry = (record: string, dir: string | undefined, path: string): FileEntry | undefined => {
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

/** The path as a `find` argument: `./` before relative paths, since names starting with `-`, `(`, `!` or `,` are expression syntax. */
export const findArg = (path: string): string => quote(path.startsWith("/") ? path : `./${path}`)

// ---------------------------------------------------------------------------------------------
// Writing bytes with the shell's `printf` builtin (no process per file)

const octal = (byte: number): string => `\\${byte.toString(8).padStart(3, "0")}`

// printf's format language: `\` and `%` are special; control bytes travel as octal escapes so the
// command stays plain text (NUL cannot be in a command at all)
// eslint-disable-next-line no-control-regex -- matching control bytes is the point
const textEscapes = /[\\%\x00-\x08\x0b-\x1f]/g
const escapeTextChar = (c: string): string => (c === "\\" ? "\\\\" : c === "%" ? "%%" : octal(c.charCodeAt(0)))

const byteEscapes: ReadonlyArray<string> = Array.from({ length: 256 }, (_, byte) =>
  byte === 0x5c
    ? "\\\\"
    : byte === 0x25
    ? "%%"
    : (byte >= 0x20 && byte < 0x7f) || byte === 0x0a || byte === 0x09
    ? String.fromCharCode(byte)
    : octal(byte))

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

const asText = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** A `printf` format (unquoted) that prints exactly these bytes: text stays readable, other bytes become octal escapes. */
export const printfFormat = (content: string | Uint8Array): string => {
  const text = typeof content === "string" ? content : asText(content)
  let format: string
  if (text !== undefined) {
    format = text.replace(textEscapes, escapeTextChar)
  } else {
    const parts = new Array<string>(content.length)
    for (let i = 0; i < content.length; i++) parts[i] = byteEscapes[(content as Uint8Array)[i]!]!
    format = parts.join("")
  }
  // a format starting with "-" would be read as an option by some printf implementations
  return format.startsWith("-") ? `\\055${format.slice(1)}` : format
}

/** Exit codes of the `x` function that classifies a failed write in the sandbox. */
export const WriteFailure = {
  Exists: 80,
  IsADirectory: 81,
  ParentMissing: 82,
  ParentNotADirectory: 83,
  Other: 84
} as const

const marker = "@effect-koyeb-file "

/**
 * Defines `x INDEX PATH PARENT`: called when writing file INDEX failed, it prints a marker line
 * with INDEX on stderr and exits with the reason as a `WriteFailure` code.
 */
export const writeFailureFunction = `x(){ printf '\\n${marker}%s\\n' "$1" >&2; ` +
  `if [ -d "$2" ]; then exit ${WriteFailure.IsADirectory}; fi; ` +
  `if [ ! -e "$3" ]; then exit ${WriteFailure.ParentMissing}; fi; ` +
  `if [ ! -d "$3" ]; then exit ${WriteFailure.ParentNotADirectory}; fi; ` +
  `exit ${WriteFailure.Other}; }`

/** How a write opens its destination. */
export type WriteMode = "truncate" | "append" | "exclusive"

/** Statements that must precede the writes of this mode (exclusive: fail if present, then noclobber). */
export const writePrelude = (path: string, mode: WriteMode): string =>
  mode === "exclusive"
    ? `if ${present(path)}; then exit ${WriteFailure.Exists}; fi; set -C`
    : ":"

/** Writes the output of `producer` (a command, or `printf FORMAT`) to `path`, calling `x` on failure. */
export const writeStatement = (index: number, path: string, mode: WriteMode, producer: string): string =>
  `${producer} ${mode === "append" ? ">>" : ">"} ${quote(path)} || x ${index} ${quote(path)} ${quote(parentOf(path))}`

/** The failure of a write script: the file it names on stderr (else `fallback`) and the typed error. */
export const writeFailure = (
  paths: ReadonlyArray<string>,
  code: number,
  stderr: string
): FilesystemFailure => {
  const at = stderr.lastIndexOf(`\n${marker}`)
  const index = at < 0 ? 0 : Number.parseInt(stderr.slice(at + marker.length + 1), 10)
  const path = paths[index] ?? paths[0] ?? ""
  const detail = (at < 0 ? stderr : stderr.slice(0, at)).trim()
  switch (code) {
    case WriteFailure.Exists:
      return new FileExists({ path })
    case WriteFailure.IsADirectory:
      return new FilesystemError({ path, reason: "IsADirectory", detail: detail || "the path is a directory" })
    case WriteFailure.ParentMissing:
      return new FileNotFound({ path, detail: `parent directory ${parentOf(path)} does not exist` })
    case WriteFailure.ParentNotADirectory:
      return new FilesystemError({
        path,
        reason: "NotADirectory",
        detail: `parent ${parentOf(path)} is not a directory`
      })
    default:
      return classifyStderr(path, code, detail)
  }
}
