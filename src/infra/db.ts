// The one PrismaClient of the process, on PGlite (embedded) or PostgreSQL (services).
// Nothing above infra/ knows which: both speak PostgreSQL through a driver adapter.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import type { Config } from "../config.ts";
import { PrismaClient } from "../generated/prisma/client.ts";
import { createBreaker, guardAdapter } from "./breaker.ts";
import { withinDeadline } from "./deadline.ts";
import type { Logger } from "./logger.ts";
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

export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  return config.databaseUrl ? openPostgres(config, logger) : openPglite(config, logger);
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

async function openPglite(config: Config, logger: Logger): Promise<Database> {
  const dir = path.join(config.dataDir, "pglite");
  mkdirSync(dir, { recursive: true });
  const releaseLock = acquireDirLock(config.dataDir);
  let db: PGlite;
  try {
    db = await withTimeout(PGlite.create(dir), config.pgliteOpenTimeoutMs, dir);
  } catch (err) {
    releaseLock();
    if (err instanceof DatabaseOpenError) throw err;
    throw new DatabaseOpenError(
      `The embedded database in ${dir} could not be opened: ${(err as Error).message}. ` +
        `If it is damaged, move it aside (mv "${dir}" "${dir}.broken") to start with an empty one.`,
    );
  }
  logger.info({ dir }, "embedded PostgreSQL (PGlite) open");
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

/**
 * PGlite is single-process: a second process on the same directory corrupts it. A lock
 * file holding our pid refuses the second opener with a clear message; a lock left by a
 * process that no longer exists is taken over.
 */
function acquireDirLock(dataDir: string): () => void {
  const file = path.join(dataDir, "pglite.lock");
  for (let attempt = 0; ; attempt++) {
    try {
      // "wx": created only if absent, so two processes starting together cannot both win.
      writeFileSync(file, String(process.pid), { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
      const pid = Number(readFileSync(file, "utf8").trim());
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new DatabaseOpenError(
          `The embedded database in ${dataDir} is in use by process ${pid}. Stop that process, ` +
            `or start this one with another DATA_DIR.`,
        );
      }
      rmSync(file, { force: true }); // left by a process that is gone
    }
  }
  return () => {
    // Only our own lock: never one that another process has taken since.
    if (existsSync(file) && readFileSync(file, "utf8").trim() === String(process.pid)) rmSync(file, { force: true });
  };
}

function isAlive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
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
