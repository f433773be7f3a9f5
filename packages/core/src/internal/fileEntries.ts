/**
 * The `Filesystem` operations on entries rather than contents: creating directories, listing,
 * metadata, removing, moving and testing paths. Each is one quoted command whose guards (`test`)
 * exit with a code of their own, so failures are typed without parsing error text.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import type { MkdirOptions, MoveOptions, RmOptions } from "../Filesystem.js"
import { FileExists, FilesystemError } from "../SandboxError.js"
import type { FileEntry } from "../SandboxSchema.js"
import {
  arg,
  checkPath,
  entryFormat,
  findArg,
  type Guard,
  guardExit,
  mustExist,
  parentMustBeDirectory,
  parentOf,
  parseEntry,
  present
} from "./fileCommands.js"
import type { Writes } from "./fileWrites.js"
import { quote } from "./shell.js"

/** The entry operations of one client. */
export const makeEntries = (client: ExecutorClientShape, { runGuarded }: Writes) => {
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

  return {
    mkdir,
    list,
    listDetailed,
    stat,
    deleteFile,
    deleteDir,
    rm,
    move: moveImpl("Filesystem.move"),
    rename: moveImpl("Filesystem.rename"),
    exists: test("-e", "Filesystem.exists"),
    isFile: test("-f", "Filesystem.isFile"),
    isDir: test("-d", "Filesystem.isDir")
  }
}
