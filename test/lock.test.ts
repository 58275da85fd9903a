// Leases for leader election: one holder at a time, renewal and release only by the holder,
// and fencing tokens that only grow.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { createInProcessLocks, createRedisLocks, type LockService } from "../src/infra/lock.ts";
import { services } from "./helpers/server.ts";

const redis = services ? new Redis(services.redisUrl, { keyPrefix: services.redisKeyPrefix }) : undefined;
afterAll(() => redis?.disconnect());

/** Makes a lease lapse as if its TTL had run out. */
type Expire = (name: string) => Promise<void>;

const implementations: [string, () => { locks: LockService; expire: Expire }][] = [
  [
    "in-process",
    () => {
      let now = Date.now();
      const locks = createInProcessLocks(() => now);
      return {
        locks,
        expire: async () => {
          now += 60_000;
        },
      };
    },
  ],
];
if (redis) {
  implementations.push([
    "Redis",
    () => ({ locks: createRedisLocks(redis), expire: async (name) => void (await redis.del(`lock:${name}`)) }),
  ]);
}

describe.each(implementations)("%s locks", (_kind, make) => {
  it("grants one holder at a time, renews and releases only for the holder, and fences", async () => {
    const { locks, expire } = make();
    const name = `leader-${randomUUID()}`;
    const first = await locks.acquire(name, 10_000);
    expect(first).not.toBeNull();
    expect(await locks.acquire(name, 10_000)).toBeNull();
    expect(await locks.renew(first!, 10_000)).toBe(true);

    await expire(name);
    const second = await locks.acquire(name, 10_000);
    expect(second).not.toBeNull();
    expect(second!.fencingToken).toBeGreaterThan(first!.fencingToken);
    // The deposed holder can neither renew nor release the new holder's lease.
    expect(await locks.renew(first!, 10_000)).toBe(false);
    await locks.release(first!);
    expect(await locks.acquire(name, 10_000)).toBeNull();

    await locks.release(second!);
    const third = await locks.acquire(name, 10_000);
    expect(third!.fencingToken).toBeGreaterThan(second!.fencingToken);
  });

  it("catches its fencing tokens up to one written down elsewhere, and never lowers them", async () => {
    const { locks } = make();
    const name = `leader-${randomUUID()}`;
    const first = await locks.acquire(name, 10_000);
    await locks.release(first!);
    await locks.raiseFence(name, first!.fencingToken + 1000n);
    const second = await locks.acquire(name, 10_000);
    expect(second!.fencingToken).toBe(first!.fencingToken + 1001n);
    await locks.release(second!);
    await locks.raiseFence(name, 5n);
    expect((await locks.acquire(name, 10_000))!.fencingToken).toBe(second!.fencingToken + 1n);
  });
});
