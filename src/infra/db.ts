// The one PrismaClient of the process, on PGlite (embedded) or PostgreSQL (services).
// Nothing above infra/ knows which: both speak PostgreSQL through a driver adapter.
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Config } from "../config.ts";
import { PrismaClient } from "../generated/prisma/client.ts";
import { createBreaker, guardAdapter } from "./breaker.ts";
import { withinDeadline } from "./deadline.ts";
import { acquireLock, DirLockedError } from "./dirLock.ts";
import type { Logger } from "./logger.ts";
import { INITDB_PARAMS, seedFromTemplate } from "./pgliteTemplate.ts";
import { createStatementNamer } from "./statementNames.ts";

export type { PrismaClient };

/** Raw access for the few things Prisma does not do: migrations and health pings. */
export interface RawSql {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements (a migration). */
  exec(sql: string): Promise<void>;
}

/** What the pool and the breaker are doing now: for metrics and readiness. Pool is null when embedded. */
export interface DatabaseStats {
  pool: { total: number; idle: number; waiting: number; max: number } | null;
  breaker: "closed" | "open" | "half-open";
}

export interface Database {
  prisma: PrismaClient;
  raw: RawSql;
  stats(): DatabaseStats;
  close(): Promise<void>;
}

export class DatabaseOpenError extends Error {
  override name = "DatabaseOpenError";
}

/** `pgliteTemplate`: where the embedded mode's template is (tests point it at others). */
export async function openDatabase(
  config: Config,
  logger: Logger,
  options: { pgliteTemplate?: string } = {},
): Promise<Database> {
  return config.databaseUrl ? openPostgres(config, logger) : openPglite(config, logger, options.pgliteTemplate);
}

function openPostgres(config: Config, logger: Logger): Database {
  const { database } = config;
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.databasePoolSize,
    // Also how long a caller waits in the pool's queue for a connection.
    connectionTimeoutMillis: database.connectTimeoutMs,
    idleTimeoutMillis: 30_000,
    // Sent with each new connection: PostgreSQL cancels a statement running longer.
    statement_timeout: database.statementTimeoutMs,
    // A server that stops answering without closing (a network partition) cannot cancel
    // anything: the client gives up a little after the statement timeout (SERVICE_UNAVAILABLE),
    // and dead peers are found by TCP keep-alive.
    query_timeout: database.statementTimeoutMs + 5_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", (err) => logger.warn({ err: err.message }, "idle database connection lost"));
  const breaker = createBreaker({
    failures: database.breakerFailures,
    resetMs: database.breakerResetMs,
    logger,
    // This call would wait in the queue behind more than the bound: shed it, and open. A full
    // pool queues even callers an idle connection is about to serve (on its next tick): those
    // are not waiting for a connection, so idle ones are taken off the queue's length.
    saturated: () =>
      pool.totalCount >= config.databasePoolSize && pool.waitingCount - pool.idleCount >= database.poolMaxWaiting,
  });
  const adapter = guardAdapter(
    new PrismaPg(pool, { statementNameGenerator: createStatementNamer(database.preparedStatements) }),
    breaker,
  );
  // "minimal": logged Prisma errors carry no argument values (which may be personal data).
  const prisma = new PrismaClient({ adapter, errorFormat: "minimal" });
  return {
    prisma,
    stats: () => ({
      pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: config.databasePoolSize },
      breaker: breaker.state(),
    }),
    raw: {
      query: (sql, params) => breaker.run(async () => (await pool.query(sql, params)).rows),
      exec: (sql) =>
        breaker.run(async () => {
          await pool.query(sql);
        }),
    },
    async close() {
      await prisma.$disconnect();
      // A query stuck on a connection that went silent (a network cut) would hold pool.end()
      // forever: shutdown gives it a few seconds, then moves on.
      if (!(await withinDeadline(pool.end(), 5_000)))
        logger.warn("database pool did not close within 5 s: leaving its connections");
    },
  };
}

// PostgreSQL's default 128 MB of shared buffers are set up at every open, in WebAssembly: a
// third of the open's time (measured on an existing directory: 960 ms with 128 MB, 570 ms
// with 16 MB). An embedded database is one process's, small; reads beyond the buffers come
// from the OS's file cache.
const PGLITE_START_PARAMS = [...PGlite.defaultStartParams, "-c", "shared_buffers=16MB"];

async function openPglite(config: Config, logger: Logger, templateDir?: string): Promise<Database> {
  const dir = path.join(config.dataDir, "pglite");
  mkdirSync(config.dataDir, { recursive: true });
  const releaseLock = acquireDirLock(config.dataDir);
  const open = () =>
    withTimeout(
      // initdb's options serve only when it runs (no usable template): as the template's were.
      PGlite.create(dir, { startParams: PGLITE_START_PARAMS, initDbStartParams: INITDB_PARAMS }),
      config.pgliteOpenTimeoutMs,
      dir,
    );
  let db: PGlite;
  // How this open made the cluster, if it did: copied from the template, or by initdb.
  let created: "template" | "initdb" | undefined;
  try {
    if (!existsSync(dir) || readdirSync(dir).length === 0) {
      const problem = seedFromTemplate(dir, templateDir);
      created = problem ? "initdb" : "template";
      if (problem) logger.info({ reason: problem }, "embedded database: no usable template, running initdb");
    }
    try {
      db = await open();
    } catch (err) {
      // A copy made a moment ago holds no data: one that fails to open is dropped for initdb.
      // Not after a timeout: the open still running would write into the new directory.
      if (created !== "template" || err instanceof DatabaseOpenError) throw err;
      logger.warn({ err: (err as Error).message }, "embedded database: template copy did not open, running initdb");
      rmSync(dir, { recursive: true, force: true });
      created = "initdb";
      db = await open();
    }
  } catch (err) {
    releaseLock();
    if (err instanceof DatabaseOpenError) throw err;
    throw new DatabaseOpenError(
      `The embedded database in ${dir} could not be opened: ${(err as Error).message}. ` +
        `If it is damaged, move it aside (mv "${dir}" "${dir}.broken") to start with an empty one.`,
    );
  }
  logger.info({ dir, created }, "embedded PostgreSQL (PGlite) open");
  // One code path with the services mode: the same breaker, which in-process rarely opens.
  const breaker = createBreaker({
    failures: config.database.breakerFailures,
    resetMs: config.database.breakerResetMs,
    logger,
  });
  // The adapter is typed against another copy of @prisma/driver-adapter-utils; same shape at run time.
  const adapter = guardAdapter(new PrismaPGlite(db) as unknown as PrismaPg, breaker);
  const prisma = new PrismaClient({ adapter, errorFormat: "minimal" });
  return {
    prisma,
    stats: () => ({ pool: null, breaker: breaker.state() }),
    raw: {
      query: (sql, params) => breaker.run(async () => (await db.query(sql, params)).rows as never[]),
      exec: (sql) =>
        breaker.run(async () => {
          await db.exec(sql);
        }),
    },
    async close() {
      await prisma.$disconnect();
      await db.close();
      releaseLock();
    },
  };
}

/** The data directory's lock (infra/dirLock.ts), refusing a second opener with a clear message. */
function acquireDirLock(dataDir: string): () => void {
  try {
    return acquireLock(path.join(dataDir, "pglite.lock"));
  } catch (err) {
    if (!(err instanceof DirLockedError)) throw err;
    const { pid, host } = err.owner;
    throw new DatabaseOpenError(
      `The embedded database in ${dataDir} is in use by process ${pid}${host === hostname() ? "" : ` on ${host}`}. ` +
        "Stop that process, or start this one with another DATA_DIR.",
    );
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, dir: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DatabaseOpenError(
            `The embedded database in ${dir} did not open within ${ms} ms; it may be damaged. ` +
              `Move it aside (mv "${dir}" "${dir}.broken") to start with an empty one.`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
