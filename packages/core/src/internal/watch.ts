/**
 * `Filesystem.watch`: on an executor that advertises `watch`, the events of its `/watch` stream
 * (inotify in the sandbox); elsewhere snapshots of the tree diffed by the SDK. Snapshots come
 * from `find -printf` on the stock executor, or from the memory tree of `Testing`.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ExecutorClientShape, WatchEvent } from "../ExecutorClient.js"
import type { WatchOptions } from "../Filesystem.js"
import { FilesystemError, type FilesystemFailure } from "../SandboxError.js"
import { FileEvent } from "../SandboxSchema.js"
import { protocolError } from "./executorReplies.js"
import { findArg, type Guard, joinPath, mustExist } from "./fileCommands.js"
import type { Writes } from "./fileWrites.js"
import { quote } from "./shell.js"

/** The default interval of the polling fallback. */
export const defaultPollInterval = Duration.millis(500)

/**
 * What a snapshot knows of one entry: a new `stamp` (compared with `===`) is a `modify`; an
 * `identity` gone from one path and found at another is a `rename`.
 */
export interface Signature {
  readonly directory: boolean
  readonly stamp: unknown
  readonly identity?: unknown
}

/** The entries below a watched directory, by path relative to it. */
export type Snapshot = ReadonlyMap<string, Signature>

/** A watch once established: its events until the scope closes. */
export type Watching = Stream.Stream<FileEvent, FilesystemFailure>

const isBelow = (parent: string, path: string) => path.startsWith(`${parent}/`)
const depth = (path: string) => path.split("/").length

/**
 * The events that turn `before` into `after`: renames (entries whose `identity` moved; what moved
 * with a directory is not reported again), deletes (deepest first), creates (shallowest first),
 * then modifies of files.
 */
export const diff = (root: string, before: Snapshot, after: Snapshot): Array<FileEvent> => {
  const removed = Array.from(before.keys()).filter((path) => !after.has(path) || moved(before, after, path))
  const added = Array.from(after.keys()).filter((path) => !before.has(path) || moved(before, after, path))
  const at = (path: string) => joinPath(root, path)
  const events: Array<FileEvent> = []
  const renamedFrom = new Set<string>()
  const renamedTo = new Set<string>()
  const byIdentity = new Map<unknown, string>()
  for (const path of removed) {
    const identity = before.get(path)!.identity
    if (identity !== undefined) byIdentity.set(identity, path)
  }
  for (const path of added.sort()) {
    if (Array.from(renamedTo).some((to) => isBelow(to, path))) continue
    const signature = after.get(path)!
    const from = signature.identity === undefined ? undefined : byIdentity.get(signature.identity)
    if (from === undefined || renamedFrom.has(from)) continue
    renamedFrom.add(from)
    renamedTo.add(path)
    events.push(new FileEvent({ kind: "rename", path: at(path), from: at(from), directory: signature.directory }))
  }
  const coveredBy = (paths: ReadonlySet<string>, path: string) =>
    paths.has(path) || Array.from(paths).some((parent) => isBelow(parent, path))
  for (const path of removed.sort((a, b) => depth(b) - depth(a) || (a < b ? -1 : 1))) {
    if (coveredBy(renamedFrom, path)) continue
    events.push(new FileEvent({ kind: "delete", path: at(path), directory: before.get(path)!.directory }))
  }
  for (const path of added.sort((a, b) => depth(a) - depth(b) || (a < b ? -1 : 1))) {
    if (coveredBy(renamedTo, path)) continue
    events.push(new FileEvent({ kind: "create", path: at(path), directory: after.get(path)!.directory }))
  }
  for (const [path, signature] of after) {
    const previous = before.get(path)
    if (previous !== undefined && !moved(before, after, path) && previous.stamp !== signature.stamp) {
      events.push(new FileEvent({ kind: "modify", path: at(path), directory: false }))
    }
  }
  return events
}

// The same path holds another kind of entry: a file replaced by a directory or the reverse.
const moved = (before: Snapshot, after: Snapshot, path: string): boolean =>
  before.get(path)!.directory !== after.get(path)!.directory

/**
 * The events of successive snapshots of `root` after `initial`; `None` means the directory has
 * gone: every known entry is deleted, then the directory itself, and the stream ends.
 */
export const diffStream = <E, R>(
  root: string,
  initial: Snapshot,
  snapshots: Stream.Stream<Option.Option<Snapshot>, E, R>
): Stream.Stream<FileEvent, E, R> =>
  snapshots.pipe(
    Stream.mapAccum(initial, (previous, next): readonly [Snapshot, Chunk.Chunk<FileEvent>] => {
      if (Option.isSome(next)) return [next.value, Chunk.unsafeFromArray(diff(root, previous, next.value))]
      const events = diff(root, previous, new Map())
      events.push(new FileEvent({ kind: "delete", path: root, directory: true }))
      return [new Map(), Chunk.unsafeFromArray(events)]
    }),
    // the watched directory's own `delete` is the last event
    Stream.takeUntil((events) => Option.exists(Chunk.last(events), (event) => event.path === root)),
    Stream.flattenChunks
  )

// ---------------------------------------------------------------------------------------------
// On an executor with `watch`

/** The events of the executor's `/watch`, once its `ready` came. */
export const executorWatch = (
  client: ExecutorClientShape,
  path: string,
  recursive: boolean
): Effect.Effect<Watching, FilesystemFailure, Scope.Scope> =>
  Effect.gen(function*() {
    const pull = yield* Stream.toPull(client.watch!(path, { recursive }))
    const early: Array<FileEvent> = []
    let ready = false
    while (!ready) {
      const chunk = yield* Effect.catchAll(
        pull,
        Option.match({
          onNone: () => Effect.fail(protocolError("/watch", "stream ended before ready")),
          onSome: Effect.fail
        })
      )
      Chunk.forEach(chunk, (event: WatchEvent) => {
        if (event._tag === "Ready") ready = true
        else early.push(event.event)
      })
    }
    return Stream.concat(
      Stream.fromIterable(early),
      Stream.repeatEffectChunkOption(pull).pipe(
        Stream.filterMap((event) => event._tag === "Change" ? Option.some(event.event) : Option.none())
      )
    )
  })

// ---------------------------------------------------------------------------------------------
// On the stock executor: `find -printf` snapshots

// type letter, size, mtime, then the path below the start point
const snapshotFormat = "%y %s %T@ %P\\0"
const snapshotRecord = /^(\S) (\d+) (\S+) ([\s\S]+)$/

const notADirectory = (path: string): Guard => ({
  failsIf: `! [ -d ${findArg(path)} ]`,
  error: new FilesystemError({ path, reason: "NotADirectory", detail: "the path is not a directory" })
})

/** One `find` snapshot; `None` when the directory is gone. Entries vanishing during the walk are skipped. */
const findSnapshot = (writes: Writes, path: string, recursive: boolean) =>
  writes.runGuarded(
    [mustExist(path), notADirectory(path)],
    `find -H ${findArg(path)} -mindepth 1 ${recursive ? "" : "-maxdepth 1 "}-printf ${
      quote(snapshotFormat)
    } 2>/dev/null; exit 0`,
    path
  ).pipe(
    Effect.map((stdout): Snapshot => {
      const snapshot = new Map<string, Signature>()
      for (const record of stdout.split("\0")) {
        const match = snapshotRecord.exec(record)
        if (match === null) continue
        const directory = match[1] === "d"
        // a directory's own mtime changes with its entries: only files are modified
        snapshot.set(match[4]!, { directory, stamp: directory ? "" : `${match[2]} ${match[3]}` })
      }
      return snapshot
    })
  )

/** Polls `find` every `interval` and diffs; fails at once if the directory is missing or not one. */
export const pollingWatch = (
  writes: Writes,
  path: string,
  recursive: boolean,
  interval: Duration.DurationInput
): Effect.Effect<Watching, FilesystemFailure> =>
  Effect.map(findSnapshot(writes, path, recursive), (initial) =>
    diffStream(
      path,
      initial,
      Stream.repeatEffect(
        Effect.zipRight(
          Effect.sleep(interval),
          findSnapshot(writes, path, recursive).pipe(
            Effect.map(Option.some),
            Effect.catchTag("FileNotFound", () => Effect.succeed(Option.none<Snapshot>()))
          )
        )
      )
    ))

/** `watch` from `watchScoped`: the watch starts when the stream runs and stops when it ends. */
export const fromScoped = (
  watchScoped: (path: string, options?: WatchOptions) => Effect.Effect<Watching, FilesystemFailure, Scope.Scope>
) =>
(path: string, options?: WatchOptions): Watching =>
  Stream.unwrapScoped(watchScoped(path, options)).pipe(Stream.withSpan("Filesystem.watch"))
