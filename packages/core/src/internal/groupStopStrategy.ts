/**
 * Commands on an executor that advertises `process-group-kill`: it starts each command as a
 * process group and stops the group (with its own grace period) when the command's stream is
 * closed, silent or not. Commands are sent as given and closing the stream is the stop; a call
 * that sets `killGracePeriod` takes the marker strategy, since only the SDK's own kill request can
 * honour it.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import type { ExecFailure, RunOptions } from "../Executor.js"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import type { ExecEvent } from "../SandboxSchema.js"
import { CommandExit } from "../SandboxSchema.js"
import {
  collected,
  collectEvents,
  type CommandStrategy,
  makeConverter,
  prepare,
  withDeadline,
  withStreamDeadlines
} from "./commandStrategy.js"

/** Commands stopped by the executor when their connection closes; `marker` serves calls with a `killGracePeriod`. */
export const groupStopStrategy = (client: ExecutorClientShape, marker: CommandStrategy): CommandStrategy => {
  const direct = (
    line: string,
    options: RunOptions | undefined,
    operation: string
  ): Stream.Stream<ExecEvent, ExecFailure> =>
    Stream.unwrap(Effect.gen(function*() {
      const cmd = yield* prepare(line, undefined, options)
      const { convert } = makeConverter(yield* Effect.clock, undefined)
      // closing the stream closes the connection, on which the executor stops the command's group
      const all = Stream.mapChunks(client.runStreaming({ cmd, cwd: options?.cwd, env: options?.env }), convert)
      return withStreamDeadlines(all, line, options, operation)
    }))

  const events = (line: string, options: RunOptions | undefined, operation: string) =>
    options?.killGracePeriod === undefined ? direct(line, options, operation) : marker.events(line, options, operation)

  // Without an idle deadline nothing needs the events one chunk at a time: the body is read whole,
  // which costs less per command than a stream.
  const whole = (line: string, options: RunOptions | undefined, operation: string) =>
    withDeadline(
      Effect.gen(function*() {
        const cmd = yield* prepare(line, undefined, options)
        const clock = yield* Effect.clock
        const startedAt = clock.unsafeCurrentTimeMillis()
        const replies = yield* client.runStreamingCollect({ cmd, cwd: options?.cwd, env: options?.env })
        const stdout: Array<string> = []
        const stderr: Array<string> = []
        let exit: CommandExit | undefined
        for (const event of replies) {
          if (event._tag === "Complete") {
            exit = new CommandExit({
              exitCode: event.code,
              durationMillis: clock.unsafeCurrentTimeMillis() - startedAt
            })
          } else {
            ;(event.stream === "stdout" ? stdout : stderr).push(event.data)
          }
        }
        return yield* collected(stdout, stderr, exit)
      }),
      line,
      options,
      operation
    )

  return {
    events,
    collect: (line, options, operation) =>
      options?.idleTimeout !== undefined || options?.killGracePeriod !== undefined
        ? collectEvents(events(line, options, operation))
        : whole(line, options, operation)
  }
}
