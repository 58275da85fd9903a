// The embedded mode from an empty DATA_DIR: migrated at start, answers, keeps its data
// across a restart, and refuses a second process on the same directory.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
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

  it("writes the bookkeeping `prisma migrate status` reads", () => {
    // The first test migrated dataDir through the server; Prisma's own CLI must agree.
    const status = execFileSync("node_modules/.bin/prisma", ["migrate", "status"], {
      env: { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      encoding: "utf8",
      stdio: "pipe",
    });
    expect(status).toMatch(/Database schema is up to date/);
  });
});
