/**
 * Pseudo-terminals for the `pty` extension, from the system's `script` (util-linux) rather than a
 * native addon: nothing to compile at install time, and `script` is in every Debian-based image
 * (Koyeb's sandbox image among them). `script -q -e -c CMD /dev/null` runs CMD as the leader of a
 * new session whose controlling terminal is a fresh pty, copies its stdin (our pipe) to the
 * terminal and the terminal's output to its stdout, forwards end of input as the terminal's EOF,
 * and exits with CMD's exit code. The initial size is set by `stty` inside CMD. `script` cannot
 * resize a terminal when its own stdin is not one, so a resize finds the terminal through `/proc`
 * (the session leader's `tty_nr`) and sets its size with `stty -F`: the kernel then sends
 * `SIGWINCH` to the terminal's foreground process group.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as ChildProcess from "node:child_process"
import { lookPath } from "../lookPath.js"
import { processList } from "../processGroups.js"

// `sh`'s search path when the environment sets none (dash's `defpath`)
const shellDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/**
 * Whether the `PATH` of `env` (the commands' environment) has `script`: without it no command
 * gets a terminal, and the server does not advertise `pty`.
 */
export const available = (env: Readonly<Record<string, string>>): boolean =>
  lookPath("script", env.PATH ?? shellDefaultPath) !== undefined

/** The size of a terminal, in characters. */
export interface Size {
  readonly cols: number
  readonly rows: number
}

/** The command's line and environment, run by `script` on a terminal of `size` (started by `sh -c`). */
export const wrap = (
  cmd: string,
  env: Readonly<Record<string, string>>,
  size: Size
): { readonly cmd: string; readonly env: Record<string, string> } => {
  // `script` runs `$SHELL -c`: a sure `sh` for our line, the user's `SHELL` restored for theirs.
  const restore = env.SHELL === undefined ? "unset SHELL" : `SHELL=$EFFECT_KOYEB_PTY_SHELL`
  const inner = `stty cols ${size.cols} rows ${size.rows} 2>/dev/null; c=$EFFECT_KOYEB_PTY_CMD; ${restore}; ` +
    `unset EFFECT_KOYEB_PTY_CMD EFFECT_KOYEB_PTY_SHELL; exec sh -c "$c"`
  return {
    cmd: `command -v script >/dev/null 2>&1 || { echo "no script (util-linux) in the sandbox: no terminal" >&2; ` +
      `exit 127; }; exec script -q -e -c '${inner}' /dev/null`,
    env: {
      ...env,
      SHELL: "/bin/sh",
      EFFECT_KOYEB_PTY_CMD: cmd,
      ...(env.SHELL === undefined ? {} : { EFFECT_KOYEB_PTY_SHELL: env.SHELL })
    }
  }
}

/** The terminal of a `script` process: its device, session leader and foreground process group. */
export interface Terminal {
  readonly device: string
  readonly leader: number
  readonly foreground: number
}

// Unix98 ptys have majors 136 to 143: /dev/pts/N with N = (major - 136) * 256 + minor.
const ptsDevice = (ttyNr: number): string | undefined => {
  const major = (ttyNr >> 8) & 0xfff
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00)
  return major >= 136 && major <= 143 ? `/dev/pts/${(major - 136) * 256 + minor}` : undefined
}

/** The terminal `script` (process `pid`) gave its child, once the child holds it. */
export const terminalOf = (pid: number): Terminal | undefined => {
  for (const p of processList() ?? []) {
    if (p.ppid !== pid) continue
    const device = ptsDevice(p.ttyNr)
    if (device !== undefined && p.tpgid > 0) return { device, leader: p.pid, foreground: p.tpgid }
  }
  return undefined
}

/** Sets the size of `device`; false when `stty` failed (the terminal is gone). */
export const resize = (device: string, size: Size): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const child = ChildProcess.execFile(
      "stty",
      ["-F", device, "cols", String(size.cols), "rows", String(size.rows)],
      { timeout: 5000 },
      (error) => resume(Effect.succeed(error === null))
    )
    return Effect.sync(() => void child.kill())
  })
