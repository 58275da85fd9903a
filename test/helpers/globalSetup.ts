// Runs once per test run. With DATABASE_URL and REDIS_URL set (CI sets them), the suite runs
// against real PostgreSQL and Redis: a fresh database and a fresh key prefix for this run,
// migrated with `prisma migrate deploy`, dropped and deleted afterwards. Without them it
// runs in the embedded mode. Under CI=true a missing or unreachable service fails the run.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import pg from "pg";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    services: { databaseUrl: string; adminUrl: string; redisUrl: string; redisKeyPrefix: string } | null;
  }
}

export default async function setup(project: TestProject) {
  const adminUrl = process.env.DATABASE_URL;
  const redisUrl = process.env.REDIS_URL;
  if (!adminUrl || !redisUrl) {
    if (process.env.CI === "true") {
      throw new Error(
        "CI=true: DATABASE_URL and REDIS_URL must be set; the suite runs against real PostgreSQL and Redis in CI.",
      );
    }
    project.provide("services", null);
    return;
  }

  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
  const dbName = `floyo_test_${runId}`;
  const redisKeyPrefix = `floyo_test_${runId}:`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL at DATABASE_URL is unreachable: ${(err as Error).message}`);
  }
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5_000 });
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    await admin.end();
    redis.disconnect();
    throw new Error(`Redis at REDIS_URL is unreachable: ${(err as Error).message}`);
  }

  await admin.query(`CREATE DATABASE "${dbName}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  execFileSync(process.execPath, ["scripts/migrate.mjs", "migrate", "deploy"], {
    env: { ...process.env, DATABASE_URL: databaseUrl },
    stdio: "pipe",
  });
  project.provide("services", { databaseUrl, adminUrl, redisUrl, redisKeyPrefix });

  return async () => {
    await admin.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    // Other databases this run made (test files that need an empty one) share the prefix.
    const { rows } = await admin.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1", [
      `${dbName}%`,
    ]);
    for (const row of rows) await admin.query(`DROP DATABASE IF EXISTS "${row.datname}" WITH (FORCE)`);
    await admin.end();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${redisKeyPrefix}*`, "COUNT", 500);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== "0");
    redis.disconnect();
  };
}
