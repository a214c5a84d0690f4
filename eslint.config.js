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
    // effect's modules by their deep path, as Effect's own packages import them: the barrel loads all of effect
    files: ["src/**"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: [{
          name: "effect",
          message: "import effect's modules by their deep path (import * as Effect from \"effect/Effect\"): node scripts/deep-effect-imports.mjs rewrites them"
        }]
      }]
    }
  },
  {
    files: ["examples/**", "bench/**", "test/**"],
    rules: { "no-console": "off" }
  }
)
