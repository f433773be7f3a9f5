/**
 * TCP port numbers: the one 1–65535 check of the core package.
 *
 * @internal
 */

/** True for an integer from 1 to 65535: a port a server in the sandbox can listen on. */
export const isTcpPort = (port: number): boolean => Number.isInteger(port) && port >= 1 && port <= 65535
