// @ts-check
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-namespace": "off",
      "require-yield": "off",
      "no-console": ["error", { allow: ["warn", "error"] }]
    }
  },
  {
    // modules by their deep path, as Effect's own packages import them: a barrel loads all of its package
    files: ["src/**"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: ["effect", "@effect/platform", "@effect/platform-node"].map((name) => ({
          name,
          message: `import ${name}'s modules by their deep path (import * as Effect from "effect/Effect"): node scripts/deep-effect-imports.mjs rewrites effect's and @effect/platform's`
        }))
      }]
    }
  },
  {
    files: ["examples/**", "bench/**", "test/**"],
    rules: { "no-console": "off" }
  }
)
