/**
 * Raw output chunks of a running command turned into lines, per stream, the way the executor
 * splits `/run_streaming` output: UTF-8 decoded across chunk boundaries, split on `\n`, trailing
 * carriage returns removed, a final unterminated line kept.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Stream from "effect/Stream"
import type { OutputBytes } from "../Executor.js"
import { OutputChunk } from "../SandboxSchema.js"
import type { StreamName } from "../SandboxSchema.js"

const trimCarriageReturns = (line: string): string => {
  let end = line.length
  while (end > 0 && line.charCodeAt(end - 1) === 13) end--
  return end === line.length ? line : line.slice(0, end)
}

/** A line splitter of one stream: the lines each chunk completes, then the last one. */
const makeSplitter = (stream: StreamName) => {
  const decoder = new TextDecoder()
  let pending = ""
  const complete = (text: string, out: Array<OutputChunk>) => {
    const parts = (pending + text).split("\n")
    pending = parts.pop()!
    for (const part of parts) out.push(new OutputChunk({ stream, data: trimCarriageReturns(part) }))
  }
  return {
    push: (bytes: Uint8Array, out: Array<OutputChunk>) => complete(decoder.decode(bytes, { stream: true }), out),
    end: (out: Array<OutputChunk>) => {
      complete(decoder.decode(), out)
      if (pending !== "") out.push(new OutputChunk({ stream, data: trimCarriageReturns(pending) }))
      pending = ""
    }
  }
}

/** The lines of `output`, per stream. */
export const outputLines = <E, R>(output: Stream.Stream<OutputBytes, E, R>): Stream.Stream<OutputChunk, E, R> =>
  Stream.suspend(() => {
    const splitters = { stdout: makeSplitter("stdout"), stderr: makeSplitter("stderr") }
    const rest = Stream.suspend(() => {
      const out: Array<OutputChunk> = []
      splitters.stdout.end(out)
      splitters.stderr.end(out)
      return Stream.fromChunk(Chunk.unsafeFromArray(out))
    })
    return output.pipe(
      Stream.mapChunks((chunk) => {
        const out: Array<OutputChunk> = []
        for (const { data, stream } of chunk) splitters[stream].push(data, out)
        return Chunk.unsafeFromArray(out)
      }),
      Stream.concat(rest)
    )
  })
