/**
 * The in-memory filesystem of `Testing.layerMemory`: a tree of directories and files in a `Ref`,
 * with the errors the real `Filesystem` service documents for each operation.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type {
  FilesystemShape,
  FileToWrite,
  MkdirOptions,
  MoveOptions,
  RmOptions,
  WatchOptions,
  WriteOptions
} from "../Filesystem.js"
import { FileExists, FileNotFound, FilesystemError } from "../SandboxError.js"
import type { FilesystemFailure } from "../SandboxError.js"
import { FileEntry } from "../SandboxSchema.js"
import { toBytes } from "./bytes.js"
import { baseName, checkPath, fileHandle, joinPath, parentOf } from "./fileCommands.js"
import { hostFileSystem, localFileError, localFileSize, writeLocalFile } from "./hostFiles.js"
import * as Watch from "./watch.js"

/** A node of the tree. */
export type Node =
  | { readonly type: "file"; readonly bytes: Uint8Array; readonly mode: number; readonly modifiedAt: number }
  | { readonly type: "directory"; readonly mode: number; readonly modifiedAt: number }

/** The tree: normalised absolute path → node. The root `/` is always present. */
export type Tree = ReadonlyMap<string, Node>

const utf8Decoder = new TextDecoder()

/** Bytes as UTF-8 text, invalid bytes becoming U+FFFD (as the executor's `/read_file`). */
export const decodeText = (bytes: Uint8Array): string => utf8Decoder.decode(bytes)

/** The absolute, normalised form of `path` (relative paths are relative to `cwd`); `..` stops at the root. */
export const resolve = (path: string, cwd = "/"): string => {
  const parts: Array<string> = []
  for (const part of `${path.startsWith("/") ? "" : cwd}/${path}`.split("/")) {
    if (part === "" || part === ".") continue
    if (part === "..") parts.pop()
    else parts.push(part)
  }
  return `/${parts.join("/")}`
}

const parentKey = (key: string): string => (key === "/" ? "/" : key.slice(0, key.lastIndexOf("/")) || "/")

const isChild = (dir: string, key: string): boolean => key !== "/" && parentKey(key) === dir

const isWithin = (dir: string, key: string): boolean => key === dir || key.startsWith(dir === "/" ? "/" : `${dir}/`)

/** The sorted names directly in `dir`. */
export const childNames = (tree: Tree, dir: string): Array<string> =>
  Array.from(tree.keys()).filter((key) => isChild(dir, key)).map((key) => key.slice(key.lastIndexOf("/") + 1)).sort()

/** A tree with the root, `/tmp`, and the given files (their parent directories created). */
export const initialTree = (
  files: Readonly<Record<string, string | Uint8Array>> | undefined,
  now: number
): Map<string, Node> => {
  const tree = new Map<string, Node>()
  const dir: Node = { type: "directory", mode: 0o755, modifiedAt: now }
  tree.set("/", dir)
  tree.set("/tmp", { ...dir, mode: 0o1777 })
  for (const [path, content] of Object.entries(files ?? {})) {
    const key = resolve(path)
    for (let parent = parentKey(key); !tree.has(parent); parent = parentKey(parent)) tree.set(parent, dir)
    tree.set(key, { type: "file", bytes: toBytes(content), mode: 0o644, modifiedAt: now })
  }
  return tree
}

type Failure = FileNotFound | FileExists | FilesystemError

/** Thrown inside `transact` to fail the operation without changing the tree. */
class Abort {
  constructor(readonly error: Failure) {}
}

/** Fails the current `transact` / `read` with `error`. */
export const fail = (error: Failure): never => {
  throw new Abort(error)
}

const notFound = (path: string, detail?: string) =>
  fail(new FileNotFound(detail === undefined ? { path } : { path, detail }))
const reason = (path: string, why: FilesystemError["reason"], detail: string) =>
  fail(new FilesystemError({ path, reason: why, detail }))

/** The operations on the tree shared by the services and the in-memory executor client. */
export interface MemoryTree {
  readonly ref: Ref.Ref<Tree>
  /** Runs `f` on a copy of the tree and commits it, or fails with the error `f` raised. */
  readonly transact: <A>(f: (tree: Map<string, Node>, now: number) => A) => Effect.Effect<A, Failure>
  readonly read: <A>(f: (tree: Tree) => A) => Effect.Effect<A, Failure>
  /** The tree now, and every tree committed after it, until the scope closes (for `watch`). */
  readonly subscribe: Effect.Effect<readonly [Tree, Queue.Dequeue<Tree>], never, Scope.Scope>
}

export const makeTree = (ref: Ref.Ref<Tree>): MemoryTree => {
  const run = <A>(f: () => A): Exit.Exit<A, Failure> => {
    try {
      return Exit.succeed(f())
    } catch (error) {
      if (error instanceof Abort) return Exit.fail(error.error)
      throw error
    }
  }
  // told of each commit inside the update, so that subscribers see the trees in commit order
  const subscribers = new Set<Queue.Queue<Tree>>()
  return {
    ref,
    transact: (f) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatten(Ref.modify(ref, (tree) => {
          const draft = new Map(tree)
          const exit = run(() => f(draft, now))
          if (Exit.isSuccess(exit)) { for (const queue of subscribers) Queue.unsafeOffer(queue, draft) }
          return [exit, Exit.isSuccess(exit) ? draft : tree]
        }))),
    read: (f) => Effect.flatMap(Ref.get(ref), (tree) => Effect.flatten(Effect.sync(() => run(() => f(tree))))),
    subscribe: Effect.acquireRelease(
      Effect.flatMap(Queue.unbounded<Tree>(), (queue) =>
        Ref.modify(ref, (tree) => {
          subscribers.add(queue)
          return [[tree, queue] as const, tree]
        })),
      ([, queue]) =>
        Effect.zipRight(
          Effect.sync(() => subscribers.delete(queue)),
          Queue.shutdown(queue)
        )
    )
  }
}

/** The node at `key`, or `FileNotFound` about `path`. */
export const existing = (tree: Tree, key: string, path: string): Node => tree.get(key) ?? notFound(path)

/** Fails unless the parent of `key` is a directory (`FileNotFound` / `NotADirectory` about `path`). */
export const checkParent = (tree: Tree, key: string, path: string): void => {
  const parent = tree.get(parentKey(key))
  if (parent === undefined) notFound(path, `parent directory ${parentOf(path)} does not exist`)
  else if (parent.type !== "directory") reason(path, "NotADirectory", `parent ${parentOf(path)} is not a directory`)
}

/** Writes (or appends to) a file after the checks of the real service. */
export const writeNode = (
  tree: Map<string, Node>,
  now: number,
  path: string,
  content: Uint8Array,
  mode: "truncate" | "exclusive" | "append"
): void => {
  const key = resolve(path)
  checkParent(tree, key, path)
  const current = tree.get(key)
  if (current !== undefined && mode === "exclusive") fail(new FileExists({ path }))
  if (current?.type === "directory") reason(path, "IsADirectory", "the path is a directory")
  let bytes = content
  if (mode === "append" && current?.type === "file") {
    bytes = new Uint8Array(current.bytes.length + content.length)
    bytes.set(current.bytes)
    bytes.set(content, current.bytes.length)
  }
  tree.set(key, { type: "file", bytes: bytes.slice(), mode: current?.mode ?? 0o644, modifiedAt: now })
}

/** The bytes of a file (`FileNotFound`, or `IsADirectory`). */
export const fileBytes = (tree: Tree, path: string): Uint8Array => {
  const node = existing(tree, resolve(path), path)
  return node.type === "file" ? node.bytes : reason(path, "IsADirectory", "the path is a directory")
}

/** The names in a directory (`FileNotFound`, or `NotADirectory`). */
export const listNames = (tree: Tree, path: string): Array<string> => {
  const key = resolve(path)
  const node = existing(tree, key, path)
  return node.type === "directory"
    ? childNames(tree, key)
    : reason(path, "NotADirectory", "the path is not a directory")
}

/** Creates `path` and its missing parents; a file in the way is `NotADirectory`. */
export const makeDirAll = (tree: Map<string, Node>, now: number, path: string): void => {
  const key = resolve(path)
  const missing: Array<string> = []
  for (let at = key;; at = parentKey(at)) {
    const node = tree.get(at)
    if (node?.type === "directory") break
    if (node !== undefined) reason(path, "NotADirectory", `${at} is a file`)
    missing.push(at)
  }
  for (const at of missing) tree.set(at, { type: "directory", mode: 0o755, modifiedAt: now })
}

/** Removes `key` and everything below it. */
export const removeAll = (tree: Map<string, Node>, key: string): void => {
  for (const at of Array.from(tree.keys())) {
    if (isWithin(key, at) && at !== "/") tree.delete(at)
  }
}

const entryOf = (tree: Tree, key: string, name: string, path: string): FileEntry => {
  const node = tree.get(key)!
  return new FileEntry({
    name,
    path,
    type: node.type,
    size: node.type === "file" ? node.bytes.length : 4096,
    mode: node.mode,
    modifiedAt: new Date(node.modifiedAt)
  })
}

/** The `Filesystem` service over an in-memory tree. */
export const makeFilesystem = (memory: MemoryTree): FilesystemShape => {
  const { read, transact } = memory

  const writeFile = Effect.fn("Filesystem.writeFile")(
    function*(path: string, content: string | Uint8Array, options?: WriteOptions) {
      yield* checkPath("path", path)
      const bytes = toBytes(content)
      yield* transact((tree, now) =>
        writeNode(tree, now, path, bytes, options?.exclusive === true ? "exclusive" : "truncate")
      )
    }
  )

  const appendFile = Effect.fn("Filesystem.appendFile")(function*(path: string, content: string | Uint8Array) {
    yield* checkPath("path", path)
    const bytes = toBytes(content)
    yield* transact((tree, now) => writeNode(tree, now, path, bytes, "append"))
  })

  const writeStream = Effect.fn("Filesystem.writeStream")(
    function*<E, R>(path: string, stream: Stream.Stream<Uint8Array, E, R>, options?: WriteOptions) {
      yield* checkPath("path", path)
      // Checked first, as the real service does before any payload travels.
      yield* transact((tree) => {
        const key = resolve(path)
        checkParent(tree, key, path)
        const current = tree.get(key)
        if (current?.type === "directory") reason(path, "IsADirectory", "the path is a directory")
        if (current !== undefined && options?.exclusive === true) fail(new FileExists({ path }))
      })
      const chunks = yield* Stream.runCollect(stream)
      const bytes = new Uint8Array(Array.from(chunks).reduce((n, chunk) => n + chunk.length, 0))
      let offset = 0
      for (const chunk of chunks) {
        bytes.set(chunk, offset)
        offset += chunk.length
      }
      yield* transact((tree, now) =>
        writeNode(tree, now, path, bytes, options?.exclusive === true ? "exclusive" : "truncate")
      )
    }
  )

  const writeFiles = Effect.fn("Filesystem.writeFiles")(function*(files: Iterable<FileToWrite>) {
    const all = Array.from(files)
    for (const file of all) yield* checkPath("path", file.path)
    for (const file of all) {
      const bytes = toBytes(file.content)
      yield* transact((tree, now) => writeNode(tree, now, file.path, bytes, "truncate"))
    }
  })

  const readFile = Effect.fn("Filesystem.readFile")(function*(path: string) {
    yield* checkPath("path", path)
    return (yield* read((tree) => fileBytes(tree, path))).slice()
  })

  const readFileString = Effect.fn("Filesystem.readFileString")(function*(path: string) {
    yield* checkPath("path", path)
    return decodeText(yield* read((tree) => fileBytes(tree, path)))
  })

  const readStream = (path: string): Stream.Stream<Uint8Array, FilesystemFailure> =>
    Stream.fromEffect(readFile(path)).pipe(Stream.filter((bytes) => bytes.length > 0))

  const mkdir = Effect.fn("Filesystem.mkdir")(function*(path: string, options?: MkdirOptions) {
    yield* checkPath("path", path)
    yield* transact((tree, now) => {
      const key = resolve(path)
      const current = tree.get(key)
      if (current !== undefined) {
        if (options?.exclusive === true) fail(new FileExists({ path }))
        if (current.type !== "directory") reason(path, "NotADirectory", "a file is in the way")
        return
      }
      if (options?.recursive === true) makeDirAll(tree, now, path)
      else {
        checkParent(tree, key, path)
        tree.set(key, { type: "directory", mode: 0o755, modifiedAt: now })
      }
    })
  })

  const list = Effect.fn("Filesystem.list")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* read((tree) => listNames(tree, path))
  })

  const listDetailed = Effect.fn("Filesystem.listDetailed")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* read((tree) => {
      const key = resolve(path)
      return listNames(tree, path).map((name) => entryOf(tree, resolve(name, key), name, joinPath(path, name)))
    })
  })

  const stat = Effect.fn("Filesystem.stat")(function*(path: string) {
    yield* checkPath("path", path)
    return yield* read((tree) => {
      const key = resolve(path)
      existing(tree, key, path)
      return entryOf(tree, key, baseName(path), path)
    })
  })

  const deleteFile = Effect.fn("Filesystem.deleteFile")(function*(path: string) {
    yield* checkPath("path", path)
    yield* transact((tree) => {
      const key = resolve(path)
      if (existing(tree, key, path).type === "directory") reason(path, "IsADirectory", "the path is a directory")
      tree.delete(key)
    })
  })

  const deleteDir = Effect.fn("Filesystem.deleteDir")(function*(path: string) {
    yield* checkPath("path", path)
    yield* transact((tree) => {
      const key = resolve(path)
      if (existing(tree, key, path).type !== "directory") {
        reason(path, "NotADirectory", "the path is not a directory")
      }
      removeAll(tree, key)
    })
  })

  const rm = Effect.fn("Filesystem.rm")(function*(path: string, options?: RmOptions) {
    yield* checkPath("path", path)
    yield* transact((tree) => {
      const key = resolve(path)
      const node = tree.get(key)
      if (node === undefined) {
        if (options?.force !== true) notFound(path)
        return
      }
      if (node.type === "directory" && options?.recursive !== true) {
        reason(path, "IsADirectory", "the path is a directory")
      }
      removeAll(tree, key)
    })
  })

  const moveImpl = (span: string) => (from: string, to: string, options?: MoveOptions) =>
    Effect.gen(function*() {
      yield* checkPath("from", from)
      yield* checkPath("to", to)
      yield* transact((tree) => {
        const source = resolve(from)
        const target = resolve(to)
        const node = existing(tree, source, from)
        const current = tree.get(target)
        if (current !== undefined) {
          if (options?.overwrite !== true) fail(new FileExists({ path: to }))
          if (current.type === "directory" && node.type !== "directory") {
            reason(to, "IsADirectory", "cannot replace a directory with a file")
          }
        }
        checkParent(tree, target, to)
        if (source === target) reason(from, "Unknown", `'${from}' and '${to}' are the same file`)
        if (node.type === "directory" && isWithin(source, target)) {
          reason(from, "InvalidPath", `cannot move '${from}' to a subdirectory of itself, '${to}'`)
        }
        if (current !== undefined) {
          if (current.type === "directory" && childNames(tree, target).length > 0) {
            reason(from, "DirectoryNotEmpty", `cannot move '${from}' to '${to}': Directory not empty`)
          }
          if (current.type !== "directory" && node.type === "directory") {
            reason(from, "NotADirectory", `cannot overwrite non-directory '${to}' with directory '${from}'`)
          }
          removeAll(tree, target)
        }
        for (const [at, moved] of Array.from(tree)) {
          if (isWithin(source, at)) {
            tree.delete(at)
            tree.set(target + at.slice(source.length), moved)
          }
        }
      })
    }).pipe(Effect.withSpan(span))

  const test = (check: (node: Node | undefined) => boolean, span: string) => (path: string) =>
    Effect.gen(function*() {
      yield* checkPath("path", path)
      return check((yield* Ref.get(memory.ref)).get(resolve(path)))
    }).pipe(Effect.withSpan(span))

  const upload = Effect.fn("Filesystem.upload")(
    function*(localPath: string, remotePath: string, options?: WriteOptions) {
      yield* checkPath("localPath", localPath)
      yield* checkPath("remotePath", remotePath)
      const fs = yield* hostFileSystem(Option.none(), "Filesystem.upload")
      yield* localFileSize(fs, localPath)
      const bytes = yield* fs.readFile(localPath).pipe(Effect.mapError(localFileError(localPath)))
      yield* writeFile(remotePath, bytes, options)
    }
  )

  const download = Effect.fn("Filesystem.download")(function*(remotePath: string, localPath: string) {
    yield* checkPath("remotePath", remotePath)
    yield* checkPath("localPath", localPath)
    const fs = yield* hostFileSystem(Option.none(), "Filesystem.download")
    yield* writeLocalFile(fs, localPath, Stream.succeed(yield* readFile(remotePath)))
  })

  const open = Effect.fn("Filesystem.open")(function*(path: string) {
    yield* checkPath("path", path)
    return fileHandle(path, { readFile, readFileString, writeFile, appendFile })
  })

  // a write makes a new node (a new stamp), a move keeps it (an identity found elsewhere)
  const snapshotOf = (tree: Tree, key: string, recursive: boolean): Watch.Snapshot => {
    const snapshot = new Map<string, Watch.Signature>()
    for (const [at, node] of tree) {
      if (!isWithin(key, at) || at === key || (!recursive && !isChild(key, at))) continue
      snapshot.set(at.slice(key === "/" ? 1 : key.length + 1), {
        directory: node.type === "directory",
        stamp: node.type === "directory" ? "" : node,
        identity: node
      })
    }
    return snapshot
  }

  const watchScoped = Effect.fn("Filesystem.watchScoped")(function*(path: string, options?: WatchOptions) {
    yield* checkPath("path", path)
    const key = resolve(path)
    const recursive = options?.recursive === true
    const [tree, trees] = yield* memory.subscribe
    const node = tree.get(key)
    if (node === undefined) return yield* new FileNotFound({ path })
    if (node.type !== "directory") {
      return yield* new FilesystemError({ path, reason: "NotADirectory", detail: "the path is not a directory" })
    }
    return Watch.diffStream(
      path,
      snapshotOf(tree, key, recursive),
      Stream.fromQueue(trees).pipe(
        Stream.map((next) =>
          next.get(key)?.type === "directory" ? Option.some(snapshotOf(next, key, recursive)) : Option.none()
        )
      )
    )
  })

  return {
    watch: Watch.fromScoped(watchScoped),
    watchScoped,
    writeFile,
    appendFile,
    writeStream,
    writeFiles,
    readFile,
    readFileString,
    readStream,
    mkdir,
    list,
    listDetailed,
    stat,
    deleteFile,
    deleteDir,
    rename: moveImpl("Filesystem.rename"),
    move: moveImpl("Filesystem.move"),
    exists: test((node) => node !== undefined, "Filesystem.exists"),
    isFile: test((node) => node?.type === "file", "Filesystem.isFile"),
    isDir: test((node) => node?.type === "directory", "Filesystem.isDir"),
    rm,
    upload,
    download,
    open
  } satisfies FilesystemShape
}
