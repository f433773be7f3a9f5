/**
 * `sandbox.files` of the Promise facade: the `Filesystem` service as Promises.
 *
 * @internal
 */
import type * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Stream from "effect/Stream"
import type { PromiseFilesystem } from "../../Sandboxes.js"
import { iterate, run, type Runtime } from "../promiseRuntime.js"
import { callWith, inOwnScope, type Services, split } from "./runtime.js"
import { watching } from "./watch.js"

/** The Promise facade over a sandbox's filesystem. */
export const make = (runtime: Runtime<Services>, fs: Filesystem.FilesystemShape): PromiseFilesystem => ({
  writeFile: (path, content, options) => callWith(runtime, options, (rest) => fs.writeFile(path, content, rest)),
  appendFile: (path, content, options) => run(runtime, fs.appendFile(path, content), options?.signal),
  writeStream: (path, source, options) => {
    const stream = Symbol.asyncIterator in source
      ? Stream.fromAsyncIterable(source as AsyncIterable<Uint8Array>, (error) => error)
      : Stream.fromIterable(source as Iterable<Uint8Array>)
    return callWith(runtime, options, (rest) => fs.writeStream(path, stream, rest))
  },
  writeFiles: (files, options) => run(runtime, fs.writeFiles(files), options?.signal),
  readFile: (path, options) => run(runtime, fs.readFile(path), options?.signal),
  readFileString: (path, options) => run(runtime, fs.readFileString(path), options?.signal),
  readStream: (path, options) => iterate(runtime, fs.readStream(path), options?.signal),
  mkdir: (path, options) => callWith(runtime, options, (rest) => fs.mkdir(path, rest)),
  list: (path, options) => run(runtime, fs.list(path), options?.signal),
  listDetailed: (path, options) => run(runtime, fs.listDetailed(path), options?.signal),
  stat: (path, options) => run(runtime, fs.stat(path), options?.signal),
  deleteFile: (path, options) => run(runtime, fs.deleteFile(path), options?.signal),
  deleteDir: (path, options) => run(runtime, fs.deleteDir(path), options?.signal),
  rename: (from, to, options) => callWith(runtime, options, (rest) => fs.rename(from, to, rest)),
  move: (from, to, options) => callWith(runtime, options, (rest) => fs.move(from, to, rest)),
  exists: (path, options) => run(runtime, fs.exists(path), options?.signal),
  isFile: (path, options) => run(runtime, fs.isFile(path), options?.signal),
  isDir: (path, options) => run(runtime, fs.isDir(path), options?.signal),
  rm: (path, options) => callWith(runtime, options, (rest) => fs.rm(path, rest)),
  upload: (localPath, remotePath, options) =>
    callWith(runtime, options, (rest) => fs.upload(localPath, remotePath, rest)),
  download: (remotePath, localPath, options) => run(runtime, fs.download(remotePath, localPath), options?.signal),
  watch: (path, options) => {
    const [rest, signal] = split(options)
    return run(runtime, inOwnScope(fs.watchScoped(path, rest)), signal).then(({ scope, value }) =>
      watching(runtime, scope, value, signal)
    )
  }
})
