/**
 * JSON the way the stock Go executor reads and writes it: `encoding/json` escaping on output, and
 * `json.Decoder.Decode` rules on input (first value only, unknown fields ignored, case-insensitive
 * field names, `null` accepted, type mismatches rejected) in front of the request schemas of
 * `@effect-koyeb/core/ExecutorWire`.
 *
 * @internal
 */
import * as Option from "effect/Option"
import { isRecord } from "effect/Predicate"
import * as Schema from "effect/Schema"
import { isUtf8 } from "node:buffer"

/**
 * What an invalid byte decodes to (see `fromBytes`): a lone surrogate, which no valid UTF-8 and no
 * decoded request string (see `wellFormed`) can contain, so `goEscapes` knows it for one.
 */
const invalidByte = "\udcff"

// Go's `utf8.DecodeRune`: the accepted range of the second byte after each lead byte (0: not a lead byte)
const secondLow = new Uint8Array(256)
const secondHigh = new Uint8Array(256)
const sequenceLength = new Uint8Array(256)
for (let b = 0xc2; b <= 0xf4; b++) {
  sequenceLength[b] = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4
  secondLow[b] = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80
  secondHigh[b] = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf
}

/** The length of the valid UTF-8 sequence at `i` (before `end`), or 0 when `utf8.DecodeRune` reports an invalid byte there. */
const validLength = (bytes: Uint8Array, i: number, end: number): number => {
  const lead = bytes[i]!
  const length = sequenceLength[lead]!
  if (length === 0 || i + length > end) return 0
  const second = bytes[i + 1]!
  if (second < secondLow[lead]! || second > secondHigh[lead]!) return 0
  for (let k = 2; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return 0
  return length
}

// `invalidByte` alone: the same code unit is also the low half of valid pairs (U+1D4FF is D835 DCFF)
const loneInvalidByte = /(?<![\ud800-\udbff])\udcff/g

/**
 * A request body as Go's `encoding/json` reads it: invalid UTF-8 becomes one U+FFFD per byte
 * `utf8.DecodeRune` finds invalid (WHATWG decoding gives one per maximal subpart), so a command
 * with such bytes reaches `sh` as the stock's does.
 */
export const decodeRequest = (bytes: Buffer): string =>
  isUtf8(bytes) ? bytes.toString("utf8") : fromBytes(bytes).replace(loneInvalidByte, "\ufffd")

/**
 * The text of `bytes[start, end)` for Go's `encoding/json` to write: valid UTF-8 as is, and each
 * byte `utf8.DecodeRune` finds invalid (width 1: a stray continuation byte, each byte of a
 * truncated sequence, of an overlong form, of a surrogate, above U+10FFFF) as a lone surrogate,
 * which `string` and `goEscapes` write as `\ufffd`, like Go. WHATWG decoding (`TextDecoder`,
 * `Buffer#toString`) gives one U+FFFD per maximal subpart instead (`E0 A0`: one, Go: two). Valid
 * input takes the native decoder.
 */
export const fromBytes = (bytes: Buffer, start = 0, end = bytes.length): string => {
  if (isUtf8(start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end))) {
    return bytes.toString("utf8", start, end)
  }
  let text = ""
  let run = start
  let i = start
  while (i < end) {
    if (bytes[i]! < 0x80) {
      i++
      continue
    }
    const length = validLength(bytes, i, end)
    if (length > 0) {
      i += length
      continue
    }
    text += bytes.toString("utf8", run, i) + invalidByte
    run = ++i
  }
  return run === start ? text : text + bytes.toString("utf8", run, end)
}

const htmlUnsafe = /[<>&\u2028\u2029]/
// an escaped backslash is matched too, so that `\\udc..` (text, not an escape) is left alone
const goUnsafeGlobal = /[<>&\u2028\u2029]|\\(?:\\|ud[89a-f][0-9a-f]{2})/g
const goEscape = (c: string): string =>
  c === "<"
    ? "\\u003c"
    : c === ">"
    ? "\\u003e"
    : c === "&"
    ? "\\u0026"
    : c === "\u2028"
    ? "\\u2028"
    : c === "\u2029"
    ? "\\u2029"
    : c === "\\\\"
    ? c
    : "\\ufffd"

/**
 * Go's output escapes applied to text `JSON.stringify` encoded: `<`, `>`, `&`, U+2028 and U+2029
 * as `\u` escapes, and a lone surrogate (an invalid byte of `fromBytes`, or a lone surrogate of any
 * other string) as `\ufffd`, which is how Go writes an invalid byte.
 */
export const goEscapes = (json: string): string =>
  // two scans, each faster than one looking for both: the usual text has neither
  htmlUnsafe.test(json) || json.indexOf("\\ud") !== -1 ? json.replace(goUnsafeGlobal, goEscape) : json

// ES2024 string methods (Node >= 20 has them; the project's lib is ES2022)
interface WellFormedString {
  isWellFormed(): boolean
  toWellFormed(): string
}

/** `s` with lone surrogates replaced by U+FFFD, as Go decodes `"\ud800"` (and a request body's invalid bytes). */
export const wellFormed = (s: string): string => {
  const w = s as unknown as WellFormedString
  return w.isWellFormed() ? s : w.toWellFormed()
}

/** A JSON string literal as Go's `encoding/json` writes it. */
export const string = (s: string): string => goEscapes(JSON.stringify(s))

// Go's case folding for field names is Unicode simple folding; ASCII folding covers every real key.
const fold = (s: string): string => s.toLowerCase()

/**
 * The first JSON value of `text`, or `undefined` when there is none or it is malformed.
 * Trailing bytes after the first value are ignored, as `json.Decoder.Decode` does. Only for
 * bodies `JSON.parse` refuses: the scan costs a JS step per character.
 */
const firstValue = (text: string): unknown => {
  let i = 0
  while (i < text.length && (text[i] === " " || text[i] === "\t" || text[i] === "\n" || text[i] === "\r")) i++
  if (i === text.length) return undefined
  let end = text.length
  const open = text[i]
  if (open === "{" || open === "[") {
    let depth = 0
    let inString = false
    for (let j = i; j < text.length; j++) {
      const c = text[j]
      if (inString) {
        if (c === "\\") j++
        else if (c === "\"") inString = false
      } else if (c === "\"") inString = true
      else if (c === "{" || c === "[") depth++
      else if (c === "}" || c === "]") {
        depth--
        if (depth === 0) {
          end = j + 1
          break
        }
      }
    }
  }
  try {
    return JSON.parse(end === text.length && i === 0 ? text : text.slice(i, end))
  } catch {
    return undefined
  }
}

/** `JSON.parse` of a whole valid body (the usual case, native speed), else the first value. */
const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return firstValue(text)
  }
}

/** `value` with lone surrogates replaced in every string and object key, as Go decodes JSON text. */
const wellFormedDeep = (value: unknown): unknown => {
  if (typeof value === "string") return wellFormed(value)
  if (Array.isArray(value)) return value.map(wellFormedDeep)
  if (!isRecord(value)) return value
  // no prototype: a `__proto__` key stays a key, for the schema to check like any other
  const out: Record<string, unknown> = Object.create(null)
  for (const key of Object.keys(value)) out[wellFormed(key)] = wellFormedDeep(value[key])
  return out
}

/**
 * A decoder of request bodies: Go's `json.Decoder.Decode` rules (first JSON value only, a
 * top-level `null` is the zero struct, a field is set by the key equal to its name or else equal
 * case-insensitively, the last such key wins, unknown keys and `null` values change nothing, lone
 * surrogates are replaced), then `schema`, whose defaults are Go's zero values. `None` means
 * `400 Invalid request`: an empty body, malformed JSON, not an object, or a type mismatch (also
 * in a value that a later key replaced, as Go reports the first mismatch after decoding on).
 */
export const decoder = <A, I>(
  schema: Schema.Schema<A, I> & { readonly fields: Schema.Struct.Fields }
): (text: string) => Option.Option<A> => {
  const names = Object.keys(schema.fields)
  const decode = Schema.decodeUnknownOption(schema)
  return (text) => {
    const value = parse(text)
    if (value === null) return decode({})
    if (!isRecord(value)) return Option.none()
    const fields: Record<string, unknown> = {}
    let replaced: Array<Record<string, unknown>> | undefined
    for (const key of Object.keys(value)) {
      const name = names.find((n) => n === key) ?? names.find((n) => fold(n) === fold(key))
      const v = value[key]
      if (name === undefined || v === null) continue
      if (Object.hasOwn(fields, name)) (replaced ??= []).push({ [name]: fields[name] })
      fields[name] = wellFormedDeep(v)
    }
    if (replaced !== undefined && replaced.some((earlier) => Option.isNone(decode(earlier)))) return Option.none()
    return decode(fields)
  }
}
