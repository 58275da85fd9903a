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
  /** Drops this instance's pub/sub connection, which comes back by itself. */
  dropPubSub?: () => void;
}

const retention = { retentionMs: 3_600_000, retentionEvents: 600 };
const implementations: [string, () => Setup][] = [
  [
    "in-process",
    () => {
      const pubsub = createInProcessPubSub();
      return { live: createLive({ pubsub, log: createInProcessLiveLog(pubsub, retention), logger, maxQueue: 1000 }) };
    },
  ],
];
if (services) {
  const { redisUrl, redisKeyPrefix } = services;
  implementations.push([
    "Redis",
    () => {
      const prefix = `${redisKeyPrefix}log-${randomUUID().slice(0, 8)}:`;
      const redis = new Redis(redisUrl, { keyPrefix: prefix });
      const subscriber = new Redis(redisUrl, { keyPrefix: prefix });
      opened.push(redis, subscriber);
      const pubsub = createRedisPubSub(redis, subscriber, prefix);
      const log = createRedisLiveLog(redis, subscriber, prefix, retention);
      return {
        live: createLive({ pubsub, log, logger, maxQueue: 1000 }),
        dropPubSub: () => subscriber.disconnect(true),
      };
    },
  ]);
}

const publish = async (live: Live, org: string, ids: string[]) => {
  for (const id of ids) await live.publish("EVENTS", org, { id, kind: "CREATED" });
};
const label = (item: LiveItem | undefined) => (item?.kind === "GAP" ? "GAP" : item?.id);
const range = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe.each(implementations)("%s feed", (_kind, make) => {
  it("reports a GAP when entries are trimmed while a subscriber is catching up, and loses nothing else", async () => {
    const { live } = make();
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
    const { live } = make();
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

  it("reads back what pub/sub dropped while its connection was away", async (context) => {
    const { live, dropPubSub } = make();
    if (!dropPubSub) return context.skip();
    const org = randomUUID();
    const feed = live.subscribe("EVENTS", org, await live.head("EVENTS", org));
    await publish(live, org, ["before"]);
    expect(label((await feed.next()).value)).toBe("before");
    dropPubSub();
    // Published while this instance hears nothing, and nothing after it to reveal the hole.
    await publish(live, org, ["during"]);
    expect(label((await feed.next()).value)).toBe("during");
    await feed.return();
  });
});
