/**
 * What a sandbox starts with, decided before anything runs: the argv of its own program
 * (`entrypoint` / `command` / `args`), the resource limits of its instance type, and where each
 * config file goes. Pure: the host file system is read through a `HostProbe`, so the local
 * backend and the emulator share one set of rules, and unit tests can describe any host.
 *
 * @internal
 */
import type { ConfigFile } from "@effect-koyeb/core/ControlPlane"
import { InvalidArgument } from "@effect-koyeb/core/SandboxError"
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Either from "effect/Either"
import * as Path from "node:path"

// ---------------------------------------------------------------------------------------------
// Main program

const invalid = (argument: string, detail: string) => new InvalidArgument({ argument, detail })

/**
 * The argv of the sandbox's own program, with Docker semantics over an image whose ENTRYPOINT
 * and CMD are empty (the local backend and the emulator pull no image): `entrypoint` replaces
 * ENTRYPOINT (exec form), `command` replaces CMD's program and `args` are its arguments, so the
 * program is `[...entrypoint, command, ...args]`. Nothing goes through a shell: for a shell line
 * use `command: "sh", args: ["-c", "…"]`. Undefined when none of them is given (no program).
 */
export const mainCommand = (
  entrypoint: ReadonlyArray<string> | undefined,
  command: string | undefined,
  args: ReadonlyArray<string> | undefined
): Either.Either<ReadonlyArray<string> | undefined, InvalidArgument> => {
  for (const [argument, values] of [["entrypoint", entrypoint ?? []], ["args", args ?? []]] as const) {
    if (values.some((value) => value.includes("\0"))) {
      return Either.left(invalid(argument, "must not contain NUL characters"))
    }
  }
  if (command !== undefined && (command === "" || command.includes("\0"))) {
    return Either.left(invalid("command", "must be a non-empty program name without NUL characters"))
  }
  const argv = [...(entrypoint ?? []), ...(command === undefined ? [] : [command]), ...(args ?? [])]
  if (argv.length === 0) return Either.right(undefined)
  if (argv[0] === "") {
    return Either.left(invalid(entrypoint?.length ? "entrypoint" : "args", "the program name must not be empty"))
  }
  return Either.right(argv)
}

/**
 * The argv of a shell that starts `main` in the background (stdin from /dev/null, output appended
 * to `log`, without the variables `executorOnly` that only the executor may see), then execs
 * `executor`: both in the same namespaces, cgroups and process group, the program first.
 */
export const withMain = (
  main: ReadonlyArray<string>,
  log: string,
  executorOnly: ReadonlyArray<string>,
  executor: ReadonlyArray<string>
): ReadonlyArray<string> => {
  const unset = executorOnly.length === 0 ? "" : `unset ${executorOnly.join(" ")}; `
  const script = `(${unset}exec ${ShellCommand.argv(main).line}) </dev/null >>${
    ShellCommand.argv([log]).line
  } 2>&1 & exec "$@"`
  return ["/bin/sh", "-c", script, "sh", ...executor]
}

// ---------------------------------------------------------------------------------------------
// Instance types

/** Resource limits of a local sandbox. */
export interface InstanceLimits {
  readonly instanceType: string
  /** Memory of the whole sandbox (executor, main program and commands), in bytes. */
  readonly memoryBytes: number
  /** Tasks (processes and threads) the sandbox may have at once. */
  readonly processes: number
}

const MiB = 1024 * 1024

/** Memory in MiB of Koyeb's CPU instance types (koyeb.com/docs/reference/instances). */
const instanceMemoryMiB: Readonly<Record<string, number>> = {
  free: 512,
  nano: 256,
  micro: 512,
  small: 1024,
  medium: 2048,
  large: 4096,
  xlarge: 8192,
  "2xlarge": 16384,
  "3xlarge": 32768,
  "4xlarge": 65536,
  "5xlarge": 131072,
  "eco-nano": 256,
  "eco-micro": 512,
  "eco-small": 1024,
  "eco-medium": 2048,
  "eco-large": 4096,
  "eco-xlarge": 8192,
  "eco-2xlarge": 16384
}

/** The instance types `instanceLimits` knows, in the order of the table above. */
export const instanceTypes: ReadonlyArray<string> = Object.keys(instanceMemoryMiB)

/**
 * The limits of a Koyeb instance type: its memory, and two tasks per MiB of it (at most 32768)
 * as the process cap, since Koyeb documents none. `undefined` (no type given) and `"local"` mean
 * no limits; any other type (GPU types included: there is no GPU here) is an `InvalidArgument`
 * naming `instanceType`.
 */
export const instanceLimits = (
  instanceType: string | undefined
): Either.Either<InstanceLimits | undefined, InvalidArgument> => {
  if (instanceType === undefined || instanceType === "local") return Either.right(undefined)
  const memory = Object.hasOwn(instanceMemoryMiB, instanceType) ? instanceMemoryMiB[instanceType] : undefined
  if (memory === undefined) {
    return Either.left(
      invalid(
        "instanceType",
        `unknown instance type ${JSON.stringify(instanceType)}; known here: local, ${instanceTypes.join(", ")}`
      )
    )
  }
  return Either.right({ instanceType, memoryBytes: memory * MiB, processes: Math.min(32768, memory * 2) })
}

// ---------------------------------------------------------------------------------------------
// Config files

/** A validated config file: absolute normalized path, content, numeric mode. */
export interface ConfigFileSpec {
  readonly path: string
  readonly content: string
  readonly mode: number
}

/**
 * Checks config files as the create options give them: absolute paths without `.` or `..`
 * segments, empty segments or a trailing slash, and permissions as 3 or 4 octal digits
 * (default `"0644"`).
 */
export const configFiles = (
  files: Readonly<Record<string, string | ConfigFile>> | undefined
): Either.Either<ReadonlyArray<ConfigFileSpec>, InvalidArgument> => {
  const out: Array<ConfigFileSpec> = []
  for (const [path, file] of Object.entries(files ?? {})) {
    const bad = (detail: string) => Either.left(invalid("configFiles", `${JSON.stringify(path)}: ${detail}`))
    if (!path.startsWith("/") || path === "/") return bad("must be an absolute file path")
    if (path.includes("\0")) return bad("must not contain NUL characters")
    if (path.endsWith("/") || path.split("/").slice(1).some((s) => s === "" || s === "." || s === "..")) {
      return bad("must be a normalized path (no empty, `.` or `..` segments, no trailing slash)")
    }
    const content = typeof file === "string" ? file : file.content
    const permissions = typeof file === "string" ? "0644" : file.permissions ?? "0644"
    if (typeof content !== "string") return bad("content must be a string")
    if (typeof permissions !== "string" || !/^[0-7]{3,4}$/.test(permissions)) {
      return bad(`permissions ${JSON.stringify(permissions)} must be 3 or 4 octal digits, such as "0644"`)
    }
    out.push({ path, content, mode: parseInt(permissions, 8) })
  }
  return Either.right(out)
}

/** What the host has at a path (symbolic links not followed). */
export type HostKind = "directory" | "file" | "symlink" | "other" | "missing"

/** A directory entry on the host. */
export interface HostEntry {
  readonly name: string
  readonly kind: HostKind
  /** Target of a symbolic link. */
  readonly target?: string | undefined
}

/** Read-only view of the host file system. */
export interface HostProbe {
  readonly kind: (path: string) => HostKind
  /** The path with every symbolic link resolved (the path must exist). */
  readonly realpath: (path: string) => string
  readonly entries: (directory: string) => ReadonlyArray<HostEntry>
}

/** Where a sandbox's own directories are, as it sees them and on the host. */
export interface SandboxLayout {
  /** The sandbox's home as it sees it (`/home/sandbox` under bubblewrap). */
  readonly home: string
  /** Host directories behind the sandbox's home and /tmp. */
  readonly hostHome: string
  readonly hostTmp: string
  /** Host directories hidden behind an empty tmpfs in the sandbox (`/home`, `/root`). */
  readonly hidden: ReadonlyArray<string>
}

/** How config files get into a sandbox under bubblewrap. */
export interface ConfigFilePlan {
  /** Files written on the host, in the sandbox's home or tmp, before it starts. */
  readonly hostFiles: ReadonlyArray<ConfigFileSpec>
  /**
   * Read-only host directories that become a tmpfs holding their original entries (bound back
   * read-only), so a file can be added; shallowest first.
   */
  readonly reopened: ReadonlyArray<string>
  /** Directories to create in the sandbox's mount tree, parents first. */
  readonly directories: ReadonlyArray<string>
  /** Files created in the sandbox's mount tree (on a tmpfs), never on the host. */
  readonly mounted: ReadonlyArray<ConfigFileSpec>
}

/** Whether `path` is `root` or inside it (absolute paths). */
export const isUnder = (path: string, root: string) => root === "/" || path === root || path.startsWith(root + "/")

/** File systems of the kernel, not files. */
const kernelRoots = ["/proc", "/dev", "/sys"]

/**
 * Plans the config files of a sandbox under bubblewrap (the sandbox sees the host's root read-only,
 * its own home and /tmp, and empty `hidden` directories). Files under its home or /tmp are written
 * on the host in the sandbox's directory; anything else is created inside the sandbox's mount tree
 * (the host is never written). Fails with `InvalidArgument` naming `configFiles` and the path when
 * the path is a kernel file system, an existing directory, or has a file where a directory should be.
 */
export const planConfigFiles = (
  files: ReadonlyArray<ConfigFileSpec>,
  layout: SandboxLayout,
  host: HostProbe
): Either.Either<ConfigFilePlan, InvalidArgument> => {
  const hostFiles: Array<ConfigFileSpec> = []
  const reopened = new Set<string>()
  const directories = new Set<string>()
  const mounted: Array<ConfigFileSpec> = []
  for (const file of files) {
    const bad = (detail: string) => Either.left(invalid("configFiles", `${JSON.stringify(file.path)}: ${detail}`))
    const own = ([[layout.home, layout.hostHome], ["/tmp", layout.hostTmp]] as const).find(([root]) =>
      isUnder(file.path, root)
    )
    if (own !== undefined) {
      hostFiles.push({ ...file, path: Path.posix.join(own[1], Path.posix.relative(own[0], file.path)) })
      continue
    }
    if (kernelRoots.some((root) => isUnder(file.path, root))) return bad("is on a kernel file system")
    const hidden = layout.hidden.find((root) => isUnder(file.path, root))
    if (hidden !== undefined) {
      // An empty tmpfs in the sandbox: every directory below it is new.
      for (let dir = Path.posix.dirname(file.path); dir !== hidden; dir = Path.posix.dirname(dir)) {
        directories.add(dir)
      }
      mounted.push(file)
      continue
    }
    // The deepest ancestor that exists on the host, resolved as the sandbox resolves it.
    const missing: Array<string> = []
    let ancestor = Path.posix.dirname(file.path)
    let kind = host.kind(ancestor)
    while (kind === "missing") {
      missing.unshift(Path.posix.basename(ancestor))
      ancestor = Path.posix.dirname(ancestor)
      kind = host.kind(ancestor)
    }
    const real = host.realpath(ancestor)
    if (host.kind(real) !== "directory") return bad(`${ancestor} is not a directory`)
    const resolved = Path.posix.join(real, ...missing, Path.posix.basename(file.path))
    if (resolved !== file.path) {
      // A symbolic link on the way: plan the path it leads to.
      const again = planConfigFiles([{ ...file, path: resolved }], layout, host)
      if (Either.isLeft(again)) return again
      again.right.hostFiles.forEach((planned) => hostFiles.push(planned))
      again.right.reopened.forEach((dir) => reopened.add(dir))
      again.right.directories.forEach((dir) => directories.add(dir))
      again.right.mounted.forEach((planned) => mounted.push(planned))
      continue
    }
    if (missing.length === 0 && host.kind(file.path) === "directory") return bad("is a directory")
    reopened.add(real)
    for (let i = 1; i <= missing.length; i++) directories.add(Path.posix.join(real, ...missing.slice(0, i)))
    mounted.push(file)
  }
  const depth = (path: string) => (path === "/" ? 0 : path.split("/").length)
  return Either.right({
    hostFiles,
    reopened: [...reopened].sort((a, b) => depth(a) - depth(b) || a.localeCompare(b)),
    directories: [...directories].sort((a, b) => depth(a) - depth(b) || a.localeCompare(b)),
    mounted
  })
}

/**
 * bubblewrap arguments that turn `directory` into a tmpfs showing the host's entries (bound back
 * read-only, symbolic links recreated), except `replaced` paths, which config files take.
 */
export const reopenArgs = (
  directory: string,
  entries: ReadonlyArray<HostEntry>,
  replaced: ReadonlySet<string>
): Array<string> => {
  const args = ["--tmpfs", directory]
  for (const entry of entries) {
    const path = Path.posix.join(directory, entry.name)
    if (replaced.has(path) || entry.kind === "missing") continue
    if (entry.kind === "symlink") args.push("--symlink", entry.target ?? "", path)
    else args.push("--ro-bind", path, path)
  }
  return args
}

/**
 * bubblewrap arguments of a plan: the reopened directories (to follow the read-only bind of the
 * host's root, before the sandbox's own mounts), then its directories and files (after every other
 * mount), each file read from the descriptor `fd(i)` of `mounted[i]`.
 */
export const configFileArgs = (
  plan: ConfigFilePlan,
  host: HostProbe,
  fd: (index: number) => number
): { readonly reopen: Array<string>; readonly files: Array<string> } => {
  const replaced = new Set(plan.mounted.map((file) => file.path))
  const reopen = plan.reopened.flatMap((dir) => reopenArgs(dir, host.entries(dir), replaced))
  const files = [
    ...plan.directories.flatMap((dir) => ["--dir", dir]),
    ...plan.mounted.flatMap((
      file,
      i
    ) => ["--perms", file.mode.toString(8).padStart(4, "0"), "--file", String(fd(i)), file.path])
  ]
  return { reopen, files }
}
