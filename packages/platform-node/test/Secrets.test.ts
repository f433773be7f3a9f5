/**
 * Secrets against the emulator over loopback: REST CRUD through the SDK's `Secrets`, values never
 * in a reply but the reveal's, `{{ secret.NAME }}` / `{{ VAR }}` resolved in env values and config
 * files as a command in the sandbox sees them, missing secrets refused at create and failing a
 * deployment when deleted before it starts; and the emulator's create options: the sandbox's own
 * program running before HEALTHY, config files with their permissions, instance types.
 */
import { ControlPlane } from "@effect-koyeb/core/ControlPlane"
import * as KoyebControlPlane from "@effect-koyeb/core/KoyebControlPlane"
import * as Sandbox from "@effect-koyeb/core/Sandbox"
import * as Secrets from "@effect-koyeb/core/Secrets"
import * as KoyebEmulator from "@effect-koyeb/platform-node/KoyebEmulator"
import * as LocalControlPlane from "@effect-koyeb/platform-node/LocalControlPlane"
import * as NodeSandbox from "@effect-koyeb/platform-node/NodeSandbox"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import { assert, describe, it, layer } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { runCli } from "./utils/cliBin.js"

const TOKEN = Redacted.make("secrets-token")
const fast = { pollInterval: "50 millis", timeout: "60 seconds" } as const

/** The control plane and `Secrets` of an emulator. */
const clients = Layer.unwrapEffect(
  Effect.map(KoyebEmulator.KoyebEmulator, (emulator) => {
    const options = { token: TOKEN, host: emulator.url, retry: { baseDelay: "10 millis" } } as const
    return Layer.merge(KoyebControlPlane.layer(options), Secrets.layerKoyeb(options))
  })
)

const envOf = (emulator: Layer.Layer<KoyebEmulator.KoyebEmulator, unknown>) =>
  clients.pipe(Layer.provideMerge(emulator), Layer.provideMerge(NodeHttpClient.layerUndici))

// Config files outside the sandbox's home and /tmp need bubblewrap (as on the local backend).
const Env = envOf(KoyebEmulator.layer({ token: TOKEN, isolation: "bubblewrap" }))

/** A raw authorized call to the emulator: status and body text. */
const raw = (method: "GET" | "POST", path: string, body?: unknown) =>
  Effect.gen(function*() {
    const emulator = yield* KoyebEmulator.KoyebEmulator
    let request = HttpClientRequest.make(method)(emulator.url + path).pipe(HttpClientRequest.bearerToken(TOKEN))
    if (body !== undefined) request = HttpClientRequest.bodyUnsafeJson(request, body)
    const response = yield* HttpClient.execute(request)
    return { status: response.status, text: yield* response.text }
  })

const unique = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`

describe("Secrets templates", () => {
  it("resolves secrets and variables one level deep and reports what is missing", () => {
    const secrets = new Map([["db", "pw"]])
    const resolved = Secrets.resolveTemplates(
      { A: "{{secret.db}}", B: "x-{{ A }}-{{ KOYEB_APP_NAME }}", C: "{{ B }}", D: "{{ not a ref }}" },
      [{ path: "/etc/f", content: "{{ secret.db }}:{{ B }}", permissions: "0600" }],
      { secrets, provided: { KOYEB_APP_NAME: "app" } }
    )
    assert.deepStrictEqual(
      resolved,
      Either.right({
        env: { A: "pw", B: "x-pw-app", C: "x-{{ A }}-{{ KOYEB_APP_NAME }}", D: "{{ not a ref }}" },
        files: [{ path: "/etc/f", content: "pw:x-pw-app", permissions: "0600" }]
      })
    )
    const missing = Secrets.resolveTemplates({ A: "{{ secret.nope }}", B: "{{ NOPE }}" }, [], { secrets })
    assert.isTrue(Either.isLeft(missing))
    if (Either.isLeft(missing)) {
      assert.strictEqual(
        Secrets.describeUnresolved(missing.left),
        "env.A refers to secret \"nope\", which does not exist; env.B refers to variable \"NOPE\", which is not defined"
      )
    }
    assert.strictEqual(Secrets.reference("db"), "{{ secret.db }}")
  })

  it.effect("the memory implementation keeps values by name and refuses duplicates", () =>
    Effect.gen(function*() {
      const memory = yield* Secrets.makeMemory
      const created = yield* memory.create({ name: "token", value: Redacted.make("v1") })
      assert.deepStrictEqual(yield* memory.values, new Map([["token", "v1"]]))
      const duplicate = yield* Effect.flip(memory.create({ name: "token", value: Redacted.make("v2") }))
      assert.strictEqual(duplicate._tag, "ApiError")
      yield* memory.update(created.id, Redacted.make("v2"))
      assert.strictEqual(Redacted.value(yield* memory.reveal(created.id)), "v2")
      yield* memory.delete(created.id)
      assert.strictEqual((yield* Effect.flip(memory.get(created.id)))._tag, "SecretNotFound")
    }))
})

layer(Env, { excludeTestServices: true, timeout: "90 seconds" })("Secrets against the emulator", (it) => {
  it.effect("create, get, find, list, reveal, update and delete through the SDK; values only in the reveal", () =>
    Effect.gen(function*() {
      const secrets = yield* Secrets.Secrets
      const name = unique("api-key")
      const value = "VALUE-CANARY-1"
      const created = yield* secrets.create({ name, value: Redacted.make(value) })
      assert.strictEqual(created.name, name)
      assert.strictEqual(created.type, "SIMPLE")
      assert.deepStrictEqual(yield* secrets.get(created.id), created)
      assert.deepStrictEqual(yield* secrets.findByName(name), Option.some(created))
      assert.isTrue(Option.isNone(yield* secrets.findByName(unique("absent"))))
      assert.isTrue((yield* secrets.list).some((s) => s.id === created.id))
      assert.strictEqual(Redacted.value(yield* secrets.reveal(created.id)), value)

      for (const path of ["/v1/secrets", `/v1/secrets/${created.id}`, `/v1/secrets?name=${name}`]) {
        const reply = yield* raw("GET", path)
        assert.strictEqual(reply.status, 200)
        assert.notInclude(reply.text, value)
        assert.include(reply.text, created.id)
      }

      const updated = yield* secrets.update(created.id, Redacted.make("VALUE-CANARY-2"))
      assert.strictEqual(updated.name, name)
      assert.strictEqual(Redacted.value(yield* secrets.reveal(created.id)), "VALUE-CANARY-2")

      const duplicate = yield* Effect.flip(secrets.create({ name, value: Redacted.make("x") }))
      assert.strictEqual(duplicate._tag === "ApiError" && duplicate.status, 409)
      const badName = yield* Effect.flip(secrets.create({ name: "no spaces", value: Redacted.make("x") }))
      assert.strictEqual(badName._tag === "InvalidArgument" && badName.argument, "name")

      yield* secrets.delete(created.id)
      assert.strictEqual((yield* Effect.flip(secrets.get(created.id)))._tag, "SecretNotFound")
      assert.strictEqual((yield* Effect.flip(secrets.reveal(created.id)))._tag, "SecretNotFound")
      yield* secrets.delete(created.id)
    }))

  it.effect("refuses what it does not store with Koyeb's field errors", () =>
    Effect.gen(function*() {
      const reply = yield* raw("POST", "/v1/secrets", { name: "", type: "REGISTRY", value: 1 })
      assert.strictEqual(reply.status, 400)
      assert.deepStrictEqual(JSON.parse(reply.text).fields.map((f: { field: string }) => f.field), [
        "name",
        "type",
        "value"
      ])
      assert.strictEqual((yield* raw("POST", "/v1/secrets/nope/reveal", {})).status, 404)
    }))

  it.scoped("resolves secrets and variables in env values and config files, as a command sees them", () =>
    Effect.gen(function*() {
      const secrets = yield* Secrets.Secrets
      const name = unique("db-password")
      const created = yield* secrets.create({ name, value: Redacted.make("p@ss w0rd") })
      const sandbox = yield* Sandbox.make({
        name: "secrets",
        env: { DB_PASSWORD: Secrets.reference(name), DB_URL: "postgres://app:{{ DB_PASSWORD }}@db/app" },
        configFiles: {
          "/srv/effect-koyeb-secrets/app.conf": {
            content: `password={{ secret.${name} }}\nurl={{DB_URL}}\napp={{ KOYEB_APP_NAME }}\n`,
            permissions: "0600"
          },
          "/tmp/plain.txt": "plain {{ DB_PASSWORD }}\n"
        },
        ...fast
      })
      const env = yield* sandbox.executor.run("printf '%s|%s\\n' \"$DB_PASSWORD\" \"$DB_URL\"")
      assert.strictEqual(env.stdout, "p@ss w0rd|postgres://app:p@ss w0rd@db/app\n")
      const file = yield* sandbox.executor.run(
        "cat /srv/effect-koyeb-secrets/app.conf /tmp/plain.txt; stat -c %a /srv/effect-koyeb-secrets/app.conf /tmp/plain.txt"
      )
      const lines = file.stdout.split("\n")
      assert.deepStrictEqual(lines.slice(0, 2), ["password=p@ss w0rd", "url=postgres://app:p@ss w0rd@db/app"])
      assert.match(lines[2]!, /^app=sandbox-app-secrets-/)
      assert.deepStrictEqual(lines.slice(3), ["plain p@ss w0rd", "600", "644", ""])

      // The deployment shows the templates, never the values.
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const state = yield* emulator.state
      const deployment = state.deployments.find((d) => d.serviceId === sandbox.info.id)!
      const reply = yield* raw("GET", `/v1/deployments/${deployment.id}`)
      assert.notInclude(reply.text, "p@ss w0rd")
      assert.include(reply.text, `{{ secret.${name} }}`)

      // A running sandbox keeps the value it started with.
      yield* secrets.delete(created.id)
      assert.strictEqual((yield* sandbox.executor.run("echo $DB_PASSWORD")).stdout, "p@ss w0rd\n")
    }))

  it.effect("a reference to a missing secret or variable is refused at create, naming it; nothing is left", () =>
    Effect.gen(function*() {
      const controlPlane = yield* ControlPlane
      const missing = unique("missing")
      const error = yield* Effect.flip(
        controlPlane.create({ name: "missing", env: { A: Secrets.reference(missing), B: "{{ UNDEFINED_VAR }}" } })
      )
      assert.strictEqual(error._tag, "ApiError")
      if (error._tag === "ApiError") {
        assert.strictEqual(error.status, 400)
        assert.include(error.detail, `env.A refers to secret "${missing}", which does not exist`)
        assert.include(error.detail, "env.B refers to variable \"UNDEFINED_VAR\", which is not defined")
      }
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const state = yield* emulator.state
      assert.isFalse(state.apps.some((a) => a.name.startsWith("sandbox-app-missing-")))
    }))

  it.scoped("the sandbox's own program (entrypoint, command, args) runs before HEALTHY, with the sandbox's env", () =>
    Effect.gen(function*() {
      const sandbox = yield* Sandbox.make({
        name: "main-program",
        env: { GREETING: "hello" },
        entrypoint: ["sh", "-c"],
        command: "echo \"$GREETING $0\" > \"$HOME/main-started\"; echo to-the-log; exec sleep 600",
        args: ["from-main"],
        instanceType: "micro",
        ...fast
      })
      // Started before the executor: it has run by the time the sandbox answers, or does within a second.
      const seen = yield* sandbox.executor.run(
        "for i in $(seq 50); do [ -s \"$HOME/main-started\" ] && break; sleep 0.02; done; cat \"$HOME/main-started\"; cat /tmp/effect-koyeb-main.log; pgrep -fx 'sleep 600' | wc -l"
      )
      assert.strictEqual(seen.stdout, "hello from-main\nto-the-log\n1\n")
    }))

  it.effect("an unknown instance type or an empty program is refused at create, naming the field", () =>
    Effect.gen(function*() {
      const controlPlane = yield* ControlPlane
      const error = yield* Effect.flip(controlPlane.create({ name: "bad-type", instanceType: "mega-gpu" }))
      assert.strictEqual(error._tag === "ApiError" && error.status, 400)
      assert.include(error.message, "definition.instance_types[0].type")
      const empty = yield* Effect.flip(controlPlane.create({ name: "bad-main", entrypoint: [""] }))
      assert.include(empty.message, "definition.docker.entrypoint")
    }))
})

/** Runs the CLI against an emulator with `stdin` as its input: exit code and output. */
const cli = (url: string, args: ReadonlyArray<string>, stdin = "") =>
  runCli(args, { KOYEB_API_HOST: url, KOYEB_API_TOKEN: Redacted.value(TOKEN) }, stdin)

layer(Env, { excludeTestServices: true, timeout: "60 seconds" })("effect-koyeb secrets", (it) => {
  // Two runs only (`list` prints what `Secrets.list` returns).
  it.effect("create (value from stdin) and delete", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const name = unique("cli-secret")
      const created = yield* cli(emulator.url, ["secrets", "create", name], "CLI-VALUE\n")
      assert.strictEqual(created.code, 0, created.stderr)
      const secrets = yield* Secrets.Secrets
      const found = yield* secrets.findByName(name)
      assert.isTrue(Option.isSome(found))
      if (Option.isSome(found)) {
        assert.strictEqual(created.stdout, `${found.value.id}\n`)
        assert.strictEqual(Redacted.value(yield* secrets.reveal(found.value.id)), "CLI-VALUE")
      }
      const deleted = yield* cli(emulator.url, ["secrets", "delete", name])
      assert.strictEqual(deleted.stdout, `${name}\n`)
      assert.isTrue(Option.isNone(yield* secrets.findByName(name)))
    }))

  it.effect("NodeSandbox.layerFromEnv with KOYEB_API_TOKEN provides Koyeb's Secrets", () =>
    Effect.gen(function*() {
      const emulator = yield* KoyebEmulator.KoyebEmulator
      const name = unique("env-secret")
      const fromEnv = Effect.flatMap(Secrets.Secrets, (secrets) =>
        secrets.create({ name, value: Redacted.make("from env") })).pipe(
          Effect.provide(NodeSandbox.layerFromEnv),
          Effect.withConfigProvider(ConfigProvider.fromMap(
            new Map([["KOYEB_API_TOKEN", Redacted.value(TOKEN)], ["KOYEB_API_HOST", emulator.url]])
          ))
        )
      const created = yield* fromEnv
      // the emulator's own client sees it: the layer talked to the emulator, not to a memory store
      const secrets = yield* Secrets.Secrets
      assert.strictEqual(Redacted.value(yield* secrets.reveal(created.id)), "from env")
      yield* secrets.delete(created.id)
    }))
})

describe("Failures when a deployment starts", () => {
  const Slow = envOf(KoyebEmulator.layer({ token: TOKEN, isolation: "none", stepDelay: "400 millis" }))
  layer(Slow, { excludeTestServices: true, timeout: "60 seconds" })("slow emulator", (it) => {
    it.effect("a secret deleted before the start fails the deployment, the reason as its message", () =>
      Effect.gen(function*() {
        const secrets = yield* Secrets.Secrets
        const controlPlane = yield* ControlPlane
        const name = unique("short-lived")
        const secret = yield* secrets.create({ name, value: Redacted.make("v") })
        const sandbox = yield* controlPlane.create({ name: "gone", env: { A: Secrets.reference(name) } })
        yield* secrets.delete(secret.id)
        const error = yield* Effect.flip(controlPlane.waitReady(sandbox.info.id, fast))
        yield* controlPlane.delete(sandbox.info)
        assert.strictEqual(error._tag, "DeploymentFailed")
        assert.include(error.message, `env.A refers to secret "${name}", which does not exist`)
      }))

    it.effect("config files without isolation fail the deployment, saying why", () =>
      Effect.gen(function*() {
        const controlPlane = yield* ControlPlane
        const sandbox = yield* controlPlane.create({ name: "no-isolation", configFiles: { "/tmp/a.conf": "a" } })
        const error = yield* Effect.flip(controlPlane.waitReady(sandbox.info.id, fast))
        yield* controlPlane.delete(sandbox.info)
        assert.strictEqual(error._tag, "DeploymentFailed")
        assert.include(error.message, "config files need bubblewrap isolation")
      }))
  })
})

describe("Secrets on the local backend", () => {
  // The program and the control plane share one Secrets store.
  const Local = LocalControlPlane.layer({ isolation: "none" }).pipe(Layer.provideMerge(Secrets.layerMemory))
  layer(Local, { excludeTestServices: true, timeout: "60 seconds" })("with a Secrets service", (it) => {
    it.scoped("resolves references in env values; a missing one is an InvalidArgument naming env", () =>
      Effect.gen(function*() {
        const secrets = yield* Secrets.Secrets
        const name = unique("local-token")
        yield* secrets.create({ name, value: Redacted.make("local value") })
        const sandbox = yield* Sandbox.make({
          name: "local-secrets",
          env: { TOKEN: Secrets.reference(name), HEADER: "Bearer {{ TOKEN }}" },
          idleTimeout: 0
        })
        assert.strictEqual(
          (yield* sandbox.executor.run("printf '%s|%s\\n' \"$TOKEN\" \"$HEADER\"")).stdout,
          "local value|Bearer local value\n"
        )
        const missing = yield* Effect.flip(
          Sandbox.make({ name: "local-missing", env: { TOKEN: Secrets.reference(unique("absent")) } })
        )
        assert.strictEqual(missing._tag === "InvalidArgument" && missing.argument, "env")
      }))
  })

  // No KOYEB_API_TOKEN: the local backend and the memory store it resolves references against.
  layer(NodeSandbox.layerFromEnv.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map())))), {
    excludeTestServices: true,
    timeout: "60 seconds"
  })("NodeSandbox.layerFromEnv", (it) => {
    it.scoped("provides the Secrets the local backend reads", () =>
      Effect.gen(function*() {
        const name = unique("env-local")
        yield* (yield* Secrets.Secrets).create({ name, value: Redacted.make("shared") })
        const sandbox = yield* Sandbox.make({ name: "env-secrets", env: { TOKEN: Secrets.reference(name) } })
        assert.strictEqual((yield* sandbox.executor.run("echo \"$TOKEN\"")).stdout, "shared\n")
      }))
  })

  // Its own layer: @effect/vitest's `layer` rebinds the shared `it` to the last layer's services.
  layer(LocalControlPlane.layer({ isolation: "none" }), { excludeTestServices: true })("without one", (it) => {
    it.scoped("a secret reference is an InvalidArgument", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Sandbox.make({ name: "no-secrets", env: { TOKEN: Secrets.reference("any") } }))
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "env")
        assert.include(error.message, "no Secrets service")
      }))
  })
})
