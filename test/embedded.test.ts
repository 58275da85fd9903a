// The embedded mode from an empty DATA_DIR: migrated at start, answers, keeps its data
// across a restart, and refuses a second process on the same directory.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { afterAll, describe, expect, it } from "vitest";
import { gql } from "./helpers/client.ts";
import { createUser } from "./helpers/factories.ts";
import { startServer, testEnv } from "./helpers/server.ts";

const embedded = { DATABASE_URL: undefined, REDIS_URL: undefined, REDIS_KEY_PREFIX: undefined };
const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-embedded-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe("embedded mode", () => {
  it("starts on an empty DATA_DIR, migrates it, serves, and keeps its data across a restart", async () => {
    const first = await startServer({ ...embedded, DATA_DIR: dataDir });
    expect(existsSync(path.join(dataDir, "pglite"))).toBe(true);

    const ready = await fetch(`${first.url}/health/readiness`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: "ready",
      checks: { database: { ok: true }, migrations: { ok: true } },
    });

    const typename = await gql(first.graphqlUrl, "{ __typename }");
    expect(typename.data).toEqual({ __typename: "Query" });

    const { user, token } = await createUser(first.graphqlUrl);
    const before = await gql(
      first.graphqlUrl,
      "{ viewer { id email memberships { role organization { slug personal } } } }",
      { token },
    );
    expect(before.errors).toBeUndefined();
    expect(before.data).toMatchObject({
      viewer: { email: user.email, memberships: [{ role: "OWNER", organization: { personal: true } }] },
    });
    await first.stop();

    const second = await startServer({ ...embedded, DATA_DIR: dataDir });
    const after = await gql(
      second.graphqlUrl,
      "{ viewer { id email memberships { role organization { slug personal } } } }",
      { token },
    );
    expect(after.data).toEqual(before.data);
    await second.stop();
  });

  it("refuses a second process on the same DATA_DIR with a clear message", async () => {
    const server = await startServer({ ...embedded, DATA_DIR: dataDir });
    try {
      const run = () =>
        execFileSync("node_modules/.bin/tsx", ["src/main.ts"], {
          env: {
            ...testEnv({ ...embedded, DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "fatal" }),
            PATH: process.env.PATH,
          },
          stdio: "pipe",
          encoding: "utf8",
        });
      expect(run).toThrowError(/is in use by process \d+/);
    } finally {
      await server.stop();
    }
  });

  it("writes the bookkeeping `prisma migrate deploy` writes, row for row", async () => {
    // The first test migrated dataDir through the server; Prisma's own CLI migrates another.
    const byPrisma = mkdtempSync(path.join(os.tmpdir(), "floyo-deploy-"));
    try {
      const env = { ...process.env, DATABASE_URL: "" };
      execFileSync(process.execPath, ["scripts/migrate.mjs", "migrate", "deploy"], {
        env: { ...env, DATA_DIR: byPrisma },
        stdio: "pipe",
      });
      const rows = async (dir: string) => {
        const db = new PGlite(path.join(dir, "pglite"));
        try {
          const result = await db.query(
            "SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, rolled_back_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name",
          );
          return result.rows;
        } finally {
          await db.close();
        }
      };
      const ours = await rows(dataDir);
      expect(ours.length).toBeGreaterThan(0);
      expect(ours).toEqual(await rows(byPrisma));
      const status = execFileSync(process.execPath, ["scripts/migrate.mjs", "migrate", "status"], {
        env: { ...env, DATA_DIR: dataDir },
        encoding: "utf8",
        stdio: "pipe",
      });
      expect(status).toMatch(/Database schema is up to date/);
    } finally {
      rmSync(byPrisma, { recursive: true, force: true });
    }
  });

  it("refuses a damaged data directory with a clear message instead of hanging", async () => {
    const damaged = mkdtempSync(path.join(os.tmpdir(), "floyo-damaged-"));
    try {
      mkdirSync(path.join(damaged, "pglite"));
      writeFileSync(path.join(damaged, "pglite", "PG_VERSION"), "not a version\n");
      writeFileSync(path.join(damaged, "pglite", "postgresql.conf"), "this is = not ( valid\n");
      await expect(
        startServer({ ...embedded, DATA_DIR: damaged, PGLITE_OPEN_TIMEOUT_MS: "20000" }),
      ).rejects.toThrowError(/could not be opened|did not open within/);
      // The lock is released, so a fixed directory can be opened again by anyone.
      expect(existsSync(path.join(damaged, "pglite.lock"))).toBe(false);
    } finally {
      rmSync(damaged, { recursive: true, force: true });
    }
  });
});
