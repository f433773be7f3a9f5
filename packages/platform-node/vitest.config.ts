import { defineProject, mergeConfig } from "vitest/config"
import shared from "../../vitest.shared.js"

export default mergeConfig(
  shared,
  defineProject({
    test: {
      // fails the run when a process or sandbox directory the suite started outlives it
      globalSetup: ["./test/globalSetup.ts"]
    }
  })
)
