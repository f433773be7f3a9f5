/**
 * `spawn` on an executor that advertises `interactive`: one `/spawn` SSE stream per command (its
 * first event names it; closing the stream stops it), and `/stdin`, `/stdin_end` and `/signal`
 * requests naming it; with `pty` (executors advertising `pty`), a terminal that `/resize` resizes.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { SpawnEvent } from "../ExecutorClient.js"
import { prepare, withStreamDeadlines } from "./commandStrategy.js"
import { protocolError } from "./executorReplies.js"
import { makeRunning, noTerminal, type Spawner, type TransportEvent, withTerminal } from "./spawn.js"

// Bytes per `/stdin` request: large enough to amortise a round trip, small enough for any gateway.
const maxWrite = 1024 * 1024

/** Starts `line` through `/spawn` for the lifetime of the scope (the client has the optional `spawn` members). */
export const interactiveSpawn: Spawner = (client, line, options, operation) =>
  Effect.gen(function*() {
    const cmd = yield* prepare(line, undefined, options)
    const { env, pty } = yield* withTerminal(options)
    const events = withStreamDeadlines(
      client.spawn!({ cmd, cwd: options?.cwd, env, pty }),
      line,
      options,
      operation
    )
    const pull = yield* Stream.toPull(events)
    // The first event names the command; whatever came with it is kept for the output.
    let id: string | undefined
    const rest: Array<TransportEvent> = []
    const keep = (event: SpawnEvent) => {
      if (event._tag === "Started") id = event.id
      else rest.push(event._tag === "Output" ? { stream: event.stream, data: event.data } : event)
    }
    while (id === undefined) {
      const chunk = yield* Effect.catchAll(
        pull,
        Option.match({
          onNone: () => Effect.fail(protocolError("/spawn", "stream ended before started")),
          onSome: Effect.fail
        })
      )
      Chunk.forEach(chunk, keep)
    }
    const named = id
    const tail = Stream.repeatEffectChunkOption(pull).pipe(
      Stream.filterMap((event): Option.Option<TransportEvent> =>
        event._tag === "Output"
          ? Option.some({ stream: event.stream, data: event.data })
          : event._tag === "Complete"
          ? Option.some(event)
          : Option.none()
      )
    )
    return yield* makeRunning({
      events: Stream.concat(Stream.fromIterable(rest), tail),
      write: (data) => Effect.asVoid(client.writeStdin!(named, data)),
      end: client.endStdin!(named),
      signal: (signal) => client.signalSpawned!(named, signal),
      resize: (size) => pty === undefined ? noTerminal() : client.resize!(named, size.cols, size.rows),
      maxWrite
    })
  })
