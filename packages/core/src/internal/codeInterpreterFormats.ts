/**
 * The MIME types a code interpreter result can have, and the `Result` field each one fills.
 *
 * @internal
 */
export const formats = [
  ["text", "text/plain"],
  ["html", "text/html"],
  ["markdown", "text/markdown"],
  ["svg", "image/svg+xml"],
  ["png", "image/png"],
  ["jpeg", "image/jpeg"],
  ["json", "application/json"]
] as const

/** A field of `Result` that holds a format. */
export type FormatField = typeof formats[number][0]
