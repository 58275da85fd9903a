// ioredis clients for the services mode. Every key goes through keyPrefix, so tests and
// deployments sharing one Redis never see each other's keys.
import type { Redis } from "ioredis";
import type { Config } from "../config.ts";
import type { Logger } from "./logger.ts";

/** Async: ioredis is loaded in the services mode only; the embedded mode never pays its ~120 ms. */
export async function createRedis(config: Config, logger: Logger, role: string): Promise<Redis> {
  if (!config.redisUrl) throw new Error("createRedis called without REDIS_URL");
  const { Redis } = await import("ioredis");
  const client = new Redis(config.redisUrl, {
    keyPrefix: config.redisKeyPrefix,
    connectionName: `floyo-${role}`,
    // Fail commands fast while disconnected, so readiness and requests answer instead of queueing.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: role === "subscriber",
    // A Redis that stops answering (without closing) fails a command, not the request forever.
    ...(role === "subscriber" ? {} : { commandTimeout: 5_000 }),
    lazyConnect: true,
  });
  client.on("error", (err) => logger.warn({ err: err.message, role }, "redis error"));
  return client;
}
