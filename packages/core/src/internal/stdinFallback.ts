/**
 * `spawn` on an executor without the `interactive` extension (Koyeb's stock one), whose commands
 * always get end of input on stdin. The command runs as the marker strategy runs it, its stdin
 * fed by a loop in the sandbox that copies numbered chunk files, in order, from a directory of its
 * own, deleting each once copied, until an `end` file appears (or the command exits). Each `write`
 * is one `/run` request that decodes a base64 chunk into the next file (written aside, then
 * renamed, so the loop never sees half a chunk); `end` creates the `end` file; `signal` is a
 * `kill` of the command's process group, which the marker names.
 *
 * Limits: every write costs a round trip plus up to `pollInterval` before the command sees it;
 * a write completes once the chunk is on the sandbox's disk, not once the command read it (a
 * command that does not read its stdin leaves its chunks on disk, under `/tmp`); output arrives
 * line by line as the stock executor reports it (each line with a `\n` added, a final line without
 * one included); no terminal.
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { InvalidArgument } from "../SandboxError.js"
import * as Base64 from "./base64Transfer.js"
import { prepare } from "./commandStrategy.js"
import { protocolError } from "./executorReplies.js"
import { markerEvents } from "./markerStrategy.js"
import * as Shell from "./shell.js"
import { makeRunning, type Spawner, type TransportEvent } from "./spawn.js"

/** How often the feeding loop looks for the next chunk. */
export const pollInterval = "0.05"

// Bytes per chunk: their base64 stays well under the 128 KiB a command argument may have.
const maxWrite = 64 * 1024

const encoder = new TextEncoder()

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

/** Starts `line` with its stdin fed from files in the sandbox, for the lifetime of the scope. */
export const fallbackSpawn: Spawner = (client, line, options, operation) =>
  Effect.gen(function*() {
    yield* prepare(line, undefined, options)
    const dir = `/tmp/.effect-koyeb-stdin-${Shell.randomToken()}`
    const d = Shell.quote(dir)
    const run = (cmd: string) =>
      Effect.flatMap(client.run({ cmd }), (reply) =>
        reply.code === 0
          ? Effect.void
          : Effect.fail(protocolError("/run", `the stdin fallback failed (${reply.code}): ${reply.stderr.trim()}`)))
    yield* run(`mkdir -p ${d}`)
    const group = yield* Deferred.make<number | undefined>()
    const events = markerEvents(client)(fedLine(dir, line), options, operation, group).pipe(
      Stream.map((event): TransportEvent =>
        event._tag === "CommandExit"
          ? { _tag: "Complete", code: event.exitCode }
          : { stream: event.stream, data: encoder.encode(`${event.data}\n`) }
      )
    )
    let next = 1
    return yield* makeRunning({
      events,
      // After the command ended the directory is gone: the bytes are discarded.
      write: (data) =>
        Effect.suspend(() => {
          const file = `${d}/${next++}`
          return run(
            `[ -d ${d} ] || exit 0; printf %s '${Base64.encode(data)}' | base64 -d > ${file}.part && ` +
              `mv ${file}.part ${file}`
          )
        }),
      end: run(`[ -d ${d} ] && touch ${d}/end; exit 0`),
      signal: (signal) =>
        Effect.gen(function*() {
          const name = /^(SIG)?([A-Z][A-Z0-9+-]*)$/.exec(signal)?.[2]
          if (name === undefined) return yield* new InvalidArgument({ argument: "signal", detail: signal })
          const pid = yield* Deferred.await(group)
          if (pid === undefined) return
          // dash's `kill` rejects `--`; a command the marker could not make a group leader gets the signal alone
          const cmd = `kill -${name} -${pid} 2>/dev/null || kill -${name} ${pid}`
          yield* Effect.flatMap(client.run({ cmd }), (reply) =>
            reply.code === 0 || reply.stderr.includes("No such process")
              ? Effect.void
              : Effect.fail(new InvalidArgument({ argument: "signal", detail: reply.stderr.trim() })))
        }),
      maxWrite
    })
  })
