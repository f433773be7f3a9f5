// The same through require(), from a CommonJS module.
const { Sandboxes } = require("@effect-koyeb/platform-node")
const Assert = require("node:assert")

async function main() {
  const sandbox = await Sandboxes.create({ name: "consumer-cjs", backend: "local" })
  try {
    const { stdout } = await sandbox.run("echo hello from $(uname -s)")
    Assert.strictEqual(stdout.trim(), "hello from Linux")
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => 255 - i)
    await sandbox.files.writeFile("/tmp/bytes.bin", bytes)
    Assert.deepStrictEqual(Buffer.from(await sandbox.files.readFile("/tmp/bytes.bin")), Buffer.from(bytes))
    console.log(`cjs: ${stdout.trim()}; 256 bytes identical`)
  } finally {
    await sandbox[Symbol.asyncDispose]()
  }
  console.log(`cjs: sandbox ${sandbox.info.id} deleted`)
}
main().catch((error) => {
  console.error(error)
  process.exit(1)
})
