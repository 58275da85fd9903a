// The feed machinery under the subscriptions, on both logs (in-process, and Redis Streams
// when the run has Redis): the orderings a client can only provoke by luck over a socket.
import { randomUUID } from "node:crypto";
import { setImmediate } from "node:timers/promises";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { createLive, type Live, type LiveItem } from "../src/infra/live.ts";
import { createInProcessLiveLog, createRedisLiveLog } from "../src/infra/liveLog.ts";
import { createLogger } from "../src/infra/logger.ts";
import { createInProcessPubSub, createRedisPubSub } from "../src/infra/pubsub.ts";
import { services, testEnv } from "./helpers/server.ts";

const logger = createLogger(loadConfig(testEnv()));
const opened: Redis[] = [];
afterAll(() => {
  for (const r of opened) r.disconnect();
});

interface Setup {
  live: Live;
  /** Redis only: a second instance on the same Redis, to publish while the first is cut off. */
  other?: Live;
  /** Has Redis cut this instance's pub/sub connection (and its commands one): both come back by themselves. */
  dropRedis?: (commandsToo: boolean) => Promise<void>;
  /** Lets a feed's entries expire, as Redis does after the retention. */
  expire?: (organizationId: string) => Promise<void>;
}

const retention = { retentionMs: 3_600_000, retentionEvents: 600 };
const implementations: [string, () => Promise<Setup>][] = [
  [
    "in-process",
    async () => {
      const pubsub = createInProcessPubSub();
      return { live: createLive({ pubsub, log: createInProcessLiveLog(pubsub, retention), logger, maxQueue: 1000 }) };
    },
  ],
];
if (services) {
  const { redisUrl, redisKeyPrefix } = services;
  implementations.push([
    "Redis",
    async () => {
      const prefix = `${redisKeyPrefix}log-${randomUUID().slice(0, 8)}:`;
      const name = `live-log-test-${randomUUID().slice(0, 8)}`;
      const instance = async (n: number) => {
        // As the server makes them (src/infra/redis.ts): commands fail fast while disconnected.
        const redis = new Redis(redisUrl, {
          keyPrefix: prefix,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          lazyConnect: true,
          connectionName: `${name}-${n}-commands`,
        });
        const subscriber = new Redis(redisUrl, { keyPrefix: prefix, connectionName: `${name}-${n}-subscriber` });
        opened.push(redis, subscriber);
        await redis.connect();
        const pubsub = createRedisPubSub(redis, subscriber, prefix);
        const log = createRedisLiveLog(redis, subscriber, prefix, retention);
        return { redis, subscriber, live: createLive({ pubsub, log, logger, maxQueue: 1000 }) };
      };
      const one = await instance(1);
      return {
        live: one.live,
        other: (await instance(2)).live,
        // Killed by the server, as a Redis restart or a network cut would: what is published
        // meanwhile never reaches this instance (a client-side close would still receive it).
        dropRedis: async (commandsToo) => {
          const admin = new Redis(redisUrl);
          const clients = String(await admin.client("LIST")).split("\n");
          const victims = [`${name}-1-subscriber`, ...(commandsToo ? [`${name}-1-commands`] : [])];
          for (const line of clients) {
            const id = /\bid=(\d+)\b/.exec(line)?.[1];
            const client = /\bname=(\S+)/.exec(line)?.[1];
            if (id && client && victims.includes(client)) await admin.client("KILL", "ID", id);
          }
          admin.disconnect();
        },
        expire: async (organizationId) => void (await one.redis.del(`live:{${organizationId}:EVENTS}`)),
      };
    },
  ]);
}

let notices = 0;
/** As the outbox relay appends: one notice at a time, each under an id of its own. */
const publish = async (live: Live, org: string, ids: string[]) => {
  for (const id of ids) {
    const notice = { feed: "EVENTS" as const, organizationId: org, change: { id, kind: "CREATED" as const } };
    expect(await live.append([{ ...notice, noticeId: String(++notices) }])).toBe(1);
  }
};
const label = (item: LiveItem | undefined) => (item?.kind === "GAP" ? "GAP" : item?.id);
const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe.each(implementations)("%s feed", (_kind, make) => {
  it("appends a notice relayed twice (by two relays, or after a crash) once", async () => {
    const { live, other } = await make();
    const org = randomUUID();
    const stream = live.subscribe("EVENTS", org, null);
    const first = stream.next();
    await live.listening("EVENTS", org);
    const notice = { feed: "EVENTS" as const, organizationId: org, change: { id: "once", kind: "CREATED" as const } };
    const noticeId = String(++notices);
    expect(await live.append([{ ...notice, noticeId }])).toBe(1);
    // Again from this instance, and from another: already there, so not appended.
    expect(await live.append([{ ...notice, noticeId }])).toBe(1);
    if (other) expect(await other.append([{ ...notice, noticeId }])).toBe(1);
    await publish(live, org, ["next"]);
    expect(label((await first).value)).toBe("once");
    expect(label((await stream.next()).value)).toBe("next");
    await stream.return?.(undefined);
  });

  it("reports a GAP when entries are trimmed while a subscriber is catching up, and loses nothing else", async () => {
    const { live } = await make();
    const org = randomUUID();
    const start = await live.head("EVENTS", org);
    await publish(live, org, range("a", 600));
    const feed = live.subscribe("EVENTS", org, start);
    const seen = [label((await feed.next()).value)];
    // While the subscriber holds the first page, 600 more push every one of those out.
    await publish(live, org, range("b", 600));
    while (seen.at(-1) !== "b599") seen.push(label((await feed.next()).value));
    expect(seen).toEqual([...range("a", 500), "GAP", ...range("b", 600)]);
    await feed.return();
  });

  it("ends a subscriber that stops reading with SLOW_CONSUMER, without harm to the process or others", async () => {
    const { live } = await make();
    const org = randomUUID();
    const stalled = live.subscribe("EVENTS", org, await live.head("EVENTS", org));
    const reader = live.subscribe("EVENTS", org, await live.head("EVENTS", org));
    const firstOfStalled = stalled.next();
    const read: string[] = [];
    const reading = (async () => {
      while (read.length < 1101) read.push(label((await reader.next()).value) as string);
    })();
    await publish(live, org, ["first"]);
    expect(label((await firstOfStalled).value)).toBe("first");
    for (const id of range("n", 1100)) {
      await publish(live, org, [id]);
      // A turn of the event loop per event: the reader keeps up, the stalled one does not read.
      await setImmediate();
    }
    await reading;
    expect(read).toEqual(["first", ...range("n", 1100)]);
    await expect(
      (async () => {
        for (;;) if ((await stalled.next()).done) return;
      })(),
    ).rejects.toMatchObject({ code: "SLOW_CONSUMER" });
    await reader.return();
  });

  it.for([
    ["its pub/sub connection", false],
    ["both its connections", true],
  ] as const)("reads back what pub/sub dropped while %s went away", async ([, commandsToo], context) => {
    const { live, other, dropRedis } = await make();
    if (!other || !dropRedis) return context.skip();
    const org = randomUUID();
    const feed = live.subscribe("EVENTS", org, await live.head("EVENTS", org));
    await publish(other, org, ["before"]);
    expect(label((await feed.next()).value)).toBe("before");
    await dropRedis(commandsToo);
    // Published elsewhere while this instance hears nothing, and nothing after it to reveal the hole.
    await publish(other, org, ["during"]);
    expect(label((await feed.next()).value)).toBe("during");
    await feed.return();
  });

  it("reports a GAP, and only then, when a client resumes a feed whose entries expired", async (context) => {
    const { live, expire } = await make();
    if (!expire) return context.skip();
    const org = randomUUID();
    const start = await live.head("EVENTS", org);
    await publish(live, org, ["a", "b"]);
    const first = live.subscribe("EVENTS", org, start);
    const a = (await first.next()).value as LiveItem;
    const b = (await first.next()).value as LiveItem;
    await first.return();
    await expire(org);

    // Missed b: a GAP at the newest cursor, then what comes next.
    const late = live.subscribe("EVENTS", org, a.cursor);
    const gap = (await late.next()).value as LiveItem;
    expect(gap).toMatchObject({ kind: "GAP", cursor: b.cursor });
    await publish(live, org, ["c"]);
    expect(label((await late.next()).value)).toBe("c");
    await late.return();

    // Had everything: no GAP, just what comes next.
    const upToDate = live.subscribe("EVENTS", org, b.cursor);
    const next = upToDate.next();
    await publish(live, org, ["d"]);
    expect(label((await next).value)).toBe("c");
    expect(label((await upToDate.next()).value)).toBe("d");
    await upToDate.return();
  });
});
