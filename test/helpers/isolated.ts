// A database and Redis prefix of a suite's own, in the services mode: for suites whose
// background work (executions, the scheduler) must run only on the servers they start,
// with their configuration, not on every other suite's servers sharing the run's database.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import pg from "pg";
import { services } from "./server.ts";

export async function isolatedServices(label: string): Promise<{
  env: Record<string, string>;
  cleanup(): Promise<void>;
}> {
  if (!services) return { env: {}, cleanup: async () => {} };
  const suffix = `${label}_${randomBytes(3).toString("hex")}`;
  const name = `${new URL(services.databaseUrl).pathname.slice(1)}_${suffix}`;
  const admin = new pg.Client({ connectionString: services.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  const url = new URL(services.databaseUrl);
  url.pathname = `/${name}`;
  // Not execFileSync: servers of this test process must keep running meanwhile.
  await promisify(execFile)(process.execPath, ["scripts/migrate.mjs", "migrate", "deploy"], {
    env: { ...process.env, DATABASE_URL: url.toString() },
  });
  return {
    env: { DATABASE_URL: url.toString(), REDIS_KEY_PREFIX: `${services.redisKeyPrefix}${suffix}:` },
    async cleanup() {
      // The run's own cleanup drops it too (same name prefix), should this not be reached.
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}
