import { defaultServerConditions } from "vite"
import type { ViteUserConfig } from "vitest/config"

// The workspace packages resolve to their TypeScript sources (the `@effect-koyeb/source` export
// condition), here and in the child processes the tests start, so no build is needed.
const sourceCondition = "@effect-koyeb/source"

const config: ViteUserConfig = {
  resolve: { conditions: [sourceCondition, ...defaultServerConditions] },
  ssr: { resolve: { conditions: [sourceCondition, ...defaultServerConditions] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    env: { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--conditions=${sourceCondition}`].filter(Boolean).join(" ") }
  }
}

export default config
