// The embedded mode from an empty DATA_DIR: migrated at start, answers, keeps its data
// across a restart, and refuses a second process on the same directory. An empty DATA_DIR is
// filled from the installation's template cluster; a template that is stale or damaged, or a
// copy cut short, never leaves anything but a correct cluster.
import { execFile, execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { PGlite } from "@electric-sql/pglite";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { openDatabase } from "../src/infra/db.ts";
import { applyPendingMigrations } from "../src/infra/migrations.ts";
import { ensurePgliteTemplate, seedFromTemplate, TEMPLATE_DIR, templateProblem } from "../src/infra/pgliteTemplate.ts";
import { gql } from "./helpers/client.ts";
import { createUser } from "./helpers/factories.ts";
import { spawnServer } from "./helpers/process.ts";
import { startServer, testEnv } from "./helpers/server.ts";

const embedded = { DATABASE_URL: undefined, REDIS_URL: undefined, REDIS_KEY_PREFIX: undefined };
const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-embedded-"));
const scratch = mkdtempSync(path.join(os.tmpdir(), "floyo-template-"));
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

/** `_prisma_migrations` as compared with Prisma's own: what does not vary from run to run. */
async function migrationRows(dir: string) {
  const db = new PGlite(path.join(dir, "pglite"));
  try {
    const result = await db.query(
      "SELECT migration_name, checksum, finished_at IS NOT NULL AS finished, rolled_back_at, applied_steps_count FROM _prisma_migrations ORDER BY migration_name",
    );
    return result.rows;
  } finally {
    await db.close();
  }
}

/** The rows `prisma migrate deploy` writes into an empty embedded database: made once per run. */
let byPrisma: Promise<{ dir: string; rows: unknown[] }> | undefined;
function prismaDeploy() {
  byPrisma ??= (async () => {
    const dir = mkdtempSync(path.join(scratch, "deploy-"));
    await promisify(execFile)(process.execPath, ["scripts/migrate.mjs", "migrate", "deploy"], {
      env: { ...process.env, DATABASE_URL: "", DATA_DIR: dir },
    });
    return { dir, rows: await migrationRows(dir) };
  })();
  return byPrisma;
}

/** A copy of the installation's template, for a test to spoil. */
function templateCopy(name: string) {
  const dir = path.join(scratch, name);
  cpSync(TEMPLATE_DIR, dir, { recursive: true });
  return dir;
}

/** Opens DATA_DIR `dir` as the server does (seeded from `template`, then migrated), and closes it. */
async function openAsServer(dir: string, template: string) {
  const lines: string[] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
  const config = loadConfig(testEnv({ ...embedded, DATA_DIR: dir }));
  const db = await openDatabase(config, logger, { pgliteTemplate: template });
  try {
    await applyPendingMigrations(db.raw);
  } finally {
    await db.close();
  }
  const opened = lines.map((line) => JSON.parse(line)).find((l) => l.msg === "embedded PostgreSQL (PGlite) open");
  return { created: opened?.created as string | undefined, log: lines.join("") };
}

const leftovers = (dir: string) => readdirSync(dir).filter((name) => name.includes("-copy-"));

describe("embedded mode", () => {
  // What `npm start` (scripts/build.mjs) makes once per installation, a no-op when current;
  // and what Prisma's own CLI writes, compared with below (tens of seconds on a busy machine).
  beforeAll(() => Promise.all([ensurePgliteTemplate(), prismaDeploy()]), 180_000);

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
    const ours = await migrationRows(dataDir);
    expect(ours.length).toBeGreaterThan(0);
    expect(ours).toEqual((await prismaDeploy()).rows);
    const status = execFileSync(process.execPath, ["scripts/migrate.mjs", "migrate", "status"], {
      env: { ...process.env, DATABASE_URL: "", DATA_DIR: dataDir },
      encoding: "utf8",
      stdio: "pipe",
    });
    expect(status).toMatch(/Database schema is up to date/);
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

  it("fills an empty DATA_DIR from the template: it serves, with every migration applied as Prisma applies it", async () => {
    expect(templateProblem(TEMPLATE_DIR)).toBeNull();
    const dir = mkdtempSync(path.join(scratch, "seeded-"));
    const server = await spawnServer({ ...embedded, DATA_DIR: dir });
    try {
      expect(server.output()).toMatch(/"created":"template".*"msg":"embedded PostgreSQL \(PGlite\) open"/);
      const ready = await fetch(`${server.url}/health/readiness`);
      expect(await ready.json()).toMatchObject({ status: "ready", checks: { migrations: { ok: true } } });
      const { user, token } = await createUser(server.graphqlUrl);
      const viewer = await gql(server.graphqlUrl, "{ viewer { email } }", { token });
      expect(viewer.data).toEqual({ viewer: { email: user.email } });
    } finally {
      expect(await server.kill("SIGTERM")).toBe(0);
    }
    expect(await migrationRows(dir)).toEqual((await prismaDeploy()).rows);
    expect(leftovers(dir)).toEqual([]);
  });

  it("lets one of two processes started together on an empty DATA_DIR have it, and refuses the other", async () => {
    const dir = mkdtempSync(path.join(scratch, "together-"));
    const [a, b] = await Promise.allSettled([
      spawnServer({ ...embedded, DATA_DIR: dir }),
      spawnServer({ ...embedded, DATA_DIR: dir }),
    ]);
    const started = [a, b].filter((r) => r.status === "fulfilled").map((r) => r.value);
    const refused = [a, b].filter((r) => r.status === "rejected").map((r) => String(r.reason));
    try {
      expect(started).toHaveLength(1);
      expect(refused).toEqual([expect.stringMatching(/is in use by process \d+/)]);
      expect((await fetch(`${started[0]!.url}/health/readiness`)).status).toBe(200);
    } finally {
      for (const server of started) expect(await server.kill("SIGTERM")).toBe(0);
    }
    expect(leftovers(dir)).toEqual([]);
    expect(await migrationRows(dir)).toEqual((await prismaDeploy()).rows);
  });

  it("clears what a killed template build left beside the template, and nothing a live one is making", async () => {
    const dead = spawn(process.execPath, ["-e", ""]);
    await new Promise((resolve) => dead.on("exit", resolve));
    const left = [`${TEMPLATE_DIR}.tmp-${dead.pid}`, `${TEMPLATE_DIR}.old-${dead.pid}`];
    const building = `${TEMPLATE_DIR}.tmp-${process.ppid}`;
    for (const dir of [...left, building]) mkdirSync(path.join(dir, "pgdata"), { recursive: true });
    try {
      expect(await ensurePgliteTemplate()).toBe("current");
      expect(left.filter((dir) => existsSync(dir))).toEqual([]);
      expect(existsSync(building)).toBe(true);
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
  });

  it("tells a stale template from a usable one", () => {
    const stale = (name: string, edit: (stamp: Record<string, unknown>) => void) => {
      const dir = templateCopy(name);
      const file = path.join(dir, "stamp.json");
      const stamp = JSON.parse(readFileSync(file, "utf8"));
      edit(stamp);
      writeFileSync(file, JSON.stringify(stamp));
      return templateProblem(dir);
    };
    expect(stale("other-pglite", (s) => (s.pglite = "0.0.1"))).toMatch(/PGlite 0\.0\.1/);
    expect(
      stale("other-branch", (s) =>
        (s.migrations as unknown[]).push({ name: "29990101000000_elsewhere", checksum: "0" }),
      ),
    ).toMatch(/29990101000000_elsewhere/);
    expect(
      stale("edited-migration", (s) => ((s.migrations as { checksum: string }[])[0]!.checksum = "0".repeat(64))),
    ).toMatch(/has not \(or has changed\)/);
    // Older than this code (a migration added since): usable, the server applies the rest.
    expect(stale("older", (s) => (s.migrations as unknown[]).pop())).toBeNull();
    const unreadable = templateCopy("unreadable-stamp");
    writeFileSync(path.join(unreadable, "stamp.json"), "{");
    expect(templateProblem(unreadable)).toMatch(/no readable stamp/);
    expect(templateProblem(path.join(scratch, "none"))).toMatch(/no template/);
  });

  it("ignores a template made by another PGlite, and starts from scratch", async () => {
    const template = templateCopy("wrong-stamp");
    const file = path.join(template, "stamp.json");
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, "utf8")), pglite: "0.0.1" }));
    const dir = mkdtempSync(path.join(scratch, "from-wrong-stamp-"));
    const { created, log } = await openAsServer(dir, template);
    expect(created).toBe("initdb");
    expect(log).toMatch(/template made by PGlite 0\.0\.1/);
    expect(await migrationRows(dir)).toEqual((await prismaDeploy()).rows);
  });

  it("ignores a template with truncated files, and starts from scratch without keeping any of them", async () => {
    const template = templateCopy("truncated");
    // The largest file (a WAL segment) cut in half: the stamp still reads as current.
    const entries = JSON.parse(readFileSync(path.join(template, "stamp.json"), "utf8")).entries as Record<
      string,
      number
    >;
    const [largest] = Object.entries(entries).sort((a, b) => b[1] - a[1])[0]!;
    truncateSync(path.join(template, "pgdata", largest), entries[largest]! / 2);
    expect(templateProblem(template)).toBeNull();
    const dir = mkdtempSync(path.join(scratch, "from-truncated-"));
    const { created, log } = await openAsServer(dir, template);
    expect(created).toBe("initdb");
    expect(log).toMatch(/template files differ from its stamp/);
    expect(statSync(path.join(dir, "pglite", largest)).size).toBe(entries[largest]);
    expect(leftovers(dir)).toEqual([]);
    expect(await migrationRows(dir)).toEqual((await prismaDeploy()).rows);
    // The server starts on what that made, as on any existing DATA_DIR.
    const server = await startServer({ ...embedded, DATA_DIR: dir });
    try {
      expect((await fetch(`${server.url}/health/readiness`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it("never leaves a DATA_DIR half-copied: a copy cut short leaves nothing a later start takes for a cluster", async () => {
    // A template with an entry the copy cannot reproduce, a FIFO (recorded in the stamp as such):
    // Node 20's cpSync fails on it part-way, after some files; Node 22's skips it, and the
    // copy then differs from the stamp. Either way nothing is put in place.
    const template = templateCopy("uncopyable");
    execFileSync("mkfifo", [path.join(template, "pgdata", "pg_stat", "zz-fifo")]);
    const stampFile = path.join(template, "stamp.json");
    const stamp = JSON.parse(readFileSync(stampFile, "utf8")) as { entries: Record<string, number> };
    writeFileSync(stampFile, JSON.stringify({ ...stamp, entries: { ...stamp.entries, "pg_stat/zz-fifo": -1 } }));
    const dir = mkdtempSync(path.join(scratch, "cut-short-"));
    const target = path.join(dir, "pglite");
    expect(seedFromTemplate(target, template)).toMatch(/template not copied/);
    expect(existsSync(target)).toBe(false);
    expect(leftovers(dir)).toEqual([]);

    // What a process killed mid-copy leaves (an empty target, a partial copy beside it) is
    // cleared by the next start, which copies the template whole.
    mkdirSync(target);
    const partial = path.join(dir, ".pglite-copy-999999");
    cpSync(path.join(TEMPLATE_DIR, "pgdata", "global"), path.join(partial, "global"), { recursive: true });
    const { created } = await openAsServer(dir, TEMPLATE_DIR);
    expect(created).toBe("template");
    expect(leftovers(dir)).toEqual([]);
    expect(await migrationRows(dir)).toEqual((await prismaDeploy()).rows);
  });
});
