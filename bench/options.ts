/** The command-line options of `npm run bench` (read from `process.argv` once). */
import * as Path from "node:path"
import * as H from "./harness.js"

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name)
  return i === -1 ? undefined : argv[i + 1]
}
export const list = argv.includes("--list")
export const quick = argv.includes("--quick")
export const only = flag("--only")?.split(",").filter((s) => s !== "")
export const outFile = Path.resolve(flag("--out") ?? Path.join(H.root, "bench", "results", "latest.json"))

/** Full and `--quick` sizes. */
export const size = <A>(full: A, reduced: A): A => (quick ? reduced : full)
