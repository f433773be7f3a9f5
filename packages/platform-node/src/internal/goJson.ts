/**
 * JSON the way the stock Go executor reads and writes it (`koyeb-wire.md` §2.3): `encoding/json`
 * escaping on output, and `json.Decoder.Decode` rules on input (first value only, unknown fields
 * ignored, case-insensitive field names, `null` accepted, type mismatches rejected).
 *
 * @internal
 */

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

/** The kinds of request fields the executor decodes. */
type FieldKind = "string" | "stringMap"

type FieldValue<K extends FieldKind> = K extends "string" ? string : Record<string, string>

/** The decoded request: every field present, zero values (`""`, `{}`) when absent or `null`, as in Go. */
export type Decoded<F extends Record<string, FieldKind>> = { readonly [K in keyof F]: FieldValue<F[K]> }

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

/**
 * Decodes a request body into the given fields with Go's rules; `undefined` means
 * `400 Invalid request` (empty body, malformed JSON, or a type mismatch).
 */
export const decode = <const F extends Record<string, FieldKind>>(text: string, fields: F): Decoded<F> | undefined => {
  const value = parse(text)
  if (value === undefined) return undefined
  const out: Record<string, unknown> = {}
  for (const name in fields) out[name] = fields[name] === "string" ? "" : {}
  // a top-level `null` decodes into the zero struct
  if (value === null) return out as Decoded<F>
  if (!isRecord(value)) return undefined
  const names = Object.keys(fields)
  for (const key of Object.keys(value)) {
    const name = names.find((n) => n === key) ?? names.find((n) => fold(n) === fold(key))
    if (name === undefined) continue
    const v = value[key]
    if (v === null) continue
    if (fields[name] === "string") {
      if (typeof v !== "string") return undefined
      out[name] = wellFormed(v)
    } else {
      if (!isRecord(v)) return undefined
      const map: Record<string, string> = {}
      for (const [k, s] of Object.entries(v)) {
        if (s !== null && typeof s !== "string") return undefined
        map[wellFormed(k)] = s === null ? "" : wellFormed(s)
      }
      out[name] = map
    }
  }
  return out as Decoded<F>
}
