/**
 * Waiting until a Koyeb sandbox is ready: its current deployment is HEALTHY (or SLEEPING: a probe
 * through the edge wakes it) and its executor answers `/health` as healthy. Polls start 100 ms
 * apart and double up to `pollInterval`; terminal deployment statuses fail fast, while transient
 * API failures and a missing endpoint only mean "not yet".
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { SandboxEndpoint, WaitReadyOptions } from "../ControlPlane.js"
import type { ExecutorClientShape } from "../ExecutorClient.js"
import { TERMINAL_STATUSES } from "../KoyebWire.js"
import { type ControlPlaneFailure, DeploymentFailed } from "../SandboxError.js"
import { withTimeout } from "./bounded.js"
import { isUnavailable } from "./koyebHttp.js"
import type { KoyebResources } from "./koyebResources.js"
import * as Wire from "./koyebWire.js"

/** Failures that leave the sandbox possibly about to be ready: polling goes on. */
const isNotYet = (e: DeploymentFailed | ControlPlaneFailure): boolean =>
  e._tag === "RateLimited" ||
  (e._tag === "ControlPlaneError" && e.reason === "NoEndpoint") ||
  (e._tag !== "DeploymentFailed" && isUnavailable(e))

/** Pauses between polls: from 100 ms (or `max`, if shorter), doubling, at most `max`. */
const pollSchedule = (max: Duration.Duration) =>
  Schedule.exponential(Duration.min(Duration.millis(100), max), 2).pipe(Schedule.union(Schedule.spaced(max)))

/** The `waitReady` operation of the Koyeb control plane. */
export const makeWaitReady = (
  resources: KoyebResources,
  connect: (endpoint: SandboxEndpoint) => Effect.Effect<ExecutorClientShape>
) => {
  const { getDeployment, getService } = resources

  // None: not ready yet.
  const readyOnce = (
    id: string
  ): Effect.Effect<Option.Option<SandboxEndpoint>, DeploymentFailed | ControlPlaneFailure> =>
    Effect.gen(function*() {
      const service = yield* getService(id)
      const deploymentId = Wire.currentDeployment(service)
      if (Option.isNone(deploymentId)) return Option.none()
      const deployment = yield* getDeployment(id, deploymentId.value)
      const status = deployment.status ?? ""
      if (TERMINAL_STATUSES.has(status)) {
        const messages = deployment.messages?.join("; ")
        return yield* new DeploymentFailed({ sandbox: id, status, ...(messages ? { detail: messages } : {}) })
      }
      if (status !== "HEALTHY" && status !== "SLEEPING") return Option.none()
      const secret = yield* resources.secretOf(deployment, id)
      const endpoint = yield* resources.endpointOf(Option.some(deployment), service.app_id, secret)
      const client = yield* connect(endpoint)
      return (yield* client.isHealthy) ? Option.some(endpoint) : Option.none()
    }).pipe(Effect.catchIf(isNotYet, () => Effect.succeedNone))

  return Effect.fn("KoyebControlPlane.waitReady")(function*(id: string, options?: WaitReadyOptions) {
    yield* Effect.annotateCurrentSpan("sandbox.id", id)
    const timeout = Duration.decode(options?.timeout ?? "5 minutes")
    const pollInterval = Duration.decode(options?.pollInterval ?? "500 millis")
    const found = yield* withTimeout(
      Effect.repeat(readyOnce(id), {
        schedule: Schedule.zipLeft(Schedule.identity<Option.Option<SandboxEndpoint>>(), pollSchedule(pollInterval)),
        until: Option.isSome
      }),
      `waitReady(${id})`,
      timeout
    )
    // The poll only ends with an endpoint (its schedule never ends by itself).
    return yield* Option.match(found, {
      onNone: () => Effect.dieMessage(`KoyebControlPlane.waitReady(${id}): polling ended without an endpoint`),
      onSome: Effect.succeed
    })
  })
}
