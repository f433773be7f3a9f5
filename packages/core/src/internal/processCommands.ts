/**
 * The shell text behind `Processes`: how a launched command is wrapped so that its output goes to
 * log files in the sandbox and its process tree can be stopped as a group, how the wrapper is
 * recognised again in `/list_processes`, and the commands that read those logs and probe ports.
 *
 * @internal
 */
import { quote, wrapGroup } from "./shell.js"

/** Where launched processes write their output: `<nonce>.out` and `<nonce>.err`. */
export const logDir = "/tmp/.effect-koyeb/proc"

const launchMarker = (nonce: string) => `__ek_proc_${nonce}_`
const launchHead = /^echo __ek_proc_([0-9a-f]{32})_\$\$ >&2;__ek_c=/
const redirect = (nonce: string) =>
  `mkdir -p ${logDir}&&exec >>${logDir}/${nonce}.out 2>>${logDir}/${nonce}.err||exit 126;exec sh -c `

/**
 * The `/start_process` command for `line`: the shell appends stdout and stderr to the log files of
 * `nonce` (the executor's own pipes receive only the wrapper's PID marker, so its log buffers stay
 * empty and its replay can never crash), then becomes `sh -c line` with the executor's PID as its
 * process-group id, keeping the executor's status semantics (`exec` all the way down).
 */
export const launchCommand = (nonce: string, line: string): string =>
  wrapGroup(launchMarker(nonce), redirect(nonce) + quote(line))

/** A process started by `launchCommand`: its log nonce and the user's command line. */
export interface Launched {
  readonly nonce: string
  readonly line: string
}

/** Recognises a `launchCommand` in `/list_processes`; `undefined` for any other command. */
export const parseLaunched = (command: string): Launched | undefined => {
  const head = launchHead.exec(command)
  if (head === null) return undefined
  const nonce = head[1]!
  const outer = unquoteAt(command, head[0].length)
  if (outer === undefined) return undefined
  const prefix = redirect(nonce)
  if (!outer.value.startsWith(prefix)) return undefined
  const inner = unquoteAt(outer.value, prefix.length)
  return inner === undefined || inner.end !== outer.value.length ? undefined : { nonce, line: inner.value }
}

/** Reads the word `quote` wrote at `start` of `text` (`'…'`, each `'` as `'\''`): its value and end. */
const unquoteAt = (text: string, start: number): { readonly value: string; readonly end: number } | undefined => {
  if (text[start] !== "'") return undefined
  let value = ""
  let i = start + 1
  for (;;) {
    const close = text.indexOf("'", i)
    if (close === -1) return undefined
    value += text.slice(i, close)
    if (!text.startsWith("\\''", close + 1)) return { value, end: close + 1 }
    value += "'"
    i = close + 4
  }
}

/** The first stderr line of a `logsCommand`: this marker followed by the PID of its process group. */
export const logsMarker = "__ek_logs_"

/**
 * Prints the log files of `nonce`, stdout to stdout and stderr to stderr; when `followPid` is given,
 * keeps following them until that process has exited and its last lines are printed (GNU `tail`
 * `--pid`). Runs as its own process group, so the readers can be stopped together.
 */
export const logsCommand = (nonce: string, followPid: number | undefined): string => {
  const read = followPid === undefined ? "tail -c +1" : `tail -c +1 -F -s 0.2 --pid=${followPid}`
  const file = (ext: string) => `${logDir}/${nonce}.${ext}`
  return wrapGroup(
    logsMarker,
    `${read} ${file("out")} 2>/dev/null & ${read} ${file("err")} 1>&2 2>/dev/null;wait`
  )
}

/**
 * Stops the descendants of process `pid` and leaves `pid` itself stopped (SIGSTOP), for the
 * executor's own kill to end it: the stock executor's `/kill_process` kills only the shell it
 * started, which is in the executor's own process group, so its children would live on. The tree
 * is frozen top-down first (SIGSTOP to each process whose parent is in the tree, until a scan finds
 * no new one), so that nothing forks or is reparented meanwhile; then the descendants get SIGTERM
 * and SIGCONT, and once `graceMillis` have passed with one still alive, the tree is frozen again
 * (children forked meanwhile) and SIGKILLed. Shell builtins and `/proc/<pid>/stat` only (no `ps`,
 * no `CONFIG_PROC_CHILDREN`). Only a child of the executor (`$PPID`) is touched: a pid that has
 * meanwhile been reused by another process is left alone.
 */
export const stopTree = (pid: number, graceMillis: number): string => {
  const steps = Math.max(1, Math.ceil(graceMillis / 50))
  return `r=${pid};[ $r -gt 1 ]&&[ $r != $PPID ]&&[ $r != $$ ]&&read -r l 2>/dev/null </proc/$r/stat||exit 0;` +
    `l=\${l##*) };set -- $l;[ "$2" = $PPID ]||exit 0;s=" $r ";kill -STOP $r 2>/dev/null||exit 0;` +
    `freeze(){ n=1;while [ $n ];do n=;for f in /proc/[0-9]*/stat;do read -r l 2>/dev/null <$f||continue;` +
    `p=\${l%% *};l=\${l##*) };set -- $l;case "$s" in *" $2 "*) case "$s" in *" $p "*) ;; ` +
    `*) s="$s$p ";kill -STOP $p 2>/dev/null;n=1;; esac;; esac;done;done;d=\${s# $r };};` +
    `freeze;[ -n "$d" ]||exit 0;kill -TERM $d 2>/dev/null;kill -CONT $d 2>/dev/null;` +
    `alive(){ for p in $d;do read -r l 2>/dev/null </proc/$p/stat||continue;l=\${l##*) };` +
    `[ "\${l%% *}" != Z ]&&return 0;done;return 1;};i=0;while alive;do if [ $i -ge ${steps} ];then ` +
    `freeze;kill -KILL $d 2>/dev/null;exit 0;fi;sleep 0.05;i=$((i+1));done`
}

/**
 * Exits 0 when a TCP socket listens on `port` (IPv4 or IPv6), 1 otherwise, from `/proc/net/tcp*`
 * (state `0A` is LISTEN), so it needs no networking tools in the sandbox.
 */
export const listeningCommand = (port: number): string => {
  const hex = port.toString(16).toUpperCase().padStart(4, "0")
  return `grep -Eq '^ *[0-9]+: [0-9A-F]+:${hex} [0-9A-F]+:[0-9A-F]{4} 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null`
}
