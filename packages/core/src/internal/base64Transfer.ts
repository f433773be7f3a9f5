/**
 * Base64 for byte-exact file transfer over the executor's UTF-8-only endpoints: encoding of
 * upload chunks and incremental decoding of `base64` output read from a command.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Encoding from "effect/Encoding"

// Node's Buffer is native and ~10× faster than a JS codec; core has no Node types, so it is
// looked up structurally and the portable codec of `effect/Encoding` is the fallback.
interface NodeBufferView {
  readonly buffer: ArrayBufferLike
  readonly byteOffset: number
  readonly byteLength: number
  toString(encoding: "base64"): string
}
interface NodeBufferConstructor {
  from(data: ArrayBufferLike, byteOffset: number, length: number): NodeBufferView
  from(data: string, encoding: "base64"): NodeBufferView
}
const NodeBuffer = (globalThis as { readonly Buffer?: NodeBufferConstructor }).Buffer

/** Encodes bytes as standard base64 with padding. */
export const encode = (bytes: Uint8Array): string =>
  NodeBuffer === undefined
    ? Encoding.encodeBase64(bytes)
    : NodeBuffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

/** Decodes standard base64 (whitespace not allowed); `undefined` when the text is not base64. */
export const decode = (text: string): Uint8Array | undefined => {
  if (NodeBuffer === undefined) {
    return Either.getOrUndefined(Encoding.decodeBase64(text))
  }
  if (text.length % 4 !== 0) return undefined
  const buffer = NodeBuffer.from(text, "base64")
  // Buffer skips characters outside the alphabet (and stops at inner padding): a short result
  // reveals them, so corruption is never hidden (and no slow per-character check is needed)
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0
  if (buffer.byteLength !== (text.length / 4) * 3 - padding) return undefined
  // a plain Uint8Array view, so callers never see Buffer's different equality and prototype
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength)
}

/**
 * Decodes base64 text that arrives in pieces split anywhere (lines of `base64 -w N`, or lines an
 * executor split further): each piece yields the bytes of its complete 4-character groups.
 */
export class IncrementalDecoder {
  private pending = ""

  /** Adds a piece; returns the bytes it completes, or `undefined` if the text is not base64. */
  push(piece: string): Uint8Array | undefined {
    const text = this.pending.length === 0 ? piece : this.pending + piece
    const usable = text.length - (text.length % 4)
    this.pending = text.slice(usable)
    return usable === 0 ? new Uint8Array(0) : decode(usable === text.length ? text : text.slice(0, usable))
  }

  /** True when no partial group is left over (the input ended on a group boundary). */
  get isComplete(): boolean {
    return this.pending.length === 0
  }
}

/** Raw bytes per base64 chunk: a multiple of 3 so that chunks concatenate to one valid base64 text. */
export const alignToGroups = (bytes: number): number => Math.max(3, bytes - (bytes % 3))
