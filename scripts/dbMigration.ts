// The migration workflow that works without Prisma's downloadable engines:
//   npm run db:migration -- <name>   write the next migration from prisma/schema.prisma
//   npm run db:drift                 exit 1 when schema.prisma and the migrations disagree
// Both replay the committed migrations into a scratch PGlite database, read back the schema
// they produce, and diff it against schema.prisma with Prisma's own commands.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { migrateCli, writeMigrateSchema } from "./migrate.mjs";

const root = path.resolve(import.meta.dirname, "..");
const migrationsDir = path.join(root, "prisma", "migrations");

function prisma(args: string[], env: NodeJS.ProcessEnv, okCodes = [0]) {
  const run = migrateCli(args, { env });
  if (!okCodes.includes(run.status ?? -1)) {
    process.stderr.write(run.stdout + run.stderr);
    throw new Error(`prisma ${args.join(" ")} exited with ${run.status}`);
  }
  return run;
}

function hasMigrations() {
  try {
    return readdirSync(migrationsDir).some((d) => /^\d{14}_/.test(d));
  } catch {
    return false;
  }
}

function diff(extra: string[], okCodes?: number[]) {
  const scratch = mkdtempSync(path.join(os.tmpdir(), "floyo-migrate-"));
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: scratch, PRISMA_HIDE_UPDATE_MESSAGE: "1" };
  delete env.DATABASE_URL; // always the scratch PGlite, never a real database
  try {
    let from = ["--from-empty"];
    if (hasMigrations()) {
      prisma(["migrate", "deploy"], env);
      // The CLI prints a driver-adapter warning ahead of the schema on stdout.
      const printed = prisma(["db", "pull", "--print"], env).stdout;
      const pulled = printed.slice(Math.max(0, printed.search(/^(generator|datasource) /m)));
      const file = path.join(scratch, "from-migrations.prisma");
      writeFileSync(file, pulled);
      from = ["--from-schema-datamodel", file];
    }
    return prisma(
      ["migrate", "diff", ...from, "--to-schema-datamodel", writeMigrateSchema(scratch), "--script", ...extra],
      env,
      okCodes,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

const args = process.argv.slice(2);
if (args[0] === "--check") {
  // --exit-code: 0 no difference, 2 a difference (1 is an error).
  const run = diff(["--exit-code"], [0, 2]);
  if (run.status === 2) {
    process.stderr.write(`schema.prisma and prisma/migrations disagree; this migration is missing:\n\n${run.stdout}\n`);
    process.stderr.write("Make it with: npm run db:migration -- <name>\n");
    process.exit(1);
  }
  console.log("prisma/migrations match schema.prisma");
} else {
  const name = args[0];
  if (!name || !/^[a-z0-9_]+$/.test(name)) {
    console.error("usage: npm run db:migration -- <name>   (lower-case letters, digits and _)");
    process.exit(2);
  }
  const sql = diff([]).stdout;
  if (!sql.trim() || /^-- This is an empty migration\.\s*$/.test(sql.trim())) {
    console.log("schema.prisma matches the migrations: nothing to write");
    process.exit(0);
  }
  const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
  const dir = path.join(migrationsDir, `${stamp}_${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, "migration.sql"), sql);
  writeFileSync(path.join(migrationsDir, "migration_lock.toml"), 'provider = "postgresql"\n');
  console.log(`wrote ${path.relative(root, dir)}/migration.sql`);
}
