/**
 * The executor's bearer authentication: exactly `Authorization: Bearer <secret>`, compared in
 * constant time.
 *
 * @internal
 */
import * as Crypto from "node:crypto"

// Digests have a fixed length, so neither the comparison nor an early length check reveals the secret's length.
const digest = (text: string): Buffer => Crypto.createHash("sha256").update(text).digest()

/** Whether `a` equals `b`, in a time that reveals neither where they differ nor their lengths. */
export const safeEqual = (a: string, b: string): boolean => Crypto.timingSafeEqual(digest(a), digest(b))

/**
 * The check of an `Authorization` header against `secret` (case-sensitive scheme, one space,
 * non-empty token), as `safeEqual` compares; the secret's digest is taken once, not per request.
 */
export const bearer = (secret: string): (header: string | undefined) => boolean => {
  const expected = digest(secret)
  return (header) =>
    header !== undefined && header.length > 7 && header.startsWith("Bearer ") &&
    Crypto.timingSafeEqual(digest(header.slice(7)), expected)
}
