/**
 * The Koyeb REST API as the SDK sees it on the wire: the schemas of the replies it reads (apps,
 * services, deployments, error bodies) and the constants of a sandbox service (ports, secret
 * variable, terminal deployment statuses). Shared by `KoyebControlPlane` and the Koyeb emulator.
 *
 * Only the fields the SDK reads are declared; unknown fields are ignored when decoding. `int64`
 * fields arrive as JSON numbers and `uint64` fields as numeric strings, so both are accepted.
 *
 * @since 0.2.0
 */
import * as Schema from "effect/Schema"

/**
 * Port of the executor API inside the sandbox (routed at `/koyeb-sandbox/`).
 *
 * @since 0.2.0
 * @category constants
 */
export const EXECUTOR_PORT = 3030

/**
 * Port of the executor's TCP forwarder (routed at `/`, optionally published as a TCP proxy).
 *
 * @since 0.2.0
 * @category constants
 */
export const PROXY_PORT = 3031

/**
 * The environment variable that carries the executor's bearer secret.
 *
 * @since 0.2.0
 * @category constants
 */
export const SECRET_ENV = "SANDBOX_SECRET"

/**
 * Deployment statuses after which a sandbox will never become ready.
 *
 * @since 0.2.0
 * @category constants
 */
export const TERMINAL_STATUSES: ReadonlySet<string> = new Set(["ERROR", "ERRORING", "CANCELED", "STOPPED"])

// int64 fields are JSON numbers, uint64 fields numeric strings: accept both.
const Int = Schema.Union(Schema.Number, Schema.NumberFromString)
const optionalString = Schema.optional(Schema.NullOr(Schema.String))

/**
 * A Koyeb error body: `{status, code, message, fields?}` (or a `google.rpc.Status`).
 *
 * @since 0.2.0
 * @category schemas
 */
export const ErrorBody = Schema.Struct({
  status: Schema.optional(Int),
  code: Schema.optional(Schema.Union(Schema.String, Schema.Number)),
  message: Schema.optional(Schema.String),
  fields: Schema.optional(Schema.Array(Schema.Struct({
    field: Schema.optional(Schema.String),
    description: Schema.optional(Schema.String)
  })))
})
/**
 * @see ErrorBody
 * @since 0.2.0
 * @category models
 */
export type ErrorBody = typeof ErrorBody.Type

/**
 * A `ServiceLifeCycle`: deletion delays in seconds, 0 meaning disabled.
 *
 * @since 0.2.0
 * @category schemas
 */
export const LifeCycle = Schema.Struct({
  delete_after_create: Schema.optional(Int),
  delete_after_sleep: Schema.optional(Int)
})
/**
 * @see LifeCycle
 * @since 0.2.0
 * @category models
 */
export type LifeCycle = typeof LifeCycle.Type

/**
 * An `App` (the fields the SDK reads).
 *
 * @since 0.2.0
 * @category schemas
 */
export const App = Schema.Struct({
  id: Schema.String,
  name: Schema.optional(Schema.String),
  domains: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({ name: Schema.String }))))
})
/**
 * @see App
 * @since 0.2.0
 * @category models
 */
export type App = typeof App.Type

/**
 * The `{app}` reply of create app and get app.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AppReply = Schema.Struct({ app: App })

/**
 * A `ListAppsReply` (the fields the SDK reads).
 *
 * @since 0.2.0
 * @category schemas
 */
export const AppList = Schema.Struct({ apps: Schema.optional(Schema.NullOr(Schema.Array(App))) })

/**
 * A `Service` or `ServiceListItem` (the fields the SDK reads).
 *
 * @since 0.2.0
 * @category schemas
 */
export const Service = Schema.Struct({
  id: Schema.String,
  app_id: Schema.String,
  name: Schema.optional(Schema.String),
  created_at: optionalString,
  active_deployment_id: optionalString,
  latest_deployment_id: optionalString,
  life_cycle: Schema.optional(Schema.NullOr(LifeCycle))
})
/**
 * @see Service
 * @since 0.2.0
 * @category models
 */
export type Service = typeof Service.Type

/**
 * The `{service}` reply of create service and get service.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ServiceReply = Schema.Struct({ service: Service })

/**
 * A `ListServicesReply`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ServiceList = Schema.Struct({
  services: Schema.optional(Schema.NullOr(Schema.Array(Service))),
  has_next: Schema.optional(Schema.Boolean)
})

/**
 * The parts of a `DeploymentDefinition` the SDK reads back.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DefinitionView = Schema.Struct({
  name: Schema.optional(Schema.String),
  regions: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  instance_types: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({ type: Schema.String })))),
  docker: Schema.optional(Schema.NullOr(Schema.Struct({ image: Schema.optional(Schema.String) }))),
  env: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    key: Schema.optional(Schema.String),
    value: Schema.optional(Schema.NullOr(Schema.String))
  })))),
  scalings: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
    min: Schema.optional(Schema.NullOr(Int)),
    targets: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
      sleep_idle_delay: Schema.optional(Schema.NullOr(Schema.Struct({
        light_sleep_value: Schema.optional(Schema.NullOr(Int)),
        deep_sleep_value: Schema.optional(Schema.NullOr(Int))
      })))
    }))))
  }))))
})
/**
 * @see DefinitionView
 * @since 0.2.0
 * @category models
 */
export type DefinitionView = typeof DefinitionView.Type

/**
 * Seconds without inbound traffic after which a service of this definition goes to deep sleep:
 * the `deep_sleep_value` of a scaling that may scale to zero (`min` 0); 0 when it never sleeps.
 *
 * @since 0.2.0
 * @category getters
 */
export const deepSleepSeconds = (definition: DefinitionView): number => {
  for (const scaling of definition.scalings ?? []) {
    if ((scaling.min ?? 0) !== 0) continue
    for (const target of scaling.targets ?? []) {
      const seconds = target.sleep_idle_delay?.deep_sleep_value ?? 0
      if (seconds > 0) return seconds
    }
  }
  return 0
}

/**
 * A `Deployment` (the fields the SDK reads). `status` is an open string so that a new status
 * does not break polling; `definition` is kept raw so that an update can send it back unchanged.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Deployment = Schema.Struct({
  id: Schema.String,
  status: Schema.optional(Schema.String),
  updated_at: optionalString,
  messages: Schema.optional(Schema.NullOr(Schema.Array(Schema.String))),
  metadata: Schema.optional(Schema.NullOr(Schema.Struct({
    sandbox: Schema.optional(Schema.NullOr(Schema.Struct({
      public_url: optionalString,
      routing_key: optionalString
    }))),
    proxy_ports: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({
      host: optionalString,
      public_port: Schema.optional(Schema.NullOr(Int)),
      port: Schema.optional(Schema.NullOr(Int)),
      protocol: optionalString
    }))))
  }))),
  definition: Schema.optional(Schema.Unknown)
})
/**
 * @see Deployment
 * @since 0.2.0
 * @category models
 */
export type Deployment = typeof Deployment.Type

/**
 * The `{deployment}` reply of get deployment.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentReply = Schema.Struct({ deployment: Deployment })

// ---------------------------------------------------------------------------------------------
// Request bodies: the fields the SDK sends. As in protobuf's JSON mapping, `null` stands for an
// absent optional field, and unknown fields are ignored when decoding.

const optionalNullable = <S extends Schema.Schema.Any>(schema: S) => Schema.optional(Schema.NullOr(schema))

/**
 * An `int64` field of a request body: a JSON integer or a string of decimal digits, decoded to a
 * number.
 *
 * @since 0.2.0
 * @category schemas
 */
export const Int64 = Schema.Union(
  Schema.Int,
  Schema.compose(Schema.String.pipe(Schema.pattern(/^-?\d+$/)), Schema.NumberFromString)
)

/**
 * The name of an app or a service: 1 to 63 lowercase letters, digits or dashes, starting and
 * ending with a letter or a digit.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ResourceName = Schema.String.pipe(Schema.pattern(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/))

/**
 * The name of an environment variable of a deployment.
 *
 * @since 0.2.0
 * @category schemas
 */
export const EnvKey = Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]*$/))

/**
 * `DeploymentDefinition.Type`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentType = Schema.Literal("INVALID", "WEB", "WORKER", "DATABASE", "SANDBOX")

/**
 * The protocol of a deployment port.
 *
 * @since 0.2.0
 * @category schemas
 */
export const PortProtocol = Schema.Literal("http", "http2", "tcp")

/**
 * `ProxyPortProtocol`: the protocol of a port published as a TCP proxy.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ProxyPortProtocol = Schema.Literal("tcp")

/**
 * A `DeploymentPort`: a port the instance listens on.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentPort = Schema.Struct({ port: Int64, protocol: PortProtocol })

/**
 * A `DeploymentRoute`: a public path prefix routed to one of the ports.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentRoute = Schema.Struct({ port: Int64, path: Schema.String })

/**
 * A `DeploymentProxyPort`: one of the ports published as a TCP proxy.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentProxyPort = Schema.Struct({ port: Int64, protocol: ProxyPortProtocol })

/**
 * A `DeploymentEnv`: a variable with a literal `value`, or a `secret` reference.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentEnv = Schema.Struct({
  key: EnvKey,
  value: optionalNullable(Schema.String),
  secret: optionalNullable(Schema.String)
})

/**
 * A `DockerSource`: the image the instance runs, and how.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DockerSource = Schema.Struct({
  image: Schema.String,
  privileged: optionalNullable(Schema.Boolean),
  image_registry_secret: optionalNullable(Schema.String),
  entrypoint: optionalNullable(Schema.Array(Schema.String)),
  command: optionalNullable(Schema.String),
  args: optionalNullable(Schema.Array(Schema.String))
})

/**
 * A `DeploymentInstanceType`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentInstanceType = Schema.Struct({ type: Schema.String })

/**
 * A `DeploymentScaling`: instance bounds, and the sleep targets kept as sent.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentScaling = Schema.Struct({
  min: optionalNullable(Int64),
  max: optionalNullable(Int64),
  targets: optionalNullable(Schema.Array(Schema.Unknown))
})

/**
 * A `ConfigFile` written into the instance.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ConfigFile = Schema.Struct({
  path: Schema.String,
  permissions: optionalNullable(Schema.String),
  content: Schema.String
})

/**
 * A `DeploymentDefinition` as the SDK sends it.
 *
 * @since 0.2.0
 * @category schemas
 */
export const DeploymentDefinition = Schema.Struct({
  name: ResourceName,
  type: DeploymentType,
  docker: optionalNullable(DockerSource),
  env: optionalNullable(Schema.Array(DeploymentEnv)),
  instance_types: optionalNullable(Schema.Array(DeploymentInstanceType)),
  regions: optionalNullable(Schema.Array(Schema.String)),
  ports: optionalNullable(Schema.Array(DeploymentPort)),
  routes: optionalNullable(Schema.Array(DeploymentRoute)),
  proxy_ports: optionalNullable(Schema.Array(DeploymentProxyPort)),
  scalings: optionalNullable(Schema.Array(DeploymentScaling)),
  mesh: optionalNullable(Schema.String),
  config_files: optionalNullable(Schema.Array(ConfigFile))
})
/**
 * @see DeploymentDefinition
 * @since 0.2.0
 * @category models
 */
export type DeploymentDefinition = typeof DeploymentDefinition.Type

/**
 * An `AppLifeCycle`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const AppLifeCycle = Schema.Struct({ delete_when_empty: optionalNullable(Schema.Boolean) })

/**
 * A `ServiceLifeCycle` in a request: deletion delays in seconds, 0 meaning disabled.
 *
 * @since 0.2.0
 * @category schemas
 */
export const ServiceLifeCycle = Schema.Struct({
  delete_after_create: optionalNullable(Int64),
  delete_after_sleep: optionalNullable(Int64)
})

/**
 * The `CreateApp` body of `POST /v1/apps`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const CreateApp = Schema.Struct({ name: ResourceName, life_cycle: optionalNullable(AppLifeCycle) })

/**
 * The `CreateService` body of `POST /v1/services`.
 *
 * @since 0.2.0
 * @category schemas
 */
export const CreateService = Schema.Struct({
  app_id: Schema.String,
  definition: DeploymentDefinition,
  life_cycle: optionalNullable(ServiceLifeCycle)
})

/**
 * The `UpdateService` body of `PUT /v1/services/{id}`; `save_only` stores without deploying.
 *
 * @since 0.2.0
 * @category schemas
 */
export const UpdateService = Schema.Struct({
  definition: DeploymentDefinition,
  life_cycle: optionalNullable(ServiceLifeCycle),
  save_only: optionalNullable(Schema.Boolean)
})
