/**
 * The emulator over HTTPS (`tls: true`): a CA generated with openssl, the REST API and the gateway
 * served over TLS, app domains under `*.koyeb.localhost` carrying the port, reached as Koyeb's JS SDK
 * does (`https://<domain>/koyeb-sandbox/<endpoint>`, Bearer secret, no routing key) with the CA
 * trusted and a lookup that answers loopback; and a plain `KoyebControlPlane` over HTTPS.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Https from "node:https"
import type * as Net from "node:net"
import { firstLine } from "./utils/childOutput.js"
import { cliBin } from "./utils/cliBin.js"

const TOKEN = "tls-token"
const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const

/** Every name resolves to 127.0.0.1 (`*.localhost` does not resolve through plain glibc). */
const loopback: Net.LookupFunction = (_hostname, options, callback) => {
  if ((options as { all?: boolean }).all === true) {
    ;(callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [{
      address: "127.0.0.1",
      family: 4
    }])
  } else {
    callback(null, "127.0.0.1", 4)
  }
}

/** A request as Koyeb's JS SDK makes it, with the emulator's CA trusted. */
const request = (url: string, ca: string, init: { method?: string; headers?: Record<string, string>; body?: string }) =>
  Effect.async<{ status: number; body: string }, Error>((resume) => {
    const req = Https.request(
      url,
      { method: init.method ?? "GET", headers: init.headers, ca, lookup: loopback },
      (res) => {
        let body = ""
        res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk))
        res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, body })))
      }
    )
    req.on("error", (error) => resume(Effect.fail(error)))
    req.end(init.body)
    return Effect.sync(() => req.destroy())
  })

describe("KoyebEmulator with tls", () => {
  it.scopedLive(
    "serves the API and the gateway over HTTPS; a client reaches https://<domain>/koyeb-sandbox/",
    () =>
      Effect.gen(function*() {
        const emu = yield* KoyebEmulator.make({ token: Redacted.make(TOKEN), tls: true, stepDelay: "5 millis" })
        assert.match(emu.url, /^https:\/\/127\.0\.0\.1:\d+$/)
        const caPath = emu.caPath!
        const ca = Fs.readFileSync(caPath, "utf8")
        assert.include(ca, "BEGIN CERTIFICATE")

        // A plain KoyebControlPlane, over an HTTPS agent that trusts the CA.
        const https = NodeHttpClient.layerWithoutAgent.pipe(Layer.provide(NodeHttpClient.makeAgentLayer({ ca })))
        const controlPlane = KoyebControlPlane.layer({ token: Redacted.make(TOKEN), host: emu.url }).pipe(
          Layer.provide(https)
        )
        yield* Effect.gen(function*() {
          const cp = yield* ControlPlane
          const { info } = yield* cp.create({ name: "tls-box", idleTimeout: 0 })
          const endpoint = yield* cp.waitReady(info.id, fast)
          assert.isTrue(endpoint.url.startsWith(`${emu.url}/koyeb-sandbox`))
          const client = yield* cp.connect(endpoint)
          assert.strictEqual((yield* client.run({ cmd: "echo through-the-gateway" })).stdout, "through-the-gateway\n")

          // As Koyeb's JS SDK does: the app's first domain, the secret as Bearer token, no routing key.
          const app = yield* request(`${emu.url}/v1/apps/${info.appId}`, ca, {
            headers: { authorization: `Bearer ${TOKEN}` }
          })
          const domain = JSON.parse(app.body).app.domains[0].name as string
          assert.match(domain, /^[a-z0-9-]+\.koyeb\.localhost:\d+$/)
          const ran = yield* request(`https://${domain}/koyeb-sandbox/run`, ca, {
            method: "POST",
            headers: { authorization: `Bearer ${Redacted.value(endpoint.secret)}`, "content-type": "application/json" },
            body: JSON.stringify({ cmd: "echo hello-js-sdk" })
          })
          assert.strictEqual(ran.status, 200)
          assert.strictEqual(JSON.parse(ran.body).stdout, "hello-js-sdk\n")
          // The CA is what makes it trusted.
          const untrusted = yield* Effect.flip(request(`https://${domain}/koyeb-sandbox/health`, "", {}))
          assert.match(untrusted.message, /certificate/i)
          yield* cp.delete(info)
        }).pipe(Effect.provide(controlPlane))
      }),
    { timeout: 60_000 }
  )

  it.scopedLive(
    "effect-koyeb emulator --tls prints the CA path, serves HTTPS, and removes the CA when stopped",
    () =>
      Effect.gen(function*() {
        const child = ChildProcess.spawn(process.execPath, [
          cliBin,
          "emulator",
          "--tls",
          "--token",
          TOKEN
        ], {
          stdio: ["ignore", "pipe", "pipe"]
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
        const exited = Effect.async<number | null>((resume) => {
          if (child.exitCode !== null) return resume(Effect.succeed(child.exitCode))
          child.once("exit", (code) => resume(Effect.succeed(code)))
        })
        const announced = JSON.parse(yield* firstLine(child, "effect-koyeb emulator --tls"))
        assert.match(announced.url, /^https:\/\/127\.0\.0\.1:\d+$/)
        const ca = Fs.readFileSync(announced.ca, "utf8")
        const apps = yield* request(`${announced.url}/v1/apps`, ca, { headers: { authorization: `Bearer ${TOKEN}` } })
        assert.strictEqual(apps.status, 200)
        child.kill("SIGINT")
        assert.strictEqual(yield* exited, 130)
        assert.isFalse(Fs.existsSync(announced.ca))
      }),
    { timeout: 30_000 }
  )

  it.scopedLive("removes the CA with the scope", () =>
    Effect.gen(function*() {
      const caPath = yield* Effect.scoped(
        Effect.map(KoyebEmulator.make({ token: Redacted.make(TOKEN), tls: true }), (emu) => emu.caPath!)
      )
      assert.isFalse(Fs.existsSync(caPath))
    }))

  it.scopedLive("fails with KoyebEmulatorError naming openssl when it is missing", () =>
    Effect.gen(function*() {
      const saved = process.env.PATH
      const error = yield* Effect.acquireUseRelease(
        Effect.sync(() => (process.env.PATH = "/nonexistent")),
        () => Effect.flip(KoyebEmulator.make({ token: Redacted.make(TOKEN), tls: true })),
        () => Effect.sync(() => (process.env.PATH = saved))
      )
      assert.strictEqual(error._tag, "KoyebEmulatorError")
      assert.include(error.message, "openssl")
    }))
})
