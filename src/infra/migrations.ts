// Reads Prisma's migration folders and Prisma's own `_prisma_migrations` table. The embedded
// mode applies pending migrations at start through here, writing the same rows
// `prisma migrate deploy` writes, so `npm run db:status` and `db:deploy` agree with it.
import { createHash, randomUUID } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type { RawSql } from "./db.ts";

// This file runs from src/infra/ (tsx, tests) and bundled into dist/main.js (npm start).
const MIGRATIONS_DIR = ["../prisma/migrations", "../../prisma/migrations"]
  .map((relative) => path.resolve(import.meta.dirname, relative))
  .find((dir) => existsSync(dir)) as string;

interface LocalMigration {
  name: string;
  sql: string;
  checksum: string;
}

let cached: LocalMigration[] | undefined;

/** The committed migrations, oldest first. Read once: they do not change while we run. */
export function localMigrations(): LocalMigration[] {
  cached ??= readdirSync(MIGRATIONS_DIR, { withFileTypes: true })
    // Every folder with a migration.sql, as `prisma migrate deploy` sees them.
    .filter((d) => d.isDirectory() && existsSync(path.join(MIGRATIONS_DIR, d.name, "migration.sql")))
    .map((d) => d.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(MIGRATIONS_DIR, name, "migration.sql"), "utf8");
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
  return cached;
}

export class FailedMigrationError extends Error {
  override name = "FailedMigrationError";
}

/**
 * Names of committed migrations the database has not applied. A migration that started and
 * failed (Prisma leaves finished_at null) is not "pending": applying it again would fail the
 * same way, so it is reported for a person to resolve, as `prisma migrate deploy` does.
 */
export async function pendingMigrations(raw: RawSql): Promise<string[]> {
  const [table] = await raw.query<{ exists: string | null }>(
    "SELECT to_regclass('_prisma_migrations')::text AS exists",
  );
  const applied = new Set<string>();
  if (table?.exists) {
    const rows = await raw.query<{ migration_name: string; finished_at: Date | null }>(
      "SELECT migration_name, finished_at FROM _prisma_migrations WHERE rolled_back_at IS NULL",
    );
    const failed = rows.filter((r) => !r.finished_at).map((r) => r.migration_name);
    if (failed.length) {
      throw new FailedMigrationError(
        `Migration ${failed.join(", ")} failed earlier. Fix the database, then mark it with \`npx prisma migrate resolve --applied <name>\` or \`--rolled-back <name>\`.`,
      );
    }
    for (const row of rows) applied.add(row.migration_name);
  }
  return localMigrations()
    .map((m) => m.name)
    .filter((name) => !applied.has(name));
}

/** Applies pending migrations, each in its own transaction with its bookkeeping row. */
export async function applyPendingMigrations(raw: RawSql): Promise<string[]> {
  // The table as `prisma migrate deploy` creates it.
  await raw.exec(`CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
  )`);
  const pending = new Set(await pendingMigrations(raw));
  const applied: string[] = [];
  for (const migration of localMigrations()) {
    if (!pending.has(migration.name)) continue;
    const id = randomUUID();
    const name = migration.name.replaceAll("'", "''");
    try {
      await raw.exec(
        `BEGIN;\n${migration.sql}\n;INSERT INTO "_prisma_migrations" (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('${id}', '${migration.checksum}', now(), '${name}', 1);\nCOMMIT;`,
      );
    } catch (err) {
      await raw.exec("ROLLBACK").catch(() => {});
      throw new Error(`Migration ${migration.name} failed and was rolled back: ${(err as Error).message}`);
    }
    applied.push(migration.name);
  }
  return applied;
}
