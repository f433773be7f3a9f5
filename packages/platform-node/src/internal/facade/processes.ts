/**
 * `sandbox.processes` of the Promise facade: the `Processes` service and its process handles as Promises.
 *
 * @internal
 */
import type * as Processes from "@effect-koyeb/core/Processes"
import type { PromiseProcess, PromiseProcesses } from "../../Sandboxes.js"
import { iterate, run, type Runtime } from "../promiseRuntime.js"
import { callWith, type Services } from "./runtime.js"

const processHandle = (runtime: Runtime<Services>, launched: Processes.ProcessHandle): PromiseProcess => ({
  id: launched.id,
  pid: launched.pid,
  command: launched.command,
  info: (options) => run(runtime, launched.info, options?.signal),
  kill: (options) => callWith(runtime, options, (rest) => launched.kill(rest)),
  logs: (options) => iterate(runtime, launched.logs, options?.signal),
  wait: (options) => callWith(runtime, options, (rest) => launched.wait(rest)),
  waitForLog: (pattern, options) => callWith(runtime, options, (rest) => launched.waitForLog(pattern, rest))
})

/** The Promise facade over a sandbox's background processes. */
export const make = (runtime: Runtime<Services>, ps: Processes.ProcessesShape): PromiseProcesses => ({
  launch: (command, options) =>
    callWith(runtime, options, (rest) => ps.launch(command, rest)).then((launched) => processHandle(runtime, launched)),
  list: (options) => run(runtime, ps.list, options?.signal),
  get: (id, options) => run(runtime, ps.get(id), options?.signal),
  kill: (id, options) => callWith(runtime, options, (rest) => ps.kill(id, rest)),
  killAll: (options) => run(runtime, ps.killAll, options?.signal),
  logs: (id, options) => iterate(runtime, ps.logs(id), options?.signal),
  wait: (id, options) => callWith(runtime, options, (rest) => ps.wait(id, rest)),
  waitForLog: (id, pattern, options) => callWith(runtime, options, (rest) => ps.waitForLog(id, pattern, rest)),
  waitForPort: (port, options) => callWith(runtime, options, (rest) => ps.waitForPort(port, rest))
})
