/**
 * The `watch` extension: `GET /watch?path=&recursive=true` streams the changes below a directory
 * as SSE: `ready` (`{}`) once it is watched, one `change` per event (`{"kind","path","from"?,
 * "directory"}`), and `complete` after the `delete` of the directory itself; `error` ends a
 * failed watch. A missing path, or a file, is a 422 with the Go path error, before any event.
 *
 * How: Node's `fs.watch` on each directory (inotify; one watch descriptor per directory, added as
 * directories appear when `recursive`), rather than `fs.watch`'s own `recursive`, which Node 20
 * emulates on Linux with less control. Each batch of raw events (those of one turn of the event
 * loop) is resolved against a table of the entries seen (inode, directory or not): a name that
 * appeared is a `create`, one that went away a `delete`, a `change` of a known file a `modify`,
 * and a `delete` and a `create` of the same inode in one batch a `rename` (inotify queues both
 * halves of a rename together). Closing the connection closes every watch. A client that reads
 * too slowly (more than `maxBuffered` bytes of events waiting) gets an `error` and the end.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { Readable } from "node:stream"
import * as GoErrors from "../goErrors.js"
import * as GoJson from "../goJson.js"
import type { AppContext } from "./context.js"
import { json, onlyMethod, queryParam, type Request } from "./http.js"
import * as Sse from "./sse.js"

// Events waiting for a slow client before the watch gives up.
const maxBuffered = 8 * 1024 * 1024

type Kind = "create" | "modify" | "delete" | "rename"

interface Known {
  readonly ino: number
  readonly directory: boolean
}

// `undefined` for any failure: the entry is gone for the watch's purposes
const statOf = (path: string, follow: boolean): Fs.Stats | undefined => {
  try {
    return follow ? Fs.statSync(path) : Fs.lstatSync(path)
  } catch {
    return undefined
  }
}

const lstat = (path: string) => statOf(path, false)

const readdir = (path: string): Array<Fs.Dirent> => {
  try {
    return Fs.readdirSync(path, { withFileTypes: true })
  } catch {
    return []
  }
}

const below = (parent: string, path: string) => parent === "" || path.startsWith(`${parent}/`)

/**
 * Watches `root` (absolute, the directory of inode `rootIno`) and reports events with paths
 * relative to it (`""` is `root`); `end` is called once, after the last event or a failure.
 * `close` stops everything.
 */
const watchTree = (
  root: string,
  rootIno: number,
  recursive: boolean,
  report: (kind: Kind, path: string, directory: boolean, from?: string) => void,
  end: (failure?: string) => void
) => {
  const known = new Map<string, Known>()
  const watchers = new Map<string, Fs.FSWatcher>()
  const pending = new Map<string, boolean>() // path → a `change` was seen
  let scheduled = false
  let closed = false

  const abs = (path: string) => path === "" ? root : Path.join(root, path)
  const join = (dir: string, name: string) => dir === "" ? name : `${dir}/${name}`

  const close = () => {
    if (closed) return
    closed = true
    for (const watcher of watchers.values()) watcher.close()
    watchers.clear()
  }

  const fail = (failure: string) => {
    if (closed) return
    close()
    end(failure)
  }

  const watchDir = (dir: string) => {
    if (watchers.has(dir)) return
    try {
      const watcher = Fs.watch(abs(dir), { persistent: false }, (type, name) => {
        if (name === null || closed) return
        const path = join(dir, name)
        pending.set(path, (pending.get(path) ?? false) || type === "change")
        if (!scheduled) {
          scheduled = true
          setImmediate(flush)
        }
      })
      watcher.on("error", (error) => {
        // a directory that went away: its parent reports it
        if (dir === "" || lstat(abs(dir)) !== undefined) fail(GoErrors.pathError("watch", abs(dir), error))
      })
      watchers.set(dir, watcher)
    } catch (error) {
      if (!GoErrors.hasCode(error, "ENOENT") && !GoErrors.hasCode(error, "ENOTDIR")) {
        fail(GoErrors.pathError("watch", abs(dir), error))
      }
    }
  }

  const unwatchBelow = (dir: string) => {
    for (const [path, watcher] of watchers) {
      if (path === dir || below(dir, path)) {
        watcher.close()
        watchers.delete(path)
      }
    }
    for (const path of known.keys()) if (below(dir, path)) known.delete(path)
  }

  // Watches `dir` then lists it (in that order, so that nothing created in between is missed);
  // entries not known yet are reported as created when `announce` says so.
  const add = (dir: string, announce: (path: string) => boolean) => {
    if (dir !== "" && !recursive) return
    watchDir(dir)
    for (const entry of readdir(abs(dir))) {
      const path = join(dir, entry.name)
      if (known.has(path)) continue
      const stats = lstat(abs(path))
      if (stats === undefined) continue
      known.set(path, { ino: stats.ino, directory: stats.isDirectory() })
      if (announce(path)) report("create", path, stats.isDirectory())
      if (stats.isDirectory()) add(path, announce)
    }
  }
  const always = () => true
  const never = () => false

  const flush = () => {
    scheduled = false
    if (closed) return
    const removed: Array<[string, Known]> = []
    const added: Array<[string, Fs.Stats]> = []
    const modified: Array<string> = []
    for (const [path, changed] of pending) {
      const before = known.get(path)
      const parent = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ""
      // a name reported by a directory no longer watched here (moved or deleted meanwhile)
      if (parent !== "" && known.get(parent)?.directory !== true) continue
      const now = lstat(abs(path))
      if (now === undefined) {
        if (before !== undefined) removed.push([path, before])
      } else if (before === undefined) {
        added.push([path, now])
      } else if (before.ino !== now.ino || before.directory !== now.isDirectory()) {
        removed.push([path, before])
        added.push([path, now])
      } else if (changed && !before.directory) {
        modified.push(path)
      }
    }
    pending.clear()
    for (const [path] of removed) known.delete(path)
    for (const [path, stats] of added) {
      const from = removed.findIndex(([, before]) => before.ino === stats.ino)
      if (from !== -1) {
        const [old, before] = removed.splice(from, 1)[0]!
        // what was known below the old path moved with it; anything else was created meanwhile
        const moved = new Set(
          Array.from(known.keys()).filter((p) => below(old, p)).map((p) => path + p.slice(old.length))
        )
        unwatchBelow(old)
        known.set(path, { ino: stats.ino, directory: stats.isDirectory() })
        report("rename", path, stats.isDirectory(), old)
        if (before.directory) add(path, (p) => !moved.has(p))
      } else {
        known.set(path, { ino: stats.ino, directory: stats.isDirectory() })
        report("create", path, stats.isDirectory())
        if (stats.isDirectory()) add(path, always)
      }
    }
    for (const [path, before] of removed) {
      unwatchBelow(path)
      report("delete", path, before.directory)
    }
    for (const path of modified) report("modify", path, false)
    // followed, as `fs.watch` follows a symlink to the directory
    const rootNow = statOf(root, true)
    if (rootNow === undefined || rootNow.ino !== rootIno) {
      report("delete", "", true)
      close()
      end()
    }
  }

  add("", never)
  return { close }
}

/** `/watch?path=&recursive=` (GET). */
export const watch = (ctx: AppContext, request: Request) =>
  onlyMethod("GET", request, () =>
    Effect.sync(() => {
      const path = queryParam(request, "path")
      const recursive = queryParam(request, "recursive") === "true"
      const root = path === "" ? "" : Path.resolve(ctx.cwd, path)
      let stats: Fs.Stats
      try {
        stats = Fs.statSync(root)
      } catch (error) {
        return json(422, `{"error":${GoJson.string(GoErrors.pathError("stat", path, error))}}`)
      }
      if (!stats.isDirectory()) {
        return json(422, `{"error":${GoJson.string(GoErrors.pathError("stat", path, { code: "ENOTDIR" }))}}`)
      }

      const body = new Readable({ read() {} })
      let ended = false
      const finish = (event: string, data: string) => {
        if (ended) return
        ended = true
        tree.close()
        body.push(Sse.frame(event, data))
        body.push(null)
      }
      const send = (event: string, data: string) => {
        if (ended) return
        if (body.readableLength > maxBuffered) finish("error", `{"error":"the client reads events too slowly"}`)
        else body.push(Sse.frame(event, data))
      }
      const at = (relative: string) =>
        relative === "" ? path : path.endsWith("/") ? path + relative : `${path}/${relative}`
      const tree = watchTree(
        root,
        stats.ino,
        recursive,
        (kind, relative, directory, from) =>
          send(
            "change",
            `{"kind":"${kind}","path":${GoJson.string(at(relative))}${
              from === undefined ? "" : `,"from":${GoJson.string(at(from))}`
            },"directory":${directory}}`
          ),
        (failure) =>
          failure === undefined ? finish("complete", "{}") : finish("error", `{"error":${GoJson.string(failure)}}`)
      )
      const response = request.response
      if (response.destroyed) tree.close()
      else response.once("close", tree.close)
      body.once("close", tree.close)
      body.push(Sse.frame("ready", "{}"))
      return Sse.sseRaw(body)
    }))
