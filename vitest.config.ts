import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Vite would load graphql's .mjs build while Pothos and Yoga load the CommonJS one:
    // "Cannot use GraphQLSchema from another module or realm". One copy for all.
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    globalSetup: ["test/helpers/globalSetup.ts"],
    reporters: ["default", "./test/helpers/summaryReporter.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file starts its own servers; two cores run two files at a time.
    maxWorkers: 2,
  },
});
