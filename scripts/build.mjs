#!/usr/bin/env node
// Compiles the server into dist/main.js: our code bundled into one ES module (packages stay
// imports of node_modules), so a start loads one file instead of some hundred modules through
// a TypeScript loader. esbuild strips types only; `npm run typecheck` (tsc) checks them.
// Takes well under a second, so `npm start` builds every time and never runs stale code.
//
// Then makes the embedded database's template (src/infra/pgliteTemplate.ts) when it is missing
// or stale: once per installation, and again after a PGlite upgrade or a new migration. That
// costs one initdb (seconds); every later start on an empty DATA_DIR copies it instead.
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// Packages compiled into dist/ rather than imported from node_modules at start: graphql-scalars
// is one module of some sixty scalars (~100 ms to load) that declares itself free of side
// effects, so bundling keeps the four the schema uses.
const BUNDLED_PACKAGES = new Set(["graphql-scalars"]);

/** esbuild's `packages: "external"`, except for `bundled`. */
function externalPackagesBut(bundled) {
  return {
    name: "external-packages",
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const parts = args.path.split("/");
        const name = args.path.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
        return bundled.has(name) ? undefined : { path: args.path, external: true };
      });
    },
  };
}

await build({
  entryPoints: {
    main: path.join(root, "src", "main.ts"),
    pgliteTemplate: path.join(root, "src", "infra", "pgliteTemplate.ts"),
  },
  outdir: path.join(root, "dist"),
  bundle: true,
  plugins: [externalPackagesBut(BUNDLED_PACKAGES)],
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  logLevel: "warning",
});

// Never fails the build: without a template, a start on an empty DATA_DIR runs initdb itself.
try {
  const { ensurePgliteTemplate, TEMPLATE_DIR } = await import(
    pathToFileURL(path.join(root, "dist", "pgliteTemplate.js"))
  );
  const started = performance.now();
  if ((await ensurePgliteTemplate()) === "built")
    console.error(`embedded database template made in ${Math.round(performance.now() - started)} ms: ${TEMPLATE_DIR}`);
} catch (err) {
  console.error(`embedded database template not made (starts on an empty DATA_DIR will run initdb): ${err.message}`);
}
