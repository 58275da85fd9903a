// Connection slots die with their instance. A server killed with its sockets open holds its
// users' slots only until its heartbeat lapses (seconds, not the minute a lost release takes),
// so subscribers resuming on another instance are then let in at the first try; one that
// stops cleanly gives them back at once; one whose heartbeat lapsed while it lived (a stall,
// a Redis outage of its own) has its still-open connections counted again at its next beat.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { decodeId } from "../src/schema/globalId.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { liveCursor, rawSocket, subscribe } from "./helpers/live.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { services } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";

const EVENTS =
  "subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { cursor } }";
const bearer = (user: TestUser) => ({ authorization: `Bearer ${user.token}` });
const wsUrl = (server: ServerProcess) => `${server.url.replace(/^http/, "ws")}/graphql`;
const ms = (since: number) => Math.round(performance.now() - since);

describe.runIf(services)("connection slots tied to a live instance", () => {
  let b: ServerProcess;
  let redis: Redis;
  let prefix: string;
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    // A Redis prefix of its own: the counts and heartbeats below are these servers' alone.
    const isolated = await isolatedServices("slots");
    cleanup = isolated.cleanup;
    prefix = isolated.env.REDIS_KEY_PREFIX as string;
    env = { ...isolated.env, JOBS_ENABLED: "false", WS_MAX_CONNECTIONS_PER_USER: "2" };
    redis = new Redis(services?.redisUrl as string);
    b = await spawnServer(env);
  });
  afterAll(async () => {
    await b?.kill("SIGTERM");
    redis?.disconnect();
    await cleanup?.();
  });

  const heartbeats = async () => new Set(await redis.keys(`${prefix}ws:instance:*`));
  /** Another server on the same database and Redis prefix, with the heartbeat key it renews. */
  async function startA(overrides: Record<string, string> = {}) {
    const before = await heartbeats();
    const a = await spawnServer({ ...env, ...overrides });
    onTestFinished(() => a.kill("SIGKILL").then(() => undefined));
    // Renewed from the start, before the server listens.
    const heartbeat = [...(await heartbeats())].find((k) => !before.has(k)) as string;
    return { a, heartbeat, instanceId: heartbeat.slice(`${prefix}ws:instance:`.length) };
  }
  const userSlots = (user: TestUser) => redis.zrange(`${prefix}ws:user:${decodeId(user.user.id).id}`, 0, -1);
  /** Resolves once `check` holds, asking Redis every 20 ms: a key lapsing sends no event. */
  async function poll(check: () => Promise<boolean>) {
    while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  async function record(user: TestUser, on: ServerProcess) {
    const r = await gql(on.graphqlUrl, "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }", {
      token: user.token,
      variables: { input: { event: { kind: "FILE_OPENED", filePath: "/slots/file.txt" } } },
    });
    if (r.errors) throw new Error(JSON.stringify(r.errors));
  }
  /** A connection as far as the server lets it go: acknowledged, or closed with a code. */
  async function connect(user: TestUser, on: ServerProcess) {
    const socket = rawSocket(wsUrl(on));
    await socket.opened;
    socket.send({ type: "connection_init", payload: bearer(user) });
    const answer = await Promise.race([
      socket.message((m) => m.type === "connection_ack").then(() => "ack" as const),
      socket.closed,
    ]);
    onTestFinished(() => socket.socket.close());
    return { socket, answer };
  }
  /** The user's limit of live feeds, on `on`, each having received an event: their cursors. */
  async function holdMaximum(user: TestUser, on: ServerProcess) {
    const after = await liveCursor(on.graphqlUrl, user.token, user.org.id, "EVENTS");
    const feeds = [];
    for (let i = 0; i < 2; i++) {
      const { socket, answer } = await connect(user, on);
      expect(answer).toBe("ack");
      socket.send({ id: "1", type: "subscribe", payload: { query: EVENTS, variables: { org: user.org.id, after } } });
      feeds.push(socket);
    }
    await record(user, b);
    const seen = await Promise.all(feeds.map((f) => f.message((m) => m.type === "next")));
    return seen.map((m) => (m.payload as { data: { eventsRecorded: { cursor: string } } }).data.eventsRecorded.cursor);
  }

  it("lets subscribers resume on another instance once a killed instance's heartbeat lapses", async () => {
    const alice = await createUser(b.graphqlUrl);
    const { a, heartbeat, instanceId } = await startA();
    const cursors = await holdMaximum(alice, a);
    expect((await userSlots(alice)).map((m) => m.split("|")[0])).toEqual([instanceId, instanceId]);
    // The limit holds across instances: one more, on B, is refused.
    expect((await connect(alice, b)).answer).toEqual({ code: 1013, reason: "Too many connections for this user" });

    const killed = performance.now();
    expect(await a.kill("SIGKILL")).toBe(null);
    await record(alice, b);
    await poll(async () => (await redis.exists(heartbeat)) === 0);
    const lapsed = ms(killed);
    // Resumed from where each feed was, at the first try: the dead instance's slots are dropped.
    const resumed = cursors.map((after) =>
      subscribe<{ cursor: string }>(wsUrl(b), bearer(alice), EVENTS, { org: alice.org.id, after }),
    );
    for (const feed of resumed) onTestFinished(() => feed.close());
    const missed = await Promise.all(resumed.map((f) => f.next()));
    const accepted = ms(killed);
    expect(missed.every((items) => items.length === 1)).toBe(true);
    expect(resumed.every((f) => f.errors.length === 0)).toBe(true);
    expect((await userSlots(alice)).some((m) => m.startsWith(instanceId))).toBe(false);
    console.log(
      `SIGKILL of an instance holding a user's ${cursors.length} slots: heartbeat gone after ${lapsed} ms, both subscribers resumed on the other instance after ${accepted} ms`,
    );
  });

  it("gives back a cleanly stopped instance's slots at once", async () => {
    const bob = await createUser(b.graphqlUrl);
    const { a, heartbeat } = await startA();
    await holdMaximum(bob, a);
    expect((await connect(bob, b)).answer).toMatchObject({ code: 1013 });

    const stopping = performance.now();
    expect(await a.kill("SIGTERM")).toBe(0);
    const stopped = ms(stopping);
    expect(await redis.exists(heartbeat)).toBe(0);
    expect(await userSlots(bob)).toEqual([]);
    expect((await connect(bob, b)).answer).toBe("ack");
    expect((await connect(bob, b)).answer).toBe("ack");
    console.log(`SIGTERM of an instance holding a user's 2 slots: exited after ${stopped} ms, slots free on exit`);
  });

  it("counts again the open connections of an instance whose heartbeat lapsed, at its next beat", async () => {
    const carol = await createUser(b.graphqlUrl);
    const { a, heartbeat, instanceId } = await startA();
    await holdMaximum(carol, a);
    // Stopped, so that no beat of A comes before B's look: as a stall past the heartbeat's life.
    a.child.kill("SIGSTOP");
    onTestFinished(() => void a.child.kill("SIGCONT"));
    await redis.del(heartbeat);
    // B drops A's slots at the limit, as it would for a dead instance: its connection is let in.
    expect((await connect(carol, b)).answer).toBe("ack");
    expect((await userSlots(carol)).some((m) => m.startsWith(instanceId))).toBe(false);

    const resumed = performance.now();
    a.child.kill("SIGCONT");
    await poll(async () => (await userSlots(carol)).filter((m) => m.startsWith(instanceId)).length === 2);
    const recounted = ms(resumed);
    expect(await redis.exists(heartbeat)).toBe(1);
    // A's two and B's one: over the limit until one closes, and nothing more is let in.
    expect(await userSlots(carol)).toHaveLength(3);
    expect((await connect(carol, b)).answer).toMatchObject({ code: 1013 });
    console.log(
      `An instance whose heartbeat was deleted: its 2 open connections counted again ${recounted} ms after it ran again`,
    );
  });

  it("counts again an instance's connections after a Redis outage of its own, without failing", async () => {
    const dave = await createUser(b.graphqlUrl);
    const target = new URL(services?.redisUrl as string);
    const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 6379) });
    onTestFinished(() => proxy.close());
    const { a, heartbeat, instanceId } = await startA({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    await holdMaximum(dave, a);

    const cut = performance.now();
    await proxy.cut();
    await poll(async () => (await redis.exists(heartbeat)) === 0);
    const lapsed = ms(cut);
    expect((await connect(dave, b)).answer).toBe("ack");

    const restored = performance.now();
    await proxy.restore();
    await poll(async () => (await userSlots(dave)).filter((m) => m.startsWith(instanceId)).length === 2);
    const recounted = ms(restored);
    expect((await connect(dave, b)).answer).toMatchObject({ code: 1013 });
    // Beats that failed meanwhile were no unhandled rejections: A is still up and serving.
    expect(a.child.exitCode).toBe(null);
    expect((await fetch(`${a.url}/health/liveness`)).status).toBe(200);
    console.log(
      `Redis cut from an instance: its heartbeat lapsed after ${lapsed} ms; after the restore, its 2 connections were counted again in ${recounted} ms`,
    );
  });
});
