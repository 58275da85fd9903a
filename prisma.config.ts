// Prisma 7 CLI configuration: `prisma generate` only. Migrations run on the 6.19.3 CLI's
// WebAssembly schema engine (prisma/migrate.config.ts, through scripts/migrate.ts), because
// Prisma 7 runs migrations only through a native engine our machines cannot download.
import path from "node:path";
import { defineConfig } from "prisma/config";

// generate never runs the schema engine, but the CLI downloads it first unless this names an
// existing file; any file will do.
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath;

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
});
