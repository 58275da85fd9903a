// Counts open WebSocket connections per user and per address across every instance, so a
// limit holds behind a load balancer. Redis sorted sets in the services mode; a map in the
// embedded mode.
//
// A slot belongs to its instance while that instance lives: its member is
// `<instanceId>|<connectionId>`, and every instance renews a heartbeat key of its own each
// second. An instance killed without closing its sockets stops renewing it; once it lapses
// (a few seconds), an acquire that finds the limit reached drops that instance's slots
// before it refuses, so clients resuming on the other instances are not refused for slots
// nobody holds. Members are also scored by when they lapse (SLOT_TTL_MS, refreshed while
// held): a slot whose release was lost (Redis away at that moment) goes that way.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export interface ConnectionSlots {
  /** Takes a slot under `key` for `connectionId` unless `limit` are taken. */
  acquire(key: string, connectionId: string, limit: number): Promise<boolean>;
  release(key: string, connectionId: string): Promise<void>;
  /** Gives back what this instance holds, at once. */
  close(): Promise<void>;
}

// KEYS[1] the slot set. ARGV: now, lapse time, member, limit, set TTL, the heartbeat keys'
// prefix (ioredis' keyPrefix included: it applies to KEYS alone), this instance's id. The
// heartbeat keys are built here, which a single Redis allows (Redis Cluster would not).
// The sweep runs only at the limit: below it, dead members change no answer.
const ACQUIRE = `
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[1])
if redis.call("ZSCORE", KEYS[1], ARGV[3]) then return 1 end
local limit = tonumber(ARGV[4])
if redis.call("ZCARD", KEYS[1]) >= limit then
  local alive = {}
  for _, member in ipairs(redis.call("ZRANGE", KEYS[1], 0, -1)) do
    local instance = string.match(member, "^(.-)|")
    if instance and instance ~= ARGV[7] then
      if alive[instance] == nil then alive[instance] = redis.call("EXISTS", ARGV[6] .. instance) == 1 end
      if not alive[instance] then redis.call("ZREM", KEYS[1], member) end
    end
  end
  if redis.call("ZCARD", KEYS[1]) >= limit then return 0 end
end
redis.call("ZADD", KEYS[1], ARGV[2], ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[5])
return 1`;

// 1 when the heartbeat was gone (lapsed in an outage or a stall, or the first beat): other
// instances may have dropped this one's slots meanwhile.
const BEAT = `
if redis.call("SET", KEYS[1], "1", "PX", ARGV[1], "NX") then return 1 end
redis.call("PEXPIRE", KEYS[1], ARGV[1])
return 0`;

export function createRedisSlots(redis: Redis, timing: { ttlMs: number; heartbeatMs: number }): ConnectionSlots {
  const { ttlMs, heartbeatMs } = timing;
  const instanceId = randomUUID();
  const key = (name: string) => `ws:${name}`;
  const heartbeatPrefix = "ws:instance:";
  const heartbeat = `${heartbeatPrefix}${instanceId}`;
  const member = (connectionId: string) => `${instanceId}|${connectionId}`;
  // What this instance holds (WebSockets and SSE streams alike), kept from lapsing while open.
  const held = new Map<string, [name: string, member: string]>();
  // Releases Redis did not take (it was away): sent again with the next beat that gets through,
  // or a resuming subscriber would be refused for its own closed connection until it lapsed.
  const unreleased = new Map<string, [name: string, member: string]>();
  let closed = false;

  const releaseLeftovers = () => {
    if (!unreleased.size) return;
    const pipeline = redis.pipeline();
    const sent = [...unreleased];
    for (const [, [name, m]] of sent) pipeline.zrem(key(name), m);
    pipeline.exec().then(
      () => {
        for (const [id] of sent) unreleased.delete(id);
      },
      () => undefined,
    );
  };

  const readd = (options: { onlyExisting: boolean }) => {
    if (!held.size) return;
    const pipeline = redis.pipeline();
    const until = Date.now() + ttlMs;
    for (const [name, m] of held.values()) {
      if (options.onlyExisting) pipeline.zadd(key(name), "XX", until, m);
      else pipeline.zadd(key(name), until, m);
      pipeline.pexpire(key(name), ttlMs);
    }
    pipeline.exec().catch(() => undefined);
  };
  // Three beats to a heartbeat's life: one late beat does not drop this instance's slots.
  const beat = () => {
    redis.eval(BEAT, 1, heartbeat, heartbeatMs * 3).then(
      (lapsed) => {
        if (closed) return;
        if (lapsed === 1) readd({ onlyExisting: false });
        releaseLeftovers();
      },
      () => undefined,
    );
  };
  beat();
  const beating = setInterval(beat, heartbeatMs);
  const refresh = setInterval(() => readd({ onlyExisting: true }), ttlMs / 3);
  beating.unref();
  refresh.unref();

  return {
    async acquire(name, connectionId, limit) {
      const now = Date.now();
      const m = member(connectionId);
      const ok =
        (await redis.eval(
          ACQUIRE,
          1,
          key(name),
          now,
          now + ttlMs,
          m,
          limit,
          ttlMs,
          `${redis.options.keyPrefix ?? ""}${heartbeatPrefix}`,
          instanceId,
        )) === 1;
      if (ok) held.set(`${name}|${connectionId}`, [name, m]);
      return ok;
    },
    async release(name, connectionId) {
      const id = `${name}|${connectionId}`;
      held.delete(id);
      try {
        await redis.zrem(key(name), member(connectionId));
      } catch (err) {
        unreleased.set(id, [name, member(connectionId)]);
        throw err;
      }
    },
    async close() {
      closed = true;
      clearInterval(beating);
      clearInterval(refresh);
      // Sent before the client quits: with the heartbeat gone, anything left is dropped at once.
      const pipeline = redis.pipeline();
      for (const [name, m] of held.values()) pipeline.zrem(key(name), m);
      pipeline.del(heartbeat);
      held.clear();
      await pipeline.exec().catch(() => undefined);
    },
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
    close: async () => undefined,
  };
}

/** The slot names a connection takes, whatever carries it (a WebSocket, an SSE stream). */
export const slotOf = {
  ip: (ip: string | null) => `ip:${ip ?? "unknown"}`,
  who: (principal: { kind: "user"; userId: string } | { kind: "apiKey"; apiKeyId: string }) =>
    principal.kind === "user" ? `user:${principal.userId}` : `key:${principal.apiKeyId}`,
};
