import { defaultServerConditions } from "vite"
import { defineConfig } from "vitest/config"

// Tests import the package by its own name, as users do; this condition resolves it to `src/` instead of a build.
// Without Vite's bundler-only "module" condition, as Vitest's own default: Vitest passes these conditions to Node, which
// cannot load the "module" builds some packages export (OpenTelemetry's have extensionless imports).
const sourceConditions = [
  "effect-cassandra/source",
  ...defaultServerConditions.filter((condition) => condition !== "module")
]

// Three groups run one after another on the 2-core test machines: pure unit tests first, then
// the suites sharing one local node, then the multi-node suites, each starting its own cluster.
export default defineConfig({
  ssr: { resolve: { conditions: sourceConditions } },
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          sequence: { groupOrder: 0 }
        }
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/support/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          sequence: { groupOrder: 1 }
        }
      },
      {
        test: {
          name: "cluster",
          include: ["test/cluster/**/*.test.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
          sequence: { groupOrder: 2 }
        }
      }
    ]
  }
})
