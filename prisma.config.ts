// Prisma CLI configuration. The CLI runs the WebAssembly schema engine through a driver
// adapter, because the Rust engines cannot be downloaded on our machines
// (see README "Migrations"). With DATABASE_URL set it talks to PostgreSQL; without it, to
// the embedded PGlite database under DATA_DIR, exactly like the server.
import path from "node:path";
import { defineConfig } from "prisma/config";

const databaseUrl = process.env.DATABASE_URL;
// `prisma generate` falls back to downloading the Rust engine when the datasource URL is
// unset, so a syntactically valid placeholder stands in; no command connects through it.
if (!databaseUrl) process.env.DATABASE_URL = "postgresql://embedded@localhost/embedded";

export default defineConfig({
  schema: path.join("prisma", "schema.prisma"),
  migrations: { path: path.join("prisma", "migrations") },
  experimental: { adapter: true },
  engine: "js",
  async adapter() {
    const { cliAdapter } = await import("./scripts/prismaCliAdapter.ts");
    return cliAdapter(databaseUrl);
  },
});
