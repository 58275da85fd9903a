// Rate-limit counters (rate-limiter-flexible): in Redis in the services mode, so every instance
// draws on one budget per key, and in process in the embedded mode. What the limits are, and
// who is charged, is features/limits/budgets.ts; this file only picks the store.
import type { Redis } from "ioredis";
import { type RateLimiterAbstract, RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible";

export interface LimiterRule {
  /** Points a key may spend in a window. */
  points: number;
  /** The window, in seconds, from a key's first charge (rate-limiter-flexible's fixed window). */
  durationSeconds: number;
}

/** A counter per key for one named bucket. Its name is part of every key (rl:<name>:<key>). */
export type LimiterFactory = (name: string, rule: LimiterRule) => RateLimiterAbstract;

export function createInProcessLimiters(): LimiterFactory {
  return (name, rule) =>
    new RateLimiterMemory({ keyPrefix: `rl:${name}`, points: rule.points, duration: rule.durationSeconds });
}

/**
 * Keys live under REDIS_KEY_PREFIX (the client's keyPrefix) as rl:<name>:<key>. While Redis
 * is out of reach (not connected: refused at once rather than queued), each instance counts in
 * its own memory with the same rule: budgets are per instance for that time, never unlimited
 * and never refusing everything.
 */
export function createRedisLimiters(redis: Redis): LimiterFactory {
  return (name, rule) => {
    const options = { keyPrefix: `rl:${name}`, points: rule.points, duration: rule.durationSeconds };
    return new RateLimiterRedis({
      ...options,
      storeClient: redis,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory(options),
    });
  };
}
