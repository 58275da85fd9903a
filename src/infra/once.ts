// Marks that are set once and lapse: "this download link was used". Redis (SET NX PX) in the
// services mode, so that a link used on one instance is used on all; in-process in the
// embedded mode, where there is one.
import type { Redis } from "ioredis";

export interface Once {
  /** True the first time `key` is claimed within `ttlMs`; false after that. Throws while Redis is unreachable. */
  claim(key: string, ttlMs: number): Promise<boolean>;
}

export function createRedisOnce(redis: Redis): Once {
  return {
    async claim(key, ttlMs) {
      return (await redis.set(`once:${key}`, "1", "PX", Math.max(1, Math.ceil(ttlMs)), "NX")) === "OK";
    },
  };
}

export function createInProcessOnce(now: () => number = Date.now): Once {
  const claimed = new Map<string, number>();
  return {
    async claim(key, ttlMs) {
      const t = now();
      // Lapsed marks go as new ones come, oldest first (about the order they lapse in).
      for (const [k, until] of claimed) {
        if (until > t) break;
        claimed.delete(k);
      }
      if (claimed.has(key)) return false;
      claimed.set(key, t + ttlMs);
      return true;
    },
  };
}
