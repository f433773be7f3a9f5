/**
 * Creating a sandbox on Koyeb: an app (unless the caller supplies one), then a SANDBOX service
 * carrying a fresh executor secret, then its endpoint. A create that fails part-way deletes what it
 * created; an app POST whose reply was lost is looked up by its unique name and deleted.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Encoding from "effect/Encoding"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type { CreateOptions, ProvisionedSandbox } from "../ControlPlane.js"
import { AppReply, type Deployment, ServiceReply } from "../KoyebWire.js"
import { SandboxInfo } from "../SandboxSchema.js"
import { isUnavailable } from "./koyebHttp.js"
import type { KoyebResources } from "./koyebResources.js"
import * as Wire from "./koyebWire.js"
import { randomToken } from "./shell.js"

const APP_PREFIX = "sandbox-app-"
const MAX_APP_NAME = 63

// Pauses between lookups of an app whose create reply was lost: the request may still be in
// flight on the server, so an empty first lookup is repeated for about two seconds.
const lostAppLookups = Schedule.fromDelays("250 millis", "500 millis", "1250 millis")

/** Matches the names `appName` gives: how `list` tells the apps this SDK created. */
export const sdkAppName = /^sandbox-app-.*-\d+-[0-9a-f]{8}$/

/** `sandbox-app-<name>-<unix seconds>-<8 hex>`, the name cut so that the whole stays within 63 characters. */
const appName = (name: string, unixSeconds: number): string => {
  const suffix = `-${unixSeconds}-${randomToken().slice(0, 8)}`
  const room = MAX_APP_NAME - APP_PREFIX.length - suffix.length
  return `${APP_PREFIX}${name.slice(0, room).replace(/-+$/, "")}${suffix}`
}

/** 32 random bytes, base64url: the executor secret of a new sandbox. */
const generateSecret = (): string => Encoding.encodeBase64Url(globalThis.crypto.getRandomValues(new Uint8Array(32)))

/**
 * The `create` operation of the Koyeb control plane; `defaultRegion` applies when the options give
 * none.
 */
export const makeCreate = (resources: KoyebResources, defaultRegion: string) => {
  const { deleteApp, deleteService, endpointOf, getDeployment, http } = resources

  // The app POST's reply was lost, but the server may have created (or still create) the app:
  // its name is unique per attempt, so every app with that name is ours to delete.
  const deleteLostApp = (name: string) =>
    resources.appsNamed(name).pipe(
      Effect.repeat({
        schedule: Schedule.zipRight(lostAppLookups, Schedule.identity<ReadonlyArray<{ readonly id: string }>>()),
        until: (apps) => apps.length > 0
      }),
      Effect.flatMap((apps) =>
        Effect.forEach(
          apps,
          (app) => deleteApp(app.id).pipe(Effect.catchTag("SandboxNotFound", () => Effect.void)),
          { discard: true }
        )
      ),
      Effect.catchAllCause((cause) =>
        Effect.logWarning(`KoyebControlPlane.create: cleanup of app ${name} after a lost reply failed`, cause)
      )
    )

  return Effect.fn("KoyebControlPlane.create")(function*(options: CreateOptions) {
    const resolved = yield* Wire.resolveCreate(options, defaultRegion)
    const secret = generateSecret()
    // The POSTs are not interruptible (a create cut short between them would leak an app; each is
    // bounded by the request timeout); what follows is, and cleans up after itself.
    return yield* Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        let appId = resolved.appId
        const ownsApp = appId === undefined
        if (appId === undefined) {
          const name = appName(resolved.name, Math.floor((yield* Clock.currentTimeMillis) / 1000))
          const reply = yield* http.post("/v1/apps", AppReply, { name, life_cycle: { delete_when_empty: true } }).pipe(
            Effect.tapError((e) => isUnavailable(e) ? deleteLostApp(name) : Effect.void)
          )
          appId = reply.app.id
        }
        yield* Effect.annotateCurrentSpan("koyeb.app_id", appId)
        const createdApp = appId
        const rollback = (serviceId: string | undefined) =>
          (ownsApp ? deleteApp(createdApp) : serviceId ? deleteService(serviceId) : Effect.void).pipe(
            Effect.catchAllCause((cause) =>
              Effect.logWarning("KoyebControlPlane.create: cleanup after a failed create failed", cause)
            )
          )
        const service = yield* http.post("/v1/services", ServiceReply, resolved.serviceBody(createdApp, secret)).pipe(
          Effect.map((r) => r.service),
          Effect.onError(() => rollback(undefined))
        )
        yield* Effect.annotateCurrentSpan("sandbox.id", service.id)
        const redacted = Redacted.make(secret)
        const endpoint = yield* restore(
          Option.match(Option.fromNullable(service.latest_deployment_id || null), {
            onNone: () => Effect.succeed(Option.none<Deployment>()),
            onSome: (id) => Effect.asSome(getDeployment(service.id, id))
          }).pipe(Effect.flatMap((deployment) => endpointOf(deployment, createdApp, redacted)))
        ).pipe(Effect.onError(() => rollback(service.id)))
        const info = new SandboxInfo({
          id: service.id,
          appId: createdApp,
          name: resolved.name,
          region: resolved.region,
          instanceType: resolved.instanceType,
          image: resolved.image,
          createdAt: Wire.dateOf(service.created_at),
          ownsApp
        })
        return { info, endpoint } satisfies ProvisionedSandbox
      })
    )
  })
}
