import * as Sandboxes from "@effect-koyeb/platform-node/Sandboxes"
import { assert, describe, it } from "@effect/vitest"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"

const local = { backend: "local", local: { isolation: "none" } } as const

/** Whether host process `pid` runs (local sandboxes without isolation share the host's PIDs); a zombie has exited. */
const alive = (pid: number): boolean => {
  try {
    return !/^\d+ \(.*\) Z/.test(Fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return false
  }
}

/** Polls (bounded) until `check` holds. */
const eventually = async (check: () => Promise<boolean> | boolean): Promise<boolean> => {
  for (let i = 0; i < 100; i++) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

const collect = async <A>(iterable: AsyncIterable<A>): Promise<Array<A>> => {
  const out: Array<A> = []
  for await (const item of iterable) out.push(item)
  return out
}

/** The inotify watches process `pid` holds. */
const inotifyWatches = (pid: string): number =>
  Fs.readdirSync(`/proc/${pid}/fdinfo`).reduce((count, fd) => {
    try {
      return count + Fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8").split("\n")
        .filter((line) => line.startsWith("inotify wd:")).length
    } catch {
      return count // closed meanwhile
    }
  }, 0)

describe("Sandboxes (Promise facade, local backend)", { timeout: 60_000 }, () => {
  it("files.watch: events after it resolves; break, close and abort stop the watch in the sandbox", async () => {
    await using sandbox = await Sandboxes.create({ ...local, name: "facade-watch" })
    // the executor inside holds the watches (it starts with the first call that needs it): the
    // sandbox's only node process
    await sandbox.processes.list()
    const executorPid = (await sandbox.run(
      `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = node ] && echo \${p#/proc/}; done; true`
    )).stdout.trim()
    assert.match(executorPid, /^\d+$/)
    const dir = `/tmp/watch-${Crypto.randomUUID()}`
    await sandbox.files.mkdir(`${dir}/a`, { recursive: true })
    const before = inotifyWatches(executorPid)

    const watch = await sandbox.files.watch(dir, { recursive: true })
    assert.strictEqual(inotifyWatches(executorPid), before + 2)
    await sandbox.run(`echo x > ${dir}/a/f && mv ${dir}/a/f ${dir}/g`)
    const seen: Array<string> = []
    for await (const event of watch) {
      if (event.kind === "modify") continue // a write may also be reported as a modify
      seen.push(event.kind === "rename" ? `rename ${event.from} ${event.path}` : `${event.kind} ${event.path}`)
      if (event.kind === "rename") break
    }
    assert.deepStrictEqual(seen, [`create ${dir}/a/f`, `rename ${dir}/a/f ${dir}/g`])
    assert.isTrue(await eventually(() => inotifyWatches(executorPid) === before), "break leaves watches")
    await watch.close() // idempotent

    // close() ends an iteration in progress
    const closed = await sandbox.files.watch(dir)
    const pending = collect(closed)
    await closed.close()
    assert.deepStrictEqual(await pending, [])
    assert.isTrue(await eventually(() => inotifyWatches(executorPid) === before), "close leaves watches")

    // an abort rejects the iteration with the signal's reason
    const controller = new AbortController()
    const aborted = await sandbox.files.watch(dir, { signal: controller.signal })
    const rejected = collect(aborted).then(() => undefined, (e: unknown) => e)
    controller.abort(new Error("stop watching"))
    assert.strictEqual(((await rejected) as Error).message, "stop watching")
    assert.isTrue(await eventually(() => inotifyWatches(executorPid) === before), "abort leaves watches")

    // a missing directory is a typed failure; the end of the directory ends the iteration
    const missing = await sandbox.files.watch(`${dir}/none`).then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(missing, "FileNotFound"))
    await using ending = await sandbox.files.watch(`${dir}/a`)
    await sandbox.run(`rm -rf ${dir}/a`)
    assert.deepStrictEqual((await collect(ending)).map((e) => `${e.kind} ${e.path}`), [`delete ${dir}/a`])
  })

  it("spawn: stdin, raw output, exit, kill; close stops a command that still runs", async () => {
    await using sandbox = await Sandboxes.create({ ...local, name: "facade-spawn" })
    const text = async (output: AsyncIterable<{ readonly data: Uint8Array }>) =>
      Buffer.concat((await collect(output)).map((chunk) => Buffer.from(chunk.data))).toString("utf8")

    const greeter = await sandbox.spawn("read name; printf 'hello %s' \"$name\"; cat >&2")
    await greeter.stdin.write("Ada\n")
    await greeter.stdin.write(new Uint8Array([0x6f, 0x6b]))
    await greeter.stdin.end()
    const [out, exit] = await Promise.all([text(greeter.output), greeter.wait()])
    assert.strictEqual(out.replace("ok", ""), "hello Ada")
    assert.include(out, "ok")
    assert.strictEqual(exit.exitCode, 0)

    const trapped = await sandbox.spawn("trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done")
    const first = await trapped.output[Symbol.asyncIterator]().next()
    assert.strictEqual(Buffer.from(first.value!.data).toString("utf8"), "ready\n")
    await trapped.kill()
    assert.strictEqual((await trapped.wait()).exitCode, 7)
    await trapped.close()

    const sleeper = await sandbox.spawn("echo $$; exec sleep 300")
    const pid = Number(Buffer.from((await sleeper.output[Symbol.asyncIterator]().next()).value!.data).toString("utf8"))
    assert.isTrue(alive(pid))
    await sleeper.close()
    assert.isTrue(await eventually(() => !alive(pid)), `sleep ${pid} still runs after close`)
  })

  it("create, run, stream, files, processes, logs; `await using` deletes the sandbox and stops the runtime", async () => {
    let pid = 0
    {
      await using sandbox = await Sandboxes.create({ ...local, name: "facade", env: { GREETING: "hi" } })
      assert.isString(sandbox.id)
      assert.strictEqual(sandbox.info.name, "facade")

      const result = await sandbox.run("echo \"$GREETING $X\"", { env: { X: "there" } })
      assert.strictEqual(result.stdout, "hi there\n")
      const failed = await sandbox.exec("echo no >&2; exit 4")
      assert.deepStrictEqual([failed.exitCode, failed.stderr], [4, "no\n"])

      const chunks = await collect(sandbox.stream("echo a; echo b >&2; echo c"))
      assert.deepStrictEqual(chunks.map((c) => `${c.stream}:${c.data}`).sort(), ["stderr:b", "stdout:a", "stdout:c"])
      const events = await collect(sandbox.streamEvents("echo x; exit 3"))
      assert.deepStrictEqual(events.map((e) => e._tag), ["OutputChunk", "CommandExit"])
      assert.strictEqual((events[1] as { exitCode: number }).exitCode, 3)

      const bytes = Crypto.randomBytes(200_000)
      await sandbox.files.mkdir("d/e", { recursive: true })
      await sandbox.files.writeFile("d/e/f.bin", bytes)
      assert.isTrue(Buffer.from(await sandbox.files.readFile("d/e/f.bin")).equals(bytes))
      async function* parts() {
        yield bytes.subarray(0, 1000)
        yield bytes.subarray(1000)
      }
      await sandbox.files.writeStream("d/g.bin", parts())
      const streamed = await collect(sandbox.files.readStream("d/g.bin"))
      assert.isTrue(Buffer.concat(streamed).equals(bytes))
      assert.deepStrictEqual([...(await sandbox.files.list("d"))].sort(), ["e", "g.bin"])
      assert.isTrue(await sandbox.files.isDir("d/e"))

      const proc = await sandbox.processes.launch("echo one; echo two >&2; echo three")
      const lines = await collect(proc.logs())
      assert.deepStrictEqual(lines.map((l) => `${l.stream}:${l.data}`).sort(), [
        "stderr:two",
        "stdout:one",
        "stdout:three"
      ])
      assert.strictEqual((await proc.wait()).status, "completed")

      const sleeper = await sandbox.processes.launch("sleep 300")
      pid = sleeper.pid
      assert.isTrue(alive(pid))
    }
    // Disposal deleted the sandbox, which killed its processes.
    assert.isTrue(await eventually(() => !alive(pid)))
  })

  it("abort: rejects with the signal's reason and stops the command in the sandbox", async () => {
    await using sandboxes = Sandboxes.client(local)
    await using sandbox = await sandboxes.create()
    const token = Crypto.randomBytes(6).toString("hex")

    const controller = new AbortController()
    const running = sandbox.run(`sleep 300 & echo $! > pid-${token}; wait`, { signal: controller.signal })
    assert.isTrue(await eventually(() => sandbox.files.exists(`pid-${token}`)))
    const pid = Number((await sandbox.files.readFileString(`pid-${token}`)).trim())
    assert.isTrue(alive(pid))
    controller.abort()
    const error = await running.then(() => undefined, (e: unknown) => e)
    assert.instanceOf(error, DOMException)
    assert.strictEqual((error as DOMException).name, "AbortError")
    // Our executor stops the command's group when the request's connection closes (`process-group-kill`).
    assert.isTrue(await eventually(() => !alive(pid)))

    // A stream: abort while iterating, and `break`.
    const streamAbort = new AbortController()
    const seen: Array<string> = []
    const streamed = (async () => {
      for await (
        const chunk of sandbox.stream(`echo started; sleep 300 & echo $! > spid-${token}; wait`, {
          signal: streamAbort.signal
        })
      ) {
        seen.push(chunk.data)
        if (chunk.data === "started") {
          await eventually(() => sandbox.files.exists(`spid-${token}`))
          streamAbort.abort(new Error("enough"))
        }
      }
    })()
    const streamError = await streamed.then(() => undefined, (e: unknown) => e)
    assert.strictEqual((streamError as Error).message, "enough")
    const spid = Number((await sandbox.files.readFileString(`spid-${token}`)).trim())
    assert.isTrue(await eventually(() => !alive(spid)))

    for await (const chunk of sandbox.stream(`echo go; sleep 300 & echo $! > bpid-${token}; wait`)) {
      if (chunk.data === "go") {
        await eventually(() => sandbox.files.exists(`bpid-${token}`))
        break
      }
    }
    const bpid = Number((await sandbox.files.readFileString(`bpid-${token}`)).trim())
    assert.isTrue(await eventually(() => !alive(bpid)))

    // An already aborted signal runs nothing.
    const aborted = AbortSignal.abort(new Error("before"))
    const before = await sandbox.run(`touch never-${token}`, { signal: aborted }).then(() => undefined, (e: Error) => e)
    assert.strictEqual(before?.message, "before")
    assert.isFalse(await sandbox.files.exists(`never-${token}`))
  })

  it("errors are Error subclasses that keep the tag and the fields", async () => {
    await using sandboxes = Sandboxes.client(local)
    await using sandbox = await sandboxes.create()

    const missing = await sandbox.files.readFile("no/such/file").then(() => undefined, (e: unknown) => e)
    assert.instanceOf(missing, Error)
    assert.instanceOf(missing, Sandboxes.SandboxFailure)
    assert.isTrue(Sandboxes.isSandboxFailure(missing, "FileNotFound"))
    if (Sandboxes.isSandboxFailure(missing, "FileNotFound")) {
      assert.strictEqual(missing._tag, "FileNotFound")
      assert.strictEqual(missing.name, "FileNotFound")
      assert.strictEqual(missing.path, "no/such/file")
      assert.strictEqual(missing.cause._tag, "FileNotFound")
      assert.strictEqual(missing.message, missing.cause.message)
    }

    const command = await sandbox.run("echo bad >&2; exit 9").then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(command, "CommandError"))
    if (Sandboxes.isSandboxFailure(command, "CommandError")) {
      assert.deepStrictEqual([command.exitCode, command.stderr], [9, "bad\n"])
    }
    assert.isFalse(Sandboxes.isSandboxFailure(command, "Timeout"))

    const streamFailure = await collect(sandbox.stream("echo x; exit 2")).then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(streamFailure, "CommandError"))

    const timeout = await sandbox.run("sleep 30", { timeout: "200 millis" }).then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(timeout, "Timeout"))

    const notFound = await sandboxes.fromId("nope").then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(notFound, "SandboxNotFound"))

    const port = await sandbox.exposePort(70_000).then(() => undefined, (e: unknown) => e)
    assert.isTrue(Sandboxes.isSandboxFailure(port, "InvalidArgument"))
  })

  it("a client lists its sandboxes; delete() deletes and disposal after it is a no-op", async () => {
    await using sandboxes = Sandboxes.client(local)
    const sandbox = await sandboxes.create({ name: "listed" })
    assert.deepStrictEqual((await sandboxes.list()).map((s) => s.id), [sandbox.id])
    const attached = await sandboxes.fromId(sandbox.id)
    assert.strictEqual((await attached.run("echo attached")).stdout, "attached\n")
    await attached[Symbol.asyncDispose]()
    assert.strictEqual((await sandboxes.list()).length, 1, "disposing an attached handle leaves the sandbox")
    await sandbox.delete()
    await sandbox[Symbol.asyncDispose]()
    assert.deepStrictEqual(await sandboxes.list(), [])
  })
})
