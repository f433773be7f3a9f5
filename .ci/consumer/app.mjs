// The Promise facade from plain ESM: a local sandbox, a command, a binary file round trip, deletion.
// (Node 20 has no `await using` syntax; `Symbol.asyncDispose` is what it would call.)
import { Sandboxes } from "@effect-koyeb/platform-node"

const sandboxes = Sandboxes.client({ backend: "local" })
try {
  const sandbox = await sandboxes.create({ name: "consumer-esm" })
  try {
    const { stdout } = await sandbox.run("echo hello from $(uname -s)")
    if (stdout.trim() !== "hello from Linux") throw new Error(`unexpected output: ${stdout}`)
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    await sandbox.files.writeFile("/tmp/bytes.bin", bytes)
    const back = await sandbox.files.readFile("/tmp/bytes.bin")
    if (Buffer.compare(Buffer.from(back), Buffer.from(bytes)) !== 0) throw new Error("binary round trip differs")
    console.log(`esm: ${stdout.trim()}; 256 bytes identical`)
  } finally {
    await sandbox[Symbol.asyncDispose]()
  }
  const left = await sandboxes.list()
  if (left.length !== 0) throw new Error(`sandbox ${sandbox.info.id} was not deleted: ${JSON.stringify(left)}`)
  console.log(`esm: sandbox ${sandbox.info.id} deleted`)
} finally {
  await sandboxes.dispose()
}
