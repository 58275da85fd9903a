// Prisma 6.19.3 CLI configuration, for migrations only (deploy, status, diff, db pull), run
// through scripts/migrate.mjs: see there why two CLIs. With DATABASE_URL set it talks to
// PostgreSQL; without it, to the embedded PGlite database under DATA_DIR, like the server.
import path from "node:path";
import { defineConfig } from "prisma-6/config";

const schema = process.env.FLOYO_MIGRATE_SCHEMA;
if (!schema) throw new Error("run migrations through scripts/migrate.mjs (npm run db:deploy, db:status)");

export default defineConfig({
  schema,
  migrations: { path: path.resolve("prisma", "migrations") },
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    const { cliAdapter } = await import("../scripts/prismaCliAdapter.ts");
    return cliAdapter(process.env.FLOYO_MIGRATE_DATABASE_URL || undefined);
  },
});
