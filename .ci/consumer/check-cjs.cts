// The CommonJS view of the types (the `require` condition) under `module: nodenext`.
import Sandbox = require("@effect-koyeb/core/Sandbox")
import PlatformNode = require("@effect-koyeb/platform-node")

export const layer = Sandbox.layer({ name: "from-cjs" })
export const create: typeof PlatformNode.Sandboxes.create = PlatformNode.Sandboxes.create
