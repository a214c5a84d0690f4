import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: {
    alias: [
      { find: /^chronicle\/nats$/, replacement: fileURLToPath(new URL("./src/nats.ts", import.meta.url)) },
      { find: /^chronicle$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) }
    ]
  },
  test: {
    include: ["test/**/*.test.ts"],
    // generous bounds, not expectations: on a loaded 2-core machine one CLI process takes ~5 s to start
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
