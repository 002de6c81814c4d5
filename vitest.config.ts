import { defineConfig } from "vitest/config";

// Three projects: fast pure tests in threads; tests against the
// cluster-in-a-box (integration, e2e) serially in forks, because they share
// one cluster and real network namespaces.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: [
            "packages/*/src/**/*.test.ts",
            "packages/*/test/unit/**/*.test.ts",
            "test/unit/**/*.test.ts",
          ],
          pool: "threads",
        },
      },
      {
        test: {
          name: "lifecycle",
          include: ["test/lifecycle/**/*.test.ts"],
          pool: "forks",
          fileParallelism: false,
          testTimeout: 300_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["packages/*/test/integration/**/*.test.ts", "test/integration/**/*.test.ts"],
          pool: "forks",
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 300_000,
          globalSetup: ["test/cluster/vitest-global-setup.ts"],
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          pool: "forks",
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
          globalSetup: ["test/cluster/vitest-global-setup.ts"],
        },
      },
    ],
  },
});
