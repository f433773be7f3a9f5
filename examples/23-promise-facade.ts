/**
 * The Promise facade, for code that does not use Effect at all: `await using` deletes the
 * sandbox when the block ends (also on a thrown error), streams are async iterables (`break`
 * stops the command in the sandbox), every call takes an `AbortSignal`, and effect-koyeb's typed
 * errors arrive as `SandboxFailure`s with their `_tag` and fields.
 */
import { Sandboxes } from "@effect-koyeb/platform-node"

async function main() {
  // Koyeb when KOYEB_API_TOKEN is set, else this machine (`backend: "env"`, the default).
  await using sandbox = await Sandboxes.create({ name: "example-promise" })
  console.log(`created ${sandbox.info.id}`)

  const result = await sandbox.run("echo 'Hello from plain async code'")
  console.log(result.stdout.trim())

  for await (const chunk of sandbox.stream("for i in 1 2 3; do echo \"line $i\"; sleep 0.05; done")) {
    console.log(`[${chunk.stream}] ${chunk.data}`)
  }

  await sandbox.files.writeFile("/tmp/data.bin", new Uint8Array([0, 1, 2, 254, 255]))
  console.log(`bytes back: ${Array.from(await sandbox.files.readFile("/tmp/data.bin")).join(",")}`)

  // Typed failures: check the tag, read the fields.
  try {
    await sandbox.run("exit 7")
  } catch (error) {
    if (Sandboxes.isSandboxFailure(error, "CommandError")) console.log(`CommandError, exit code ${error.exitCode}`)
    else throw error
  }

  // Cancellation: the signal stops the command in the sandbox.
  const aborted = await sandbox.run("sleep 30", { signal: AbortSignal.timeout(200) }).then(
    () => "finished?!",
    (error: unknown) => `aborted (${error instanceof Error ? error.name : String(error)})`
  )
  console.log(`sleep 30 with a 200 ms signal: ${aborted}`)
  // Here `sandbox` goes out of scope: it is disposed, so the sandbox is deleted.
}

main().then(
  () => console.log("done, sandbox deleted"),
  (error: unknown) => {
    console.error("failed:", error)
    process.exitCode = 1
  }
)
