/**
 * The network of a local sandbox: the executor's listening sockets are bound here, on host
 * loopback, and handed to the executor as file descriptors, so the host reaches its API and proxy
 * while everything the sandbox's commands bind stays in the sandbox's own network namespace
 * (bubblewrap `--unshare-net`). Outbound traffic, when a user-mode stack is installed, goes
 * through `slirp4netns` (else `pasta`) attached to that namespace, with the host's loopback out of
 * reach; a small `sh` launcher starts it beside bubblewrap (no second fork of this process), in
 * the sandbox's process group, so it dies with the sandbox.
 *
 * @internal
 */
import * as ShellCommand from "@effect-koyeb/core/ShellCommand"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import type * as Stream from "node:stream"
import * as Processes from "./localProcesses.js"
import { lookPath } from "./lookPath.js"

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

/** `slirp4netns`, else `pasta`, from `PATH` (looked up once per process). */
export const outboundHelper = (): OutboundHelper | undefined => {
  if (found === undefined) {
    const slirp = lookPath("slirp4netns")
    const pasta = slirp === undefined ? lookPath("pasta") : undefined
    // slirp4netns has --exit-fd; this pasta has no such option and outlives a namespace given by path.
    const setpriv = pasta === undefined ? undefined : lookPath("setpriv")
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

/** A running helper; `stop` ends it (idempotent). */
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

// The launcher's descriptors, after the API socket (3) and the proxy socket (4). Single digits:
// dash redirects no others.
/** bubblewrap's `--info-fd`: the sandbox's first process, as JSON. */
export const INFO_FD = 5
/** The helper's command line, written once the sandbox's pid is known. */
const COMMAND_FD = 6
/** The helper's stderr and slirp4netns's `--exit-fd`: ends when the helper exits; closing it here ends slirp4netns. */
const STATUS_FD = 7
/** The helper's pid (written by the launcher), then slirp4netns's `--ready-fd` ("1"). */
const READY_FD = 8
/** Descriptors the launcher takes from `INFO_FD` on (pipes); the sandbox's other descriptors follow them. */
export const LAUNCH_FDS = 4

const helperArgs = (helper: OutboundHelper, target: number, readyFile: string): Array<string> => {
  if (helper.kind === "slirp4netns") {
    return [
      "--configure",
      "--mtu=65520",
      "--disable-host-loopback",
      `--exit-fd=${STATUS_FD}`,
      `--ready-fd=${READY_FD}`,
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
 * Starts the helper without a fork of this (large) process: a `sh` forks a waiting child, then
 * execs `command` (bubblewrap), which keeps its pid, process group and parent. The child runs the
 * helper line this process writes once bubblewrap reported the sandbox's pid, in `dir` (outside
 * what the sandbox sees), with the sandbox's sockets closed (not its config-file descriptors, from
 * 9 on: dash redirects single digits only; read-only copies of what the sandbox gets anyway). The
 * helper stays in the sandbox's process group (a kill of the group ends it) and out of its cgroups
 * (joined after the fork).
 */
const LAUNCHER = [
  "dir=$1; shift",
  // The info pipe ends only once every copy but bubblewrap's is closed.
  `{ exec 0</dev/null 1>/dev/null 2>&${STATUS_FD} 3>&- 4>&- ${INFO_FD}>&-;`,
  `IFS= read -r helper <&${COMMAND_FD} || exit 0; exec ${COMMAND_FD}<&-; cd "$dir" || exit 0; eval "exec $helper"; } &`,
  `echo $! >&${READY_FD}`,
  `exec "$@" ${COMMAND_FD}<&- ${STATUS_FD}>&- ${READY_FD}>&-`
].join("\n")

/** `command` (bubblewrap with `--info-fd INFO_FD`) under the launcher; spawn it with `LAUNCH_FDS` pipes from `INFO_FD`. */
export const launch = (dir: string, command: ReadonlyArray<string>): ReadonlyArray<string> => [
  "/bin/sh",
  "-c",
  LAUNCHER,
  "sh",
  dir,
  ...command
]

/**
 * Attaches `helper` to the sandbox started by `launch` whose host pid is `target`; its pipes after
 * `INFO_FD` are `stdio`.
 * Resolves once outbound traffic is configured; rejects with the helper's complaint when it exits
 * or is not ready within `timeoutMillis`.
 */
export const attachOutbound = (
  helper: OutboundHelper,
  target: Promise<number>,
  stdio: ReadonlyArray<Stream.Duplex | null>,
  dir: string,
  timeoutMillis: number
): Promise<Outbound> =>
  new Promise((resolve, reject) => {
    const [command, status, ready] = stdio
    if (command == null || status == null || ready == null) {
      return reject(new Error("the launcher's pipes are missing"))
    }
    const readyFile = Path.join(dir, "pasta.pid")
    let pid: number | undefined
    let configured = false
    let exited = false
    let settled = false
    let stopped = false
    const stop = () => {
      if (stopped) return
      stopped = true
      if (pid !== undefined && !exited) Processes.signal(pid, "SIGKILL")
      for (const stream of stdio) stream?.destroy()
    }
    let stderr = ""
    const settle = (error: Error | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearInterval(poll)
      if (error === undefined) return resolve({ pid: pid!, stop })
      stop()
      reject(error)
    }
    const check = () => {
      if (pid !== undefined && (configured || (helper.kind === "pasta" && Fs.existsSync(readyFile)))) settle(undefined)
    }
    const timer = setTimeout(() => settle(new Error(`${helper.kind} was not ready in time`)), timeoutMillis)
    const poll = helper.kind === "pasta" ? setInterval(check, 5) : undefined
    status.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-1_000)
    })
    // Its only writer is the helper (or the shell waiting to become it).
    status.once("close", () => {
      exited = true
      settle(new Error(`${helper.kind} exited: ${stderr.trim()}`))
    })
    // The launcher writes the helper's pid first; slirp4netns writes "1" once configured.
    let readyText = ""
    ready.setEncoding("utf8").on("data", (chunk: string) => {
      readyText += chunk
      const newline = readyText.indexOf("\n")
      if (newline === -1) return
      pid ??= Number(readyText.slice(0, newline))
      configured = readyText.slice(newline + 1).startsWith("1")
      check()
    })
    for (const stream of stdio) stream?.on("error", () => undefined)
    target.then(
      (target) =>
        command.end(
          `${ShellCommand.argv([...helper.prefix, helper.path, ...helperArgs(helper, target, readyFile)]).line}\n`
        ),
      (error: Error) => settle(error)
    )
    // Nothing here may keep this process alive; the helper's pipes stay open as long as it lives.
    for (const stream of stdio) (stream as unknown as { unref?: () => void } | null)?.unref?.()
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
