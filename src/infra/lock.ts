// Named leases for leader election. Redis in the services mode (SET NX PX with a random
// token, renewed and released only by their holder); in-process in the embedded mode, where
// the single process always leads. Each acquisition gets a fencing token, strictly greater
// than any before it, that writers check so a deposed leader's late writes are refused.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

export interface Lease {
  name: string;
  token: string;
  fencingToken: bigint;
}

export interface LockService {
  acquire(name: string, ttlMs: number): Promise<Lease | null>;
  /** False when the lease was lost (expired and taken by another holder). */
  renew(lease: Lease, ttlMs: number): Promise<boolean>;
  release(lease: Lease): Promise<void>;
  /** Makes the next fencing token of `name` exceed `floor` (a token written down elsewhere). */
  raiseFence(name: string, floor: bigint): Promise<void>;
}

// Acquire and fence in one step: a holder that stalls between the two could otherwise end
// up with a higher fence than the holder that replaced it.
const ACQUIRE = `if redis.call("set", KEYS[1], ARGV[1], "PX", ARGV[2], "NX") then return redis.call("incr", KEYS[2]) else return 0 end`;
const RENEW = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;
const RAISE = `if tonumber(redis.call("get", KEYS[1]) or "0") < tonumber(ARGV[1]) then redis.call("set", KEYS[1], ARGV[1]) end return 1`;

export function createRedisLocks(redis: Redis): LockService {
  return {
    async acquire(name, ttlMs) {
      const token = randomUUID();
      const fence = Number(await redis.eval(ACQUIRE, 2, `lock:${name}`, `lock:${name}:fence`, token, ttlMs));
      return fence > 0 ? { name, token, fencingToken: BigInt(fence) } : null;
    },
    async renew(lease, ttlMs) {
      return (await redis.eval(RENEW, 1, `lock:${lease.name}`, lease.token, ttlMs)) === 1;
    },
    async release(lease) {
      await redis.eval(RELEASE, 1, `lock:${lease.name}`, lease.token);
    },
    async raiseFence(name, floor) {
      await redis.eval(RAISE, 1, `lock:${name}:fence`, floor.toString());
    },
  };
}

/**
 * `now` is injectable so that tests can let a lease lapse without waiting for it. Fencing
 * tokens start at the clock's milliseconds, so a restarted process's tokens exceed every
 * token its previous life wrote down.
 */
export function createInProcessLocks(now: () => number = Date.now): LockService {
  const held = new Map<string, { token: string; expiresAt: number }>();
  const fences = new Map<string, bigint>();
  const base = BigInt(now());
  const current = (name: string) => {
    const lock = held.get(name);
    return lock && lock.expiresAt > now() ? lock : undefined;
  };
  return {
    async acquire(name, ttlMs) {
      if (current(name)) return null;
      const token = randomUUID();
      held.set(name, { token, expiresAt: now() + ttlMs });
      const fencingToken = (fences.get(name) ?? base) + 1n;
      fences.set(name, fencingToken);
      return { name, token, fencingToken };
    },
    async renew(lease, ttlMs) {
      const lock = current(lease.name);
      if (lock?.token !== lease.token) return false;
      lock.expiresAt = now() + ttlMs;
      return true;
    },
    async release(lease) {
      if (held.get(lease.name)?.token === lease.token) held.delete(lease.name);
    },
    async raiseFence(name, floor) {
      if ((fences.get(name) ?? base) < floor) fences.set(name, floor);
    },
  };
}
