/**
 * JSON the way the stock Go executor reads and writes it: `encoding/json` escaping on output, and
 * `json.Decoder.Decode` rules on input (first value only, unknown fields ignored, case-insensitive
 * field names, `null` accepted, type mismatches rejected) in front of the request schemas of
 * `@effect-koyeb/core/ExecutorWire`.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

const htmlUnsafe = /[<>&\u2028\u2029]/
const htmlUnsafeGlobal = /[<>&\u2028\u2029]/g
const htmlEscapes: Record<string, string> = {
  "<": "\\u003c",
  ">": "\\u003e",
  "&": "\\u0026",
  "\u2028": "\\u2028",
  "\u2029": "\\u2029"
}

/** Go's escaping of `<`, `>`, `&`, U+2028 and U+2029 applied to already encoded JSON text. */
export const escapeHtml = (json: string): string =>
  htmlUnsafe.test(json) ? json.replace(htmlUnsafeGlobal, (c) => htmlEscapes[c]!) : json

/** Whether `s` contains a character Go escapes but `JSON.stringify` does not. */
export const needsHtmlEscape = (s: string): boolean => htmlUnsafe.test(s)

// ES2024 string methods (Node >= 20 has them; the project's lib is ES2022)
interface WellFormedString {
  isWellFormed(): boolean
  toWellFormed(): string
}

/** `s` with lone surrogates replaced by U+FFFD, as Go decodes `"\ud800"`. */
export const wellFormed = (s: string): string => {
  const w = s as unknown as WellFormedString
  return w.isWellFormed() ? s : w.toWellFormed()
}

/** A JSON string literal as Go's `encoding/json` writes it. */
export const string = (s: string): string => escapeHtml(JSON.stringify(wellFormed(s)))

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

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

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
