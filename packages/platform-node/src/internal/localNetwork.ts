/**
 * The network of a local sandbox: the executor's listening sockets are bound here, on host
 * loopback, and handed to the executor as file descriptors, so the host reaches its API and proxy
 * while everything the sandbox's commands bind stays in the sandbox's own network namespace
 * (bubblewrap `--unshare-net`). Outbound traffic, when a user-mode stack is installed, goes
 * through `slirp4netns` (else `pasta`) attached to that namespace, with the host's loopback out of
 * reach; the helper runs in its own process group and dies with the sandbox.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import type * as Stream from "node:stream"
import * as Processes from "./localProcesses.js"

/** A socket listening on `127.0.0.1`, bound in this process for a child to accept on. */
export interface LoopbackSocket {
  readonly fd: number
  readonly port: number
  /** Closes this process's copy (the child keeps its own); idempotent. */
  readonly close: () => void
}

/** The file descriptor of a listening server (Unix only; not part of Node's typed API). */
const fdOf = (server: Net.Server): number | undefined => {
  const fd = (server as unknown as { readonly _handle?: { readonly fd?: unknown } })._handle?.fd
  return typeof fd === "number" && fd >= 0 ? fd : undefined
}

/**
 * Binds `127.0.0.1:<port>` (0: a free port; a sandbox waking from sleep asks for its former ones).
 * This process must close its copy right after spawning the child: until then it would accept
 * connections itself (nobody knows the port yet). Closed with the scope anyway.
 */
export const listenOnLoopback = (port = 0): Effect.Effect<LoopbackSocket, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<LoopbackSocket, Error>((resume) => {
      const server = Net.createServer()
      server.once("error", (error) => resume(Effect.fail(error)))
      server.listen({ host: "127.0.0.1", port }, () => {
        const fd = fdOf(server)
        let open = true
        const close = () => {
          if (open) server.close()
          open = false
        }
        if (fd === undefined) {
          close()
          return resume(Effect.fail(new Error("the listening socket has no file descriptor on this platform")))
        }
        resume(Effect.succeed({ fd, port: (server.address() as Net.AddressInfo).port, close }))
      })
    }),
    (socket) => Effect.sync(socket.close)
  )

// ---------------------------------------------------------------------------------------------
// Outbound traffic

/** An installed user-mode network stack. */
export interface OutboundHelper {
  readonly kind: "slirp4netns" | "pasta"
  readonly path: string
  /** What runs it: pasta under `setpriv --pdeathsig KILL` when available, so it dies with this process. */
  readonly prefix: ReadonlyArray<string>
}

let found: { readonly helper: OutboundHelper | undefined } | undefined

const onPath = (name: string): string | undefined => {
  for (const dir of (process.env.PATH ?? "").split(Path.delimiter)) {
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

/** `slirp4netns`, else `pasta`, from `PATH` (looked up once per process). */
export const outboundHelper = (): OutboundHelper | undefined => {
  if (found === undefined) {
    const slirp = onPath("slirp4netns")
    const pasta = slirp === undefined ? onPath("pasta") : undefined
    // slirp4netns has --exit-fd; this pasta has no such option and outlives a namespace given by path.
    const setpriv = pasta === undefined ? undefined : onPath("setpriv")
    found = {
      helper: slirp !== undefined
        ? { kind: "slirp4netns", path: slirp, prefix: [] }
        : pasta !== undefined
        ? { kind: "pasta", path: pasta, prefix: setpriv === undefined ? [] : [setpriv, "--pdeathsig", "KILL", "--"] }
        : undefined
    }
  }
  return found.helper
}

/** A running helper; `stop` SIGKILLs its process group (idempotent). */
export interface Outbound {
  readonly pid: number
  readonly stop: () => void
}

const nsLink = (pid: number | "self") => {
  try {
    return Fs.readlinkSync(`/proc/${pid}/ns/user`)
  } catch {
    return undefined
  }
}

const helperArgs = (helper: OutboundHelper, target: number, readyFile: string): Array<string> => {
  if (helper.kind === "slirp4netns") {
    // fd 3: closed when this process dies, which ends slirp4netns; fd 4: "1" once configured.
    return [
      "--configure",
      "--mtu=65520",
      "--disable-host-loopback",
      "--exit-fd=3",
      "--ready-fd=4",
      String(target),
      "tap0"
    ]
  }
  // No port forwarding either way (pasta's defaults would map host ports in and the namespace's
  // connections to host loopback out), no gateway-to-host mapping; the pid file marks readiness.
  const userns = nsLink(target) !== nsLink("self") ? ["--userns", `/proc/${target}/ns/user`] : []
  return [
    "--config-net",
    "--quiet",
    "--foreground",
    "--runas",
    String(process.getuid?.() ?? 0),
    "--no-map-gw",
    ...["-t", "none", "-u", "none", "-T", "none", "-U", "none"],
    "--pid",
    readyFile,
    ...userns,
    "--netns",
    `/proc/${target}/ns/net`
  ]
}

/**
 * Attaches `helper` to the network namespace of process `target`, in the sandbox directory `dir`
 * (outside what the sandbox sees). Resolves once outbound traffic is configured; rejects with the
 * helper's complaint when it exits or is not ready within `timeoutMillis`.
 */
export const attachOutbound = (
  helper: OutboundHelper,
  target: number,
  dir: string,
  timeoutMillis: number
): Promise<Outbound> =>
  new Promise((resolve, reject) => {
    const readyFile = Path.join(dir, "pasta.pid")
    const [command, ...args] = [...helper.prefix, helper.path, ...helperArgs(helper, target, readyFile)]
    const child = ChildProcess.spawn(command!, args, {
      // In the sandbox directory, so that the sandbox's processes (as the host sees them) include it.
      cwd: dir,
      detached: true,
      stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"]
    })
    const pid = child.pid
    if (pid === undefined) {
      child.once("error", (error) => reject(error))
      return
    }
    const record: Processes.Child = { pid, dir }
    Processes.register(record)
    let stopped = false
    const stop = () => {
      if (stopped) return
      stopped = true
      Processes.unregister(pid)
      Processes.killTreeSync(record)
    }
    let stderr = ""
    let settled = false
    const settle = (error: Error | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(poll)
      if (error === undefined) return resolve({ pid, stop })
      stop()
      reject(error)
    }
    const timer = setTimeout(() => settle(new Error(`${helper.kind} was not ready in time`)), timeoutMillis)
    const poll = helper.kind === "pasta"
      ? setInterval(() => Fs.existsSync(readyFile) && settle(undefined), 5)
      : undefined
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-1_000)
    })
    child.stdio[4]?.once("data", () => settle(undefined))
    child.once("error", (error) => settle(error))
    child.once("exit", (code, signal) => {
      Processes.unregister(pid)
      settle(new Error(`${helper.kind} exited (${signal ?? code}): ${stderr.trim()}`))
    })
    // Nothing here may keep this process alive; the exit pipe stays open as long as it lives.
    child.unref()
    for (const stream of child.stdio) (stream as unknown as { unref?: () => void } | null)?.unref?.()
  })

/** Reads bubblewrap's `--info-fd` JSON: the host pid of the sandbox's first process. */
export const sandboxPid = (info: Stream.Readable | null | undefined): Promise<number> =>
  new Promise((resolve, reject) => {
    if (info == null) return reject(new Error("bubblewrap's info pipe is missing"))
    let text = ""
    info.setEncoding("utf8")
    info.on("data", (chunk: string) => {
      text += chunk
    })
    info.once("error", reject)
    info.once("end", () => {
      try {
        const pid = (JSON.parse(text) as { readonly "child-pid"?: unknown })["child-pid"]
        if (typeof pid === "number" && Number.isInteger(pid) && pid > 0) return resolve(pid)
      } catch {
        // reported below
      }
      reject(new Error(`bubblewrap reported no sandbox pid: ${JSON.stringify(text.slice(0, 200))}`))
    })
  })
