// Liveness says the process answers; readiness says it can serve: database reachable (and its
// circuit breaker not open), Redis reachable when configured, no pending migrations, and not
// shutting down.
import type { Redis } from "ioredis";
import { type BreakerState, isCircuitOpen } from "./breaker.ts";
import type { Database } from "./db.ts";
import type { Logger } from "./logger.ts";
import { pendingMigrations } from "./migrations.ts";

const CHECK_TIMEOUT_MS = 2_000;

export interface CheckResult {
  ok: boolean;
  /** The database check's: the circuit breaker's state after the check. */
  breaker?: BreakerState;
}

export interface Readiness {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

export function createHealth(deps: {
  db: Pick<Database, "raw" | "stats">;
  redis?: Redis;
  isDraining: () => boolean;
  logger: Logger;
}) {
  const { raw } = deps.db;
  // Once the database has every migration, it keeps them: no need to ask on every probe.
  let migrated = false;
  const checks: Record<string, () => Promise<void>> = {
    // Through the breaker: refused at once while it is open (probes do not hammer a database
    // that is down), and the probe that may close it once its reset interval has passed.
    database: async () => {
      await raw.query("SELECT 1");
    },
    migrations: async () => {
      if (migrated) return;
      const pending = await pendingMigrations(raw);
      if (pending.length) throw new Error(`${pending.length} pending: ${pending.join(", ")}; run npm run db:deploy`);
      migrated = true;
    },
  };
  const { redis } = deps;
  if (redis) {
    checks.redis = async () => {
      await redis.ping();
    };
  }

  return {
    async readiness(): Promise<Readiness> {
      const results: Record<string, CheckResult> = {};
      await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await withTimeout(check(), CHECK_TIMEOUT_MS);
            results[name] = { ok: true };
          } catch (err) {
            // The route is public: it names the failing check; hosts and ports go to the log,
            // once per probe, except the breaker's refusals: it said once that it opened.
            results[name] = { ok: false };
            if (!isCircuitOpen(err))
              deps.logger.warn({ check: name, err: (err as Error).message }, "readiness check failed");
          }
        }),
      );
      const database = results.database;
      if (database) database.breaker = deps.db.stats().breaker;
      if (deps.isDraining()) results.shutdown = { ok: false };
      return { ok: Object.values(results).every((r) => r.ok), checks: results };
    },
  };
}

export type Health = ReturnType<typeof createHealth>;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
