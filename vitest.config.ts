import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

export default defineConfig({
  resolve: {
    alias: [
      { find: /^chronicle\/postgres$/, replacement: fileURLToPath(new URL("./src/postgres.ts", import.meta.url)) },
      { find: /^chronicle\/nats$/, replacement: fileURLToPath(new URL("./src/nats.ts", import.meta.url)) },
      { find: /^chronicle\/testing$/, replacement: fileURLToPath(new URL("./src/testing.ts", import.meta.url)) },
      { find: /^chronicle\/toon$/, replacement: fileURLToPath(new URL("./src/toonFormat.ts", import.meta.url)) },
      { find: /^chronicle\/http$/, replacement: fileURLToPath(new URL("./src/http.ts", import.meta.url)) },
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
