/**
 * TCP port numbers: the one 1–65535 check of the Node package.
 *
 * @internal
 */

/** The highest TCP port number. */
export const MAX_TCP_PORT = 65535

/** True for an integer from 1 to 65535: a port something can listen on or connect to. */
export const isTcpPort = (port: number): boolean => Number.isInteger(port) && port >= 1 && port <= MAX_TCP_PORT

/** The port a decimal text names (surrounding blanks ignored, no sign, no leading zero), if it is a TCP port. */
export const parseTcpPort = (text: string): number | undefined => {
  const trimmed = text.trim()
  const port = Number(trimmed)
  return isTcpPort(port) && String(port) === trimmed ? port : undefined
}
