// The one place that picks the run mode: embedded (PGlite, in-process pub/sub and locks) or
// services (PostgreSQL, Redis). Everything above receives the same Runtime either way.
import type { Redis } from "ioredis";
import type { Config, SecretsKey } from "../config.ts";
import { type ConnectionSlots, createInProcessSlots, createRedisSlots } from "./connectionSlots.ts";
import { type Database, openDatabase } from "./db.ts";
import { createInProcessDocuments, createRedisDocuments, type DocumentStore } from "./documentStore.ts";
import { createInProcessLiveLog, createRedisLiveLog, type LiveLog } from "./liveLog.ts";
import { createInProcessLocks, createRedisLocks, type LockService } from "./lock.ts";
import type { Logger } from "./logger.ts";
import { applyPendingMigrations, FailedMigrationError, pendingMigrations } from "./migrations.ts";
import { createInProcessOnce, createRedisOnce, type Once } from "./once.ts";
import { createInProcessPubSub, createRedisPubSub, type PubSub } from "./pubsub.ts";
import { createInProcessLimiters, createRedisLimiters, type LimiterFactory } from "./rateLimit.ts";
import { createRedis } from "./redis.ts";
import { createInProcessResponseStore, createRedisResponseStore, type ResponseStore } from "./responseCache.ts";
import { createSecretBox, embeddedSecretsKey, type SecretBox } from "./secretBox.ts";

export interface Runtime {
  db: Database;
  secrets: SecretBox;
  redis?: Redis;
  pubsub: PubSub;
  liveLog: LiveLog;
  /** WebSocket connections per user and address, counted across instances. */
  slots: ConnectionSlots;
  locks: LockService;
  /** Marks set once across instances (a download link spent). */
  once: Once;
  /** Rate-limit counters, shared by the instances in the services mode. */
  limiters: LimiterFactory;
  /** Documents registered by automatic persisted queries. */
  documents: DocumentStore;
  /** Answers kept by the response cache; null when RESPONSE_CACHE is off. */
  responses: ResponseStore | null;
  close(): Promise<void>;
}

/** A connection's slot lapses this long after its instance last refreshed it (every third of it). */
export const SLOT_TTL_MS = 60_000;
/** Each instance's heartbeat is renewed this often; its slots go once it misses three. */
export const SLOT_HEARTBEAT_MS = 1_000;

export class StartupError extends Error {
  override name = "StartupError";
}

export async function openRuntime(config: Config, logger: Logger): Promise<Runtime> {
  const db = await openDatabase(config, logger);
  try {
    await checkMigrations(config, db, logger);
  } catch (err) {
    await db.close();
    throw err;
  }
  const keys = config.secretsKeys as SecretsKey[];
  const secrets = createSecretBox(keys.length ? keys : [embeddedSecretsKey(config.dataDir)]);
  if (config.mode === "embedded") {
    const pubsub = createInProcessPubSub();
    return {
      db,
      secrets,
      pubsub,
      liveLog: createInProcessLiveLog(pubsub, config.live),
      slots: createInProcessSlots(),
      locks: createInProcessLocks(),
      once: createInProcessOnce(),
      limiters: createInProcessLimiters(),
      documents: createInProcessDocuments(),
      responses: config.responseCache.enabled ? createInProcessResponseStore(config.responseCache) : null,
      close: () => db.close(),
    };
  }

  let redis: Redis | undefined;
  let subscriber: Redis | undefined;
  try {
    redis = await createRedis(config, logger, "commands");
    subscriber = await createRedis(config, logger, "subscriber");
    await Promise.all([redis.connect(), subscriber.connect()]);
  } catch (err) {
    redis?.disconnect();
    subscriber?.disconnect();
    await db.close();
    throw new StartupError(`Redis at REDIS_URL is unreachable: ${(err as Error).message}`);
  }
  const slots = createRedisSlots(redis, { ttlMs: SLOT_TTL_MS, heartbeatMs: SLOT_HEARTBEAT_MS });
  return {
    db,
    secrets,
    redis,
    pubsub: createRedisPubSub(redis, subscriber, config.redisKeyPrefix, (err) =>
      logger.warn({ err: err.message }, "pub/sub message not published"),
    ),
    liveLog: createRedisLiveLog(redis, subscriber, config.redisKeyPrefix, config.live),
    slots,
    locks: createRedisLocks(redis),
    once: createRedisOnce(redis),
    limiters: createRedisLimiters(redis),
    documents: createRedisDocuments(redis, config.documents.persistedTtlSeconds),
    responses: config.responseCache.enabled ? createRedisResponseStore(redis, config.responseCache.ttlSeconds) : null,
    async close() {
      await slots.close();
      await Promise.allSettled([redis.quit(), subscriber.quit()]);
      await db.close();
    },
  };
}

async function checkMigrations(config: Config, db: Database, logger: Logger) {
  if (config.mode === "embedded") {
    const applied = await applyPendingMigrations(db.raw);
    if (applied.length) logger.info({ applied }, "applied migrations to the embedded database");
    return;
  }
  let pending: string[];
  try {
    pending = await pendingMigrations(db.raw);
  } catch (err) {
    if (err instanceof FailedMigrationError) throw new StartupError(err.message);
    if (config.production)
      throw new StartupError(`PostgreSQL at DATABASE_URL is unreachable: ${(err as Error).message}`);
    // Outside production the server starts anyway; readiness reports the database until it is back.
    logger.warn({ err: (err as Error).message }, "database unreachable at start");
    return;
  }
  if (!pending.length) return;
  if (config.production) {
    throw new StartupError(
      `${pending.length} database migration(s) pending (${pending.join(", ")}). Apply them with: npm run db:deploy`,
    );
  }
  logger.warn({ pending }, "database migrations pending: run npm run db:deploy");
}
