import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "test/**/*.test.ts", "examples/**/*.test.ts"],
    typecheck: { enabled: true, include: ["packages/*/test/**/*.test-d.ts", "test/**/*.test-d.ts"] },
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
