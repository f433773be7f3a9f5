/**
 * POSIX shell helpers shared by the services that build command lines.
 *
 * @internal
 */
import { InvalidArgument } from "../SandboxError.js"

/** Quotes `s` as one POSIX shell word: `'...'`, each `'` written as `'\''`. */
export const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`

/** Quotes each argument and joins them with spaces. */
export const quoteArgs = (args: ReadonlyArray<string>): string => args.map(quote).join(" ")

/** Linux `MAX_ARG_STRLEN` (128 KiB) minus the terminating NUL: the longest single argv or env string. */
export const maxArgBytes = 131_071

// eslint-disable-next-line no-control-regex -- any character outside ASCII
const nonAscii = /[^\u0000-\u007f]/

/** The UTF-8 size of `text` in bytes, as `TextEncoder` encodes it (a lone surrogate becomes U+FFFD, 3 bytes). */
export const utf8Length = (text: string): number => {
  if (!nonAscii.test(text)) return text.length
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next < 0xe000) {
        n += 4
        i++
      } else {
        n += 3
      }
    } else n += 3
  }
  return n
}

/** Why `line` cannot be run (empty, or holding a NUL that no argv string can carry), or undefined. */
export const checkCommand = (line: string): InvalidArgument | undefined =>
  line.trim() === ""
    ? new InvalidArgument({ argument: "command", detail: "the command is empty" })
    : line.includes("\0")
    ? new InvalidArgument({ argument: "command", detail: "the command contains a NUL character" })
    : undefined

/**
 * Why `env` cannot be passed to a command, or undefined. Sizes are checked by the client; bad names,
 * values that are not strings (JSON would drop or mangle them) and NULs would make the executor
 * fail to start the command.
 */
export const checkEnv = (env: Readonly<Record<string, string>> | undefined): InvalidArgument | undefined => {
  if (env === undefined) return undefined
  for (const [key, value] of Object.entries(env)) {
    if (key === "" || key.includes("=") || key.includes("\0")) {
      return new InvalidArgument({ argument: "env", detail: `invalid variable name ${JSON.stringify(key)}` })
    }
    if (typeof value !== "string") {
      return new InvalidArgument({ argument: "env", detail: `the value of ${key} is not a string (${typeof value})` })
    }
    if (value.includes("\0")) {
      return new InvalidArgument({ argument: "env", detail: `the value of ${key} contains a NUL character` })
    }
  }
  return undefined
}

/** A fresh unguessable token of 32 hex digits. */
export const randomToken = (): string =>
  Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("")

/**
 * Wraps `line` so that it can be stopped as a group: the shell first prints `<marker><its PID>` as
 * its first stderr line, then becomes `sh -c line` in a process group whose id is that PID. An
 * executor that started the shell as a group leader needs no `setsid` (which would fork and lose
 * the PID); elsewhere `setsid` keeps the PID (the shell is not a leader) and makes it the group id.
 * Without `setsid` the command runs in the executor's group and only its shell can be signalled.
 * The command text is held in an unexported variable, so it is neither duplicated in the argument
 * nor visible in the command's environment.
 */
export const wrapGroup = (marker: string, line: string): string =>
  `echo ${marker}$$ >&2;__ek_c=${quote(line)};__ek_g=;` +
  `{ read -r __ek_x __ek_x __ek_x __ek_x __ek_g __ek_x;} 2>/dev/null </proc/$$/stat;` +
  `if [ "$__ek_g" != "$$" ] && command -v setsid >/dev/null 2>&1;then exec setsid sh -c "$__ek_c";fi;` +
  `exec sh -c "$__ek_c"`

/**
 * Stops the process group `pid` (or the lone process when it is not a group): SIGTERM, then SIGKILL
 * if a member is still alive after `graceMillis`. Returns as soon as no live member is left. Zombies
 * (unreaped when the executor is PID 1) do not count, so they do not hold the call for the grace
 * period. Uses only shell builtins; dash's `kill` rejects `--`, so the negative id follows the signal.
 */
export const killGroup = (pid: number, graceMillis: number): string => {
  const steps = Math.max(1, Math.ceil(graceMillis / 50))
  return `t=-${pid};kill -TERM $t 2>/dev/null||{ t=${pid};kill -TERM $t 2>/dev/null;}||exit 0;` +
    `alive(){ kill -0 $t 2>/dev/null||return 1;[ -d /proc/self ]||return 0;` +
    `for f in /proc/[0-9]*/stat;do read -r l 2>/dev/null <$f||continue;l=\${l##*) };set -- $l;` +
    `[ "$1" != Z ]&&{ [ "$3" = ${pid} ]||[ "$f" = /proc/${pid}/stat ];}&&return 0;done;return 1;};` +
    `i=0;while alive;do if [ $i -ge ${steps} ];then kill -KILL $t 2>/dev/null;exit 0;fi;` +
    `sleep 0.05;i=$((i+1));done`
}
