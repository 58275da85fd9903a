#!/usr/bin/env node
// Migrations run on the Prisma 6.19.3 CLI (package alias prisma-6): its WebAssembly schema
// engine works through a driver adapter, with no native engine to download. Prisma 7 (the
// client and `prisma generate`) refuses a datasource `url` in the schema, which 6.19.3
// requires, so this writes a copy of prisma/schema.prisma with one for the command's length.
// The URL in it is never connected to: the adapter (prisma/migrate.config.ts) reads
// DATABASE_URL, or opens the embedded database under DATA_DIR when it is unset.
//   node scripts/migrate.mjs migrate deploy | migrate status | migrate diff ... | db pull --print
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const cli = createRequire(import.meta.url).resolve("prisma-6/build/index.js");

/** Writes prisma/schema.prisma, with the `url` 6.19.3 wants, into `dir`; returns its path. */
export function writeMigrateSchema(dir) {
  const schema = path.join(dir, "schema.prisma");
  const source = readFileSync(path.join(root, "prisma", "schema.prisma"), "utf8");
  const withUrl = source.replace(
    /(datasource\s+db\s*\{[^}]*?provider\s*=\s*"postgresql")/,
    '$1\n  url = env("DATABASE_URL")',
  );
  if (withUrl === source) throw new Error("prisma/schema.prisma: no postgresql datasource block found");
  writeFileSync(schema, withUrl);
  return schema;
}

/** Runs the 6.19.3 CLI with `args`; returns spawnSync's result (stdout and stderr as text). */
export function migrateCli(args, { env = process.env, stdio = "pipe" } = {}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "floyo-migrate-schema-"));
  try {
    const schema = writeMigrateSchema(dir);
    return spawnSync(process.execPath, [cli, ...args, "--config", "prisma/migrate.config.ts"], {
      cwd: root,
      stdio,
      encoding: "utf8",
      env: {
        ...env,
        // 6.19.3 wants a postgresql:// URL here even when the adapter opens the embedded database.
        DATABASE_URL: env.DATABASE_URL || "postgresql://embedded@localhost/embedded",
        PRISMA_HIDE_UPDATE_MESSAGE: "1",
        FLOYO_MIGRATE_SCHEMA: schema,
        FLOYO_MIGRATE_DATABASE_URL: env.DATABASE_URL ?? "",
      },
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const run = migrateCli(process.argv.slice(2), { stdio: "inherit" });
  if (run.error) throw run.error;
  process.exit(run.status ?? 1);
}
