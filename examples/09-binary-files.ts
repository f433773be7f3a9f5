/**
 * Binary files: bytes round-trip exactly, including bytes that are not valid UTF-8 (the stock
 * executor's file endpoints are text-only, so the SDK moves bytes as base64 under the hood; an
 * executor advertising `binary-files`, like the local backend's, takes them as raw HTTP bodies).
 * Large payloads are streamed in chunks: `writeStream` / `readStream` never hold the whole file.
 */
import * as Executor from "@effect-koyeb/core/Executor"
import * as Filesystem from "@effect-koyeb/core/Filesystem"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Stream } from "effect"
import * as Crypto from "node:crypto"

const sha256 = (bytes: Uint8Array) => Crypto.createHash("sha256").update(bytes).digest("hex")

const program = Effect.gen(function*() {
  const fs = yield* Filesystem.Filesystem
  const executor = yield* Executor.Executor

  // Every byte value, then random bytes.
  const small = Uint8Array.from({ length: 256 }, (_, i) => i)
  yield* fs.writeFile("/tmp/all-bytes.bin", small)
  const back = yield* fs.readFile("/tmp/all-bytes.bin")
  yield* Console.log(`256 byte values: ${sha256(back) === sha256(small) ? "identical" : "DIFFERENT"}`)

  // 2 MiB of random bytes, streamed in 64 KiB pieces.
  const big = Crypto.randomBytes(2 * 1024 * 1024)
  const pieces = Stream.range(0, big.length / 65536 - 1).pipe(
    Stream.map((i) => new Uint8Array(big.subarray(i * 65536, (i + 1) * 65536)))
  )
  yield* fs.writeStream("/tmp/random.bin", pieces)

  // The sandbox agrees on the checksum...
  const remote = yield* executor.run("sha256sum /tmp/random.bin")
  yield* Console.log(`sha256 in sandbox: ${remote.stdout.split(" ")[0] === sha256(big) ? "matches" : "DIFFERS"}`)

  // ...and so does reading it back as a stream.
  const received = yield* fs.readStream("/tmp/random.bin").pipe(
    Stream.runFold(Crypto.createHash("sha256"), (hash, chunk) => hash.update(chunk))
  )
  yield* Console.log(`2 MiB round trip: ${received.digest("hex") === sha256(big) ? "identical" : "DIFFERENT"}`)
})

program.pipe(
  Effect.provide(Sandbox.layer({ name: "example-binary" }).pipe(Layer.provide(NodeSandbox.layerFromEnv))),
  NodeRuntime.runMain
)
