#!/usr/bin/env node
// Compiles the server into dist/main.js: our code bundled into one ES module (packages stay
// imports of node_modules), so a start loads one file instead of some hundred modules through
// a TypeScript loader. esbuild strips types only; `npm run typecheck` (tsc) checks them.
// Takes well under a second, so `npm start` builds every time and never runs stale code.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [path.join(root, "src", "main.ts")],
  outfile: path.join(root, "dist", "main.js"),
  bundle: true,
  packages: "external",
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
});
