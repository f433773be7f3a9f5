import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { validateCreateApp, validateCreateService, validateUpdateService } from "../src/internal/emulator/validation.js"

const validators: Record<
  "app" | "service" | "update",
  (body: unknown) => Either.Either<unknown, ReadonlyArray<{ readonly field: string; readonly description: string }>>
> = { app: validateCreateApp, service: validateCreateService, update: validateUpdateService }

const fields = (kind: keyof typeof validators, body: unknown) => {
  const result = validators[kind](body)
  return Either.isLeft(result) ? result.left : assert.fail("expected a validation error")
}

// Bodies and the exact `fields` Koyeb-style replies, in order, as the emulator has always reported them.
const cases: ReadonlyArray<{
  readonly kind: keyof typeof validators
  readonly name: string
  readonly body: unknown
  readonly fields: ReadonlyArray<{ readonly field: string; readonly description: string }>
}> = [
  {
    "kind": "service",
    "name": "not an object",
    "body": [1, 2],
    "fields": [{ "field": "body", "description": "must be a JSON object" }]
  },
  {
    "kind": "service",
    "name": "items of optional lists, not-object items, env first violation",
    "body": {
      "app_id": "",
      "definition": {
        "name": "demo",
        "type": "SANDBOX",
        "docker": { "image": "koyeb/sandbox" },
        "ports": [5, { "port": "3030", "protocol": "http" }],
        "env": [{ "key": "A", "secret": "ref", "value": 1 }, 7, { "key": "SANDBOX_SECRET", "value": "s" }],
        "routes": [{ "port": 3030, "path": "x" }, "r"],
        "instance_types": [{ "type": "" }],
        "regions": "na",
        "scalings": [{ "min": 2, "max": 1 }, { "min": "x" }]
      },
      "life_cycle": { "delete_after_create": "10", "delete_after_sleep": 1.5 }
    },
    "fields": [
      { "field": "app_id", "description": "is required" },
      { "field": "definition.ports[0].port", "description": "must be an integer between 1 and 65535" },
      { "field": "definition.ports[0].protocol", "description": "must be one of http, http2, tcp" },
      { "field": "definition.routes[0].path", "description": "must start with /" },
      { "field": "definition.routes[1].port", "description": "must be one of the declared ports" },
      { "field": "definition.routes[1].path", "description": "must start with /" },
      { "field": "definition.env[0].value", "description": "must be a string" },
      { "field": "definition.env[1].key", "description": "must be a valid environment variable name" },
      { "field": "definition.regions", "description": "must be a list" },
      { "field": "definition.instance_types[0].type", "description": "must be a non-empty instance type" },
      { "field": "definition.scalings[0]", "description": "min and max must be integers with 0 <= min <= max" },
      { "field": "definition.scalings[1]", "description": "min and max must be integers with 0 <= min <= max" },
      { "field": "life_cycle.delete_after_sleep", "description": "must be a non-negative integer number of seconds" }
    ]
  },
  {
    "kind": "service",
    "name": "create options: docker program, secret references, mesh, config files, unknown fields",
    "body": {
      "app_id": "a",
      "definition": {
        "name": "demo",
        "type": "SANDBOX",
        "docker": { "image": "koyeb/sandbox", "entrypoint": "sh", "command": 1 },
        "ports": [{ "port": 3030, "protocol": "http" }],
        "env": [{ "key": "SANDBOX_SECRET", "value": "s" }, { "key": "B", "secret": "bad name" }],
        "mesh": "ON",
        "config_files": [{ "path": "etc/x", "content": "c" }, {
          "path": "/etc/../x",
          "permissions": "999",
          "content": 2
        }],
        "health_checks": [{}],
        "volumes": null
      }
    },
    "fields": [
      { "field": "definition.docker.entrypoint", "description": "must be a list of strings" },
      { "field": "definition.docker.command", "description": "must be a string" },
      { "field": "definition.env[1].secret", "description": "must be the name of a secret" },
      {
        "field": "definition.mesh",
        "description": "must be DEPLOYMENT_MESH_AUTO, DEPLOYMENT_MESH_ENABLED or DEPLOYMENT_MESH_DISABLED"
      },
      { "field": "definition.config_files[0].path", "description": "must be an absolute file path without .." },
      { "field": "definition.config_files[1].path", "description": "must be an absolute file path without .." },
      { "field": "definition.config_files[1].permissions", "description": "must be octal permissions such as 0644" },
      { "field": "definition.config_files[1].content", "description": "must be a string" },
      { "field": "definition.health_checks", "description": "is not supported by the emulator" }
    ]
  },
  {
    "kind": "service",
    "name": "3030 missing, undeclared routes and proxy ports",
    "body": {
      "app_id": "a",
      "definition": {
        "name": "demo",
        "type": "SANDBOX",
        "docker": { "image": "koyeb/sandbox" },
        "ports": [{ "port": 8080, "protocol": "tcp" }],
        "env": null,
        "routes": [{ "port": 3030, "path": "/" }],
        "proxy_ports": [{ "port": 3031, "protocol": "udp" }]
      }
    },
    "fields": [
      { "field": "definition.ports", "description": "a sandbox must expose port 3030 (the sandbox executor)" },
      { "field": "definition.routes[0].port", "description": "must be one of the declared ports" },
      { "field": "definition.proxy_ports[0].port", "description": "must be one of the declared ports" },
      { "field": "definition.proxy_ports[0].protocol", "description": "must be tcp" },
      { "field": "definition.env", "description": "a SANDBOX service needs a non-empty SANDBOX_SECRET" }
    ]
  },
  {
    "kind": "service",
    "name": "3030 not required while an earlier field is invalid",
    "body": {
      "app_id": "a",
      "definition": {
        "name": "Bad",
        "type": "SANDBOX",
        "docker": [],
        "ports": [{ "port": 8080, "protocol": "http" }],
        "env": {}
      },
      "life_cycle": []
    },
    "fields": [
      {
        "field": "definition.name",
        "description": "must be 1 to 63 lowercase letters, digits or dashes, starting and ending with a letter or digit"
      },
      { "field": "definition.docker", "description": "is required (the emulator runs docker definitions only)" },
      { "field": "definition.env", "description": "must be a list of {key, value}" },
      { "field": "life_cycle", "description": "must be an object" }
    ]
  },
  {
    "kind": "update",
    "name": "update body",
    "body": { "definition": null, "life_cycle": { "delete_after_sleep": -1 }, "save_only": "yes" },
    "fields": [{ "field": "definition", "description": "is required and must be an object" }, {
      "field": "life_cycle.delete_after_sleep",
      "description": "must be a non-negative integer number of seconds"
    }, { "field": "save_only", "description": "must be a boolean" }]
  },
  {
    "kind": "app",
    "name": "app body",
    "body": {
      "name": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "life_cycle": { "delete_when_empty": "true" }
    },
    "fields": [{
      "field": "name",
      "description": "must be 1 to 63 lowercase letters, digits or dashes, starting and ending with a letter or digit"
    }, { "field": "life_cycle.delete_when_empty", "description": "must be a boolean" }]
  }
]

describe("KoyebEmulator request validation", () => {
  for (const c of cases) {
    it(c.name, () => {
      assert.deepStrictEqual(fields(c.kind, c.body), c.fields)
    })
  }

  it("decodes a valid definition: secret apart, other variables, TCP proxy, life cycle in seconds", () => {
    const definition = {
      name: "demo",
      type: "SANDBOX",
      docker: { image: "koyeb/sandbox", privileged: null },
      ports: [{ port: "3030", protocol: "http" }, { port: 3031, protocol: "tcp" }],
      proxy_ports: [{ port: 3031, protocol: "tcp" }],
      env: [{ key: "A", value: null }, { key: "SANDBOX_SECRET", value: "s" }, { key: "B", value: "b", secret: "" }],
      scalings: [{ min: 0, max: 1, targets: [{ sleep_idle_delay: { deep_sleep_value: 300 } }] }]
    }
    const result = validateCreateService({
      app_id: "app",
      definition,
      life_cycle: { delete_after_create: "60", delete_after_sleep: null }
    })
    assert.deepStrictEqual(
      result,
      Either.right({
        appId: "app",
        definition: {
          raw: definition,
          name: "demo",
          secret: "s",
          env: { A: "", B: "b" },
          tcpProxy: true,
          entrypoint: undefined,
          command: undefined,
          args: undefined,
          configFiles: [],
          instanceType: undefined
        },
        lifeCycle: { delete_after_create: 60 }
      })
    )
  })
})
