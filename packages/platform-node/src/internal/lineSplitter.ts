/**
 * Splits a byte stream into text lines the way the stock executor does (`/run_streaming` and
 * process logs): only on `\n`, trailing `\r` removed, final unterminated line kept, each line
 * decoded whole as Go writes it (`GoJson.fromBytes`: one U+FFFD per invalid byte), so a sequence
 * split across reads is kept and one cut by a newline or the end of the stream is replaced. Unlike
 * the stock, a line longer than `maxLineBytes` is cut (at a character boundary) instead of
 * stalling the reader.
 *
 * @internal
 */
import * as GoJson from "./goJson.js"

/** A stateful splitter fed with the chunks of one stream. */
export interface LineSplitter {
  /** The lines completed by `chunk`. */
  readonly push: (chunk: Uint8Array) => Array<string>
  /** The final unterminated line, if any (call once, at end of stream). */
  readonly end: () => Array<string>
}

/** How trailing carriage returns are removed: all of them (`/run_streaming`) or one (process logs). */
export type TrimCarriageReturn = "all" | "one"

const trimAll = (line: string): string => {
  let end = line.length
  while (end > 0 && line.charCodeAt(end - 1) === 13) end--
  return end === line.length ? line : line.slice(0, end)
}

const trimOne = (line: string): string => line.charCodeAt(line.length - 1) === 13 ? line.slice(0, -1) : line

/** The largest cut `<= at` that does not fall inside a UTF-8 sequence of `bytes`. */
const charBoundary = (bytes: Buffer, at: number): number => {
  let cut = at
  // back off over at most 3 continuation bytes (10xxxxxx)
  while (cut > at - 3 && cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--
  return (bytes[cut]! & 0xc0) === 0x80 ? at : cut
}

/** Creates a splitter; `maxLineBytes` bounds the memory held for one unterminated line. */
export const make = (options: { readonly maxLineBytes: number; readonly trim: TrimCarriageReturn }): LineSplitter => {
  const trim = options.trim === "all" ? trimAll : trimOne
  let pending: Array<Buffer> = []
  let pendingBytes = 0

  const takePending = (): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes)
    pending = []
    pendingBytes = 0
    return all
  }

  const splitText = (text: string, out: Array<string>): void => {
    const lines = text.split("\n")
    // the text always ends with "\n": the last element is empty
    lines.pop()
    if (text.indexOf("\r") === -1) {
      for (let i = 0; i < lines.length; i++) out.push(lines[i]!)
    } else {
      for (let i = 0; i < lines.length; i++) out.push(trim(lines[i]!))
    }
  }

  const cutOversized = (out: Array<string>): void => {
    let all = takePending()
    while (all.length > options.maxLineBytes) {
      const cut = charBoundary(all, options.maxLineBytes)
      out.push(GoJson.fromBytes(all, 0, cut))
      all = all.subarray(cut)
    }
    if (all.length > 0) {
      pending = [all]
      pendingBytes = all.length
    }
  }

  return {
    push(chunk) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
      const out: Array<string> = []
      const last = buf.lastIndexOf(10)
      if (last === -1) {
        pending.push(buf)
        pendingBytes += buf.length
        if (pendingBytes > options.maxLineBytes) cutOversized(out)
        return out
      }
      if (pendingBytes + last + 1 > options.maxLineBytes) {
        // rare path: a long line is involved; go line by line so it can be cut
        let start = 0
        while (start < buf.length) {
          const nl = buf.indexOf(10, start)
          const end = nl === -1 ? buf.length : nl
          pending.push(buf.subarray(start, end))
          pendingBytes += end - start
          if (pendingBytes > options.maxLineBytes) cutOversized(out)
          if (nl === -1) break
          out.push(trim(GoJson.fromBytes(takePending())))
          start = nl + 1
        }
        return out
      }
      if (pendingBytes === 0) {
        splitText(GoJson.fromBytes(buf, 0, last + 1), out)
      } else {
        pending.push(buf.subarray(0, last + 1))
        pendingBytes += last + 1
        splitText(GoJson.fromBytes(takePending()), out)
      }
      if (last + 1 < buf.length) {
        pending.push(buf.subarray(last + 1))
        pendingBytes += buf.length - last - 1
      }
      return out
    },
    end() {
      if (pendingBytes === 0) return []
      return [trim(GoJson.fromBytes(takePending()))]
    }
  }
}
