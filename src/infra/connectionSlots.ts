// Counts open WebSocket connections per user and per address across every instance, so a
// limit holds behind a load balancer. Redis sorted sets in the services mode (a member per
// connection, scored by when it lapses: an instance that dies without closing its sockets
// frees their slots once it stops refreshing them); a map in the embedded mode.
import type { Redis } from "ioredis";

export interface ConnectionSlots {
  /** Takes a slot under `key` for `connectionId` unless `limit` are taken. */
  acquire(key: string, connectionId: string, limit: number): Promise<boolean>;
  release(key: string, connectionId: string): Promise<void>;
  close(): void;
}

const ACQUIRE = `
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[1])
if redis.call("ZSCORE", KEYS[1], ARGV[3]) then return 1 end
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[5])
return 1`;

export function createRedisSlots(redis: Redis, ttlMs: number): ConnectionSlots {
  const key = (name: string) => `ws:${name}`;
  // What this instance holds (WebSockets and SSE streams alike), kept from lapsing while open.
  const held = new Map<string, [name: string, connectionId: string]>();
  const refresh = setInterval(() => {
    if (!held.size) return;
    const pipeline = redis.pipeline();
    const until = Date.now() + ttlMs;
    for (const [name, connectionId] of held.values()) {
      pipeline.zadd(key(name), "XX", until, connectionId);
      pipeline.pexpire(key(name), ttlMs);
    }
    pipeline.exec().catch(() => undefined);
  }, ttlMs / 3);
  refresh.unref();
  return {
    async acquire(name, connectionId, limit) {
      const now = Date.now();
      const ok = (await redis.eval(ACQUIRE, 1, key(name), now, now + ttlMs, connectionId, limit, ttlMs)) === 1;
      if (ok) held.set(`${name}|${connectionId}`, [name, connectionId]);
      return ok;
    },
    async release(name, connectionId) {
      held.delete(`${name}|${connectionId}`);
      await redis.zrem(key(name), connectionId);
    },
    close: () => clearInterval(refresh),
  };
}

export function createInProcessSlots(): ConnectionSlots {
  const taken = new Map<string, Set<string>>();
  return {
    async acquire(name, connectionId, limit) {
      const set = taken.get(name) ?? new Set<string>();
      if (!set.has(connectionId) && set.size >= limit) return false;
      set.add(connectionId);
      taken.set(name, set);
      return true;
    },
    async release(name, connectionId) {
      const set = taken.get(name);
      set?.delete(connectionId);
      if (set?.size === 0) taken.delete(name);
    },
    close: () => undefined,
  };
}

/** The slot names a connection takes, whatever carries it (a WebSocket, an SSE stream). */
export const slotOf = {
  ip: (ip: string | null) => `ip:${ip ?? "unknown"}`,
  who: (principal: { kind: "user"; userId: string } | { kind: "apiKey"; apiKeyId: string }) =>
    principal.kind === "user" ? `user:${principal.userId}` : `key:${principal.apiKeyId}`,
};
