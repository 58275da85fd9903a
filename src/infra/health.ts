// Liveness says the process answers; readiness says it can serve: database reachable, Redis
// reachable when configured, no pending migrations, and not shutting down.
import type { Redis } from "ioredis";
import type { RawSql } from "./db.ts";
import type { Logger } from "./logger.ts";
import { pendingMigrations } from "./migrations.ts";

const CHECK_TIMEOUT_MS = 2_000;

export interface CheckResult {
  ok: boolean;
}

export interface Readiness {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

export function createHealth(deps: { raw: RawSql; redis?: Redis; isDraining: () => boolean; logger: Logger }) {
  // Once the database has every migration, it keeps them: no need to ask on every probe.
  let migrated = false;
  const checks: Record<string, () => Promise<void>> = {
    database: async () => {
      await deps.raw.query("SELECT 1");
    },
    migrations: async () => {
      if (migrated) return;
      const pending = await pendingMigrations(deps.raw);
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
            // The route is public: it names the failing check; hosts and ports go to the log.
            results[name] = { ok: false };
            deps.logger.warn({ check: name, err: (err as Error).message }, "readiness check failed");
          }
        }),
      );
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
