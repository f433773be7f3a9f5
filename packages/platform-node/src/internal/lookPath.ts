/**
 * Finding a program in a `PATH`, as Go's `exec.LookPath` does: the first regular file of that
 * name the process may execute. Callers look up once and keep the absolute path, so that no
 * spawn has to try each directory with `execve`.
 *
 * @internal
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

/** The first executable regular file `name` in the directories of `path` (a `PATH` value); `undefined` when none. */
export const lookPath = (name: string, path: string | undefined = process.env.PATH): string | undefined => {
  for (const dir of (path ?? "").split(Path.delimiter)) {
    if (dir === "") continue
    const file = Path.join(dir, name)
    try {
      Fs.accessSync(file, Fs.constants.X_OK)
      if (Fs.statSync(file).isFile()) return file
    } catch {
      // not here
    }
  }
  return undefined
}
