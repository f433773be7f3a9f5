/**
 * Byte helpers of file transfer: text to UTF-8 bytes, a byte stream regrouped into chunks of a
 * fixed size, and chunks joined into one array.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Stream from "effect/Stream"

const utf8Encoder = new TextEncoder()

/** A string as its UTF-8 bytes; bytes as they are. */
export const toBytes = (content: string | Uint8Array): Uint8Array =>
  typeof content === "string" ? utf8Encoder.encode(content) : content

/** Splits a byte stream into chunks of exactly `size` bytes (the last may be shorter), copying only to join pieces. */
export const regroup =
  (size: number) => <E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Uint8Array, E, R> =>
    Stream.suspend(() => {
      let buffer: Uint8Array | undefined
      let filled = 0
      const push = (piece: Uint8Array): Array<Uint8Array> => {
        const out: Array<Uint8Array> = []
        let offset = 0
        while (offset < piece.length) {
          if (filled === 0 && piece.length - offset >= size) {
            out.push(piece.subarray(offset, offset + size))
            offset += size
            continue
          }
          buffer ??= new Uint8Array(size)
          const n = Math.min(size - filled, piece.length - offset)
          buffer.set(piece.subarray(offset, offset + n), filled)
          filled += n
          offset += n
          if (filled === size) {
            out.push(buffer)
            buffer = undefined
            filled = 0
          }
        }
        return out
      }
      return self.pipe(
        Stream.mapConcat(push),
        Stream.concat(
          Stream.suspend(() => (buffer === undefined ? Stream.empty : Stream.succeed(buffer.subarray(0, filled))))
        )
      )
    })

/** The chunks joined into one array (the chunk itself when there is only one). */
export const concatBytes = (chunks: Chunk.Chunk<Uint8Array>): Uint8Array => {
  if (chunks.length === 1) return Chunk.unsafeHead(chunks)
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
