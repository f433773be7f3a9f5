import * as effectEslint from "@effect/eslint-plugin"
import js from "@eslint/js"
import tseslint from "typescript-eslint"

// The Node.js globals used by plain JS files (TS files are checked by tsc, which types them);
// listed here rather than taken from the `globals` package, which is not a dependency.
const nodeGlobals = Object.fromEntries(
  [
    "AbortController",
    "AbortSignal",
    "Buffer",
    "TextDecoder",
    "TextEncoder",
    "URL",
    "URLSearchParams",
    "clearInterval",
    "clearTimeout",
    "console",
    "fetch",
    "process",
    "queueMicrotask",
    "setImmediate",
    "setInterval",
    "setTimeout",
    "structuredClone"
  ].map((name) => [name, "readonly"])
)

// Modelled on the Effect-TS/effect repository's eslint.config.mjs (without the
// import / sort-destructure-keys / codegen plugins, which are not installed here).
// Only the non-type-checked presets are used, so linting stays fast.
export default tseslint.config(
  {
    ignores: [
      "**/node_modules",
      "**/dist",
      "**/build",
      "docs",
      "**/docs",
      "**/.tsbuildinfo",
      ".ci/out",
      "coverage",
      "**/*.md"
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  effectEslint.configs.dprint,
  {
    files: ["**/*.ts", "**/*.mts", "**/*.cts", "**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: {
      parser: tseslint.parser,
      ecmaVersion: 2022,
      sourceType: "module"
    },
    linterOptions: {
      reportUnusedDisableDirectives: "error"
    },
    rules: {
      "object-shorthand": "error",
      // superseded by @typescript-eslint/no-unused-vars
      "no-unused-vars": "off",
      "@typescript-eslint/no-unused-vars": ["error", {
        argsIgnorePattern: "^_",
        varsIgnorePattern: "^_",
        caughtErrorsIgnorePattern: "^_",
        destructuredArrayIgnorePattern: "^_"
      }],
      "@typescript-eslint/array-type": ["warn", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "warn",
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }]
    }
  },
  {
    files: ["**/*.js", "**/*.mjs", "**/*.cjs"],
    languageOptions: { globals: nodeGlobals }
  },
  {
    files: ["**/*.cjs", "**/*.cts"],
    languageOptions: {
      sourceType: "commonjs",
      globals: {
        require: "readonly",
        module: "writable",
        exports: "writable",
        __dirname: "readonly",
        __filename: "readonly"
      }
    },
    rules: {
      // CommonJS modules (e.g. the consumer check in .ci/consumer): require() is their module system
      "@typescript-eslint/no-require-imports": "off"
    }
  },
  {
    // library code: spreading an unbounded array into push can overflow the stack (as in Effect);
    // tests, examples and bench push small, known arrays, where the spread reads better
    files: ["packages/*/src/**/*"],
    rules: {
      "no-restricted-syntax": ["error", {
        selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
        message: "Do not use spread arguments in Array.push"
      }]
    }
  },
  {
    files: ["packages/*/test/**/*"],
    rules: {
      // tests poke at decoded JSON bodies of the HTTP APIs, which are `any` by nature
      "@typescript-eslint/no-explicit-any": "off"
    }
  }
)
