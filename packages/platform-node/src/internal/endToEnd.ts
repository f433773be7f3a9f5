/**
 * The end-to-end headers of a message a proxy forwards: without the hop-by-hop ones (RFC 9110
 * §7.6.1), which describe one connection, and without `host`, which the next hop sets.
 *
 * @internal
 */
import type * as Http from "node:http"

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host"
])

/** `headers` without the hop-by-hop ones and `host`. */
export const endToEnd = (headers: Http.IncomingHttpHeaders): Record<string, string | Array<string>> => {
  const out: Record<string, string | Array<string>> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name)) out[name] = value
  }
  return out
}
