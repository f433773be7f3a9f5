/**
 * The executor's bearer authentication: exactly `Authorization: Bearer <secret>`, compared in
 * constant time.
 *
 * @internal
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Crypto from "node:crypto"

// Digests have a fixed length, so neither the comparison nor an early length check reveals the secret's length.
const digest = (text: string): Buffer => Crypto.createHash("sha256").update(text).digest()

/** Whether `a` equals `b`, in a time that reveals neither where they differ nor their lengths. */
export const safeEqual = (a: string, b: string): boolean => Crypto.timingSafeEqual(digest(a), digest(b))

/** Whether the request carries `Bearer <secret>` (case-sensitive scheme, one space, non-empty token). */
export const isAuthorized = (request: HttpServerRequest.HttpServerRequest, secret: string): boolean => {
  const header = request.headers["authorization"]
  if (header === undefined || !header.startsWith("Bearer ")) return false
  const token = header.slice(7)
  return token !== "" && safeEqual(token, secret)
}
