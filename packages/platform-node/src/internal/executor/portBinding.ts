/**
 * `/bind_port` and `/unbind_port`: the one port the TCP proxy forwards to. As in the stock, the
 * port is a string that is not validated, and binding while bound is a conflict, even to the
 * same port.
 *
 * @internal
 */
import * as ExecutorWire from "@effect-koyeb/core/ExecutorWire"
import * as Effect from "effect/Effect"
import * as GoJson from "../goJson.js"
import type { AppContext } from "./context.js"
import { json, plain, type Request, withBody } from "./http.js"

const decodeBindPort = GoJson.decoder(ExecutorWire.BindPortRequest)

/** `/bind_port`: sets the proxy's target; 409 while one is set. */
export const bindPort = (ctx: AppContext, request: Request) =>
  withBody(ctx, request, decodeBindPort, (body) =>
    Effect.sync(() => {
      if (body.port === "") return plain(400, "Port is required")
      const binding = ctx.binding
      if (binding.current !== undefined) {
        return json(
          409,
          `{"current_port":${GoJson.string(binding.current)},"error":"Port already bound","success":false}`
        )
      }
      binding.current = body.port
      return json(200, `{"message":"Port binding configured","port":${GoJson.string(body.port)},"success":true}`)
    }))

/** `/unbind_port`: clears the proxy's target; the body is not read. */
export const unbindPort = (ctx: AppContext) =>
  Effect.sync(() => {
    ctx.binding.current = undefined
    return json(200, `{"message":"Port binding removed","success":true}`)
  })
