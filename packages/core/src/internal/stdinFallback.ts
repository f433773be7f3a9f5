/**
 * `spawn` on an executor without the `interactive` extension (Koyeb's stock one), whose commands
 * always get end of input on stdin. The command runs as the marker strategy runs it, its stdin
 * fed by a loop in the sandbox that copies numbered chunk files, in order, from a directory of its
 * own, deleting each once copied, until an `end` file appears (or the command exits). Each `write`
 * is one `/run` request that decodes a base64 chunk into the next file (written aside, then
 * renamed, so the loop never sees half a chunk); `end` creates the `end` file; `signal` is a
 * `kill` of the command's process group, which the marker names.
 *
 * A write after the command has exited completes and its bytes are dropped, as on our executor.
 *
 * Limits: every write costs a round trip plus up to `pollInterval` before the command sees it;
 * a write completes once the chunk is on the sandbox's disk, not once the command read it (a
 * command that does not read its stdin leaves its chunks on disk, under `/tmp`); output arrives
 * line by line as the stock executor reports it (each line with a `\n` added, a final line without
 * one included).
 *
 * With `pty`, the command runs under the sandbox's `script` (util-linux), which gives it a terminal
 * (`Unsupported` when the sandbox has no `script`): `end` types Ctrl-D, its output comes line by
 * line as above, a signal goes to the terminal's foreground process group (found through `/proc`),
 * and `resize` fails with `Unsupported`: the stock executor offers no way to set the size of a
 * terminal the SDK cannot reach.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { PtySize } from "../Executor.js"
import { InvalidArgument, Unsupported } from "../SandboxError.js"
import * as Base64 from "./base64Transfer.js"
import { toBytes } from "./bytes.js"
import { prepare } from "./commandStrategy.js"
import { protocolError } from "./executorReplies.js"
import { markerEvents } from "./markerStrategy.js"
import * as Shell from "./shell.js"
import { makeRunning, noTerminal, type Spawner, type TransportEvent, withTerminal } from "./spawn.js"

/** How often the feeding loop looks for the next chunk. */
export const pollInterval = "0.05"

// Bytes per chunk: their base64 stays well under the 128 KiB a command argument may have.
const maxWrite = 64 * 1024

/** The command, its stdin fed from the chunk files of `dir`. */
const fedLine = (dir: string, line: string): string => {
  const d = Shell.quote(dir)
  const loop = `i=1; while :; do if [ -f ${d}/$i ]; then cat ${d}/$i || break; rm -f ${d}/$i; i=$((i+1)); ` +
    `elif [ -f ${d}/end ] || ! kill -0 $p 2>/dev/null; then break; else sleep ${pollInterval}; fi; done; rm -rf ${d}`
  // The loop runs in the background (its stderr away from the command's) so that the pipeline ends
  // with the command, not with its input, and stops once this shell is gone. This shell survives a
  // SIGINT sent to the group (the command, in a subshell, gets the default action or its own trap),
  // so that the command's exit code is reported.
  return `p=$$; trap : INT; { ( ${loop} ) 2>/dev/null & } | ( ${line}\n); c=$?; touch ${d}/end 2>/dev/null; exit $c`
}

/** `line` on a terminal of `size` from `script`, which runs `$SHELL -c`: a sure `sh`, the user's `SHELL` restored. */
const terminalLine = (line: string, size: PtySize): string => {
  const inner = `stty cols ${size.cols} rows ${size.rows} 2>/dev/null; ` +
    `if [ -n "$EFFECT_KOYEB_SHELL" ]; then SHELL=$EFFECT_KOYEB_SHELL; else unset SHELL; fi; unset EFFECT_KOYEB_SHELL; ` +
    `exec sh -c ${Shell.quote(line)}`
  return `EFFECT_KOYEB_SHELL="\${SHELL-}" SHELL=/bin/sh exec script -q -e -c ${Shell.quote(inner)} /dev/null`
}

const noScript = "no-script"

const endOfTransmission = Uint8Array.of(4)

/**
 * A shell command printing the foreground process group of the terminal that `script`, in process
 * group `group`, gave its child (nothing before the child holds it), read from `/proc/<pid>/stat`:
 * the fields after the command name are state, ppid, pgrp, session, tty_nr, tpgid.
 */
const foregroundOf = (group: number): string =>
  `for f in /proc/[0-9]*/stat; do read -r s < "$f" 2>/dev/null || continue; case $s in *"(script) "*) ;; *) continue;; esac; ` +
  `set -- \${s##*") "}; [ "$3" = ${group} ] || continue; p=\${f#/proc/}; p=\${p%/stat}; ` +
  `for g in /proc/[0-9]*/stat; do read -r c < "$g" 2>/dev/null || continue; set -- \${c##*") "}; ` +
  `if [ "$2" = "$p" ] && [ "$6" -gt 0 ]; then echo "$6"; exit 0; fi; done; done`

/** Starts `line` with its stdin fed from files in the sandbox, for the lifetime of the scope. */
export const fallbackSpawn: Spawner = (client, line, options, operation) =>
  Effect.gen(function*() {
    yield* prepare(line, undefined, options)
    const { env, pty } = yield* withTerminal(options)
    const dir = `/tmp/.effect-koyeb-stdin-${Shell.randomToken()}`
    const d = Shell.quote(dir)
    const run = (cmd: string) =>
      Effect.flatMap(client.run({ cmd }), (reply) =>
        reply.code === 0
          ? Effect.succeed(reply.stdout)
          : Effect.fail(protocolError("/run", `the stdin fallback failed (${reply.code}): ${reply.stderr.trim()}`)))
    const made = yield* run(
      pty === undefined ? `mkdir -p ${d}` : `mkdir -p ${d} && { command -v script >/dev/null || echo ${noScript}; }`
    )
    if (made.trim() === noScript) {
      yield* run(`rm -rf ${d}`)
      return yield* new Unsupported({
        operation: "pty",
        detail: "the sandbox has no `script` (util-linux) to give the command a terminal"
      })
    }
    const group = yield* Deferred.make<number | undefined>()
    const command = pty === undefined ? line : terminalLine(line, pty)
    const events = markerEvents(client)(fedLine(dir, command), { ...options, env }, operation, group).pipe(
      Stream.map((event): TransportEvent =>
        event._tag === "CommandExit"
          ? { _tag: "Complete", code: event.exitCode }
          : { stream: event.stream, data: toBytes(`${event.data}\n`) }
      )
    )
    let next = 1
    // After the command ended the directory is gone: the bytes are discarded, as on our executor,
    // also when the loop removes it while the chunk is being written (the error is then ignored).
    const write = (data: Uint8Array) =>
      Effect.suspend(() => {
        const file = `${d}/${next++}`
        return Effect.asVoid(run(
          `[ -d ${d} ] || exit 0; e=$({ printf %s '${Base64.encode(data)}' | base64 -d > ${file}.part && ` +
            `mv ${file}.part ${file}; } 2>&1) || [ ! -d ${d} ] || { printf '%s\\n' "$e" >&2; exit 1; }`
        ))
      })
    return yield* makeRunning({
      events,
      write,
      // On a terminal, end of input is a typed Ctrl-D (as on our executor): `script` forwards its
      // own stdin's end only once the command has read everything, and not at all after 2 s.
      end: pty === undefined ? Effect.asVoid(run(`[ -d ${d} ] && touch ${d}/end; exit 0`)) : write(endOfTransmission),
      resize: () =>
        pty === undefined
          ? noTerminal()
          : Effect.fail(
            new Unsupported({ operation: "resize", detail: "Koyeb's stock executor cannot resize a terminal" })
          ),
      signal: (signal) =>
        Effect.gen(function*() {
          const name = /^(SIG)?([A-Z][A-Z0-9+-]*)$/.exec(signal)?.[2]
          if (name === undefined) return yield* new InvalidArgument({ argument: "signal", detail: signal })
          const pid = yield* Deferred.await(group)
          if (pid === undefined) return
          // dash's `kill` rejects `--`; a command the marker could not make a group leader gets the signal alone
          const toGroup = `kill -${name} -${pid} 2>/dev/null || kill -${name} ${pid}`
          const cmd = pty === undefined
            ? toGroup
            : `t=$(${foregroundOf(pid)}); if [ -n "$t" ]; then kill -${name} -$t; else ${toGroup}; fi`
          yield* Effect.flatMap(client.run({ cmd }), (reply) =>
            reply.code === 0 || reply.stderr.includes("No such process")
              ? Effect.void
              : Effect.fail(new InvalidArgument({ argument: "signal", detail: reply.stderr.trim() })))
        }),
      maxWrite
    })
  })
