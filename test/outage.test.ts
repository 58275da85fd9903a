// Outages as an operator meets them: PostgreSQL or Redis cut off (through a TCP proxy this
// test controls, never by stopping the shared services) while clients write and subscribers
// listen on two instances. Nothing accepted is lost or duplicated, no process dies, and what
// is refused says to retry. Run alone, it is the outage run the README describes: it prints
// how many events were lost, duplicated, and how many instances crashed.
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { describe, expect, it, onTestFinished } from "vitest";
import { loadConfig } from "../src/config.ts";
import { decodeId } from "../src/schema/globalId.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { type Feed$, liveCursor, subscribe } from "./helpers/live.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { services, startServer, testEnv } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

const RECORD = "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }";
const BATCH = "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored duplicates } }";
const EVENTS = `subscription($org: ID!, $after: String) {
  eventsRecorded(organizationId: $org, after: $after) { cursor event { filePath } }
}`;
type Recorded = { cursor: string; event: { filePath: string } | null };

const wsUrl = (server: ServerProcess) => `${server.url.replace(/^http/, "ws")}/graphql`;
const alive = (server: ServerProcess) => server.child.exitCode === null && server.child.signalCode === null;

async function record(server: ServerProcess, user: TestUser, path: string) {
  const r = await gql<{ eventRecord: { id: string } }>(server.graphqlUrl, RECORD, {
    token: user.token,
    variables: {
      input: { event: { kind: "FILE_MODIFIED", filePath: path, clientEventId: path.replaceAll("/", ":") } },
    },
  });
  if (!r.data?.eventRecord) throw new Error(`not recorded: ${JSON.stringify(r.errors)}`);
}

async function readiness(server: ServerProcess) {
  return (await fetch(`${server.url}/health/readiness`)).status;
}

async function proxied(url: string, defaultPort: number) {
  const target = new URL(url);
  const proxy = await startProxy({ host: target.hostname, port: Number(target.port || defaultPort) });
  onTestFinished(() => proxy.close());
  target.host = `127.0.0.1:${proxy.port}`;
  return { proxy, url: target.toString() };
}

describe.runIf(services)("outages", () => {
  it("Redis cut while two instances take writes: every subscriber gets every event once, in order, and both live", async () => {
    const own = await isolatedServices("redis_outage");
    onTestFinished(() => own.cleanup());
    const redis = await proxied(services!.redisUrl, 6379);
    const env = { ...own.env, REDIS_URL: redis.url };
    const servers = await Promise.all([spawnServer(env), spawnServer(env)]);
    for (const s of servers) onTestFinished(() => s.kill("SIGKILL").then(() => undefined));
    const [a, b] = servers as [ServerProcess, ServerProcess];
    const alice = await createUser(a.graphqlUrl);
    const after = await liveCursor(a.graphqlUrl, alice.token, alice.org.id, "EVENTS");
    const subscribers: Feed$<Recorded>[] = [];
    for (let i = 0; i < 20; i++) {
      const feed = subscribe<Recorded>(wsUrl(i % 2 ? b : a), { authorization: `Bearer ${alice.token}` }, EVENTS, {
        org: alice.org.id,
        after,
      });
      onTestFinished(() => feed.close());
      subscribers.push(feed);
    }

    const run = randomUUID().slice(0, 8);
    const paths: string[] = [];
    const write = async (phase: string, n: number) => {
      for (let i = 0; i < n; i++) {
        const path = `/outage/${run}/${phase}-${i}.txt`;
        await record(i % 2 ? b : a, alice, path);
        paths.push(path);
      }
    };
    await write("before", 10);
    await redis.proxy.cut();
    // Accepted while Redis is away: stored, and their notices wait in the outbox.
    await write("during", 10);
    expect(await readiness(a)).toBe(503);
    await redis.proxy.restore();
    await write("after", 10);

    await Promise.all(subscribers.map((s) => s.next(paths.length)));
    const orders = subscribers.map((s) => s.items.map((item) => item.event?.filePath));
    const lost = paths.filter((p) => orders.some((order) => !order.includes(p))).length;
    const duplicated = orders.reduce((n, order) => n + order.length - new Set(order).size, 0);
    const crashed = servers.filter((s) => !alive(s)).length;
    console.log(`Redis outage: ${paths.length} events, ${subscribers.length} subscribers on 2 instances:`, {
      lost,
      duplicated,
      crashed,
    });
    expect({ lost, duplicated, crashed }).toEqual({ lost: 0, duplicated: 0, crashed: 0 });
    for (const s of subscribers) {
      expect(s.errors).toEqual([]);
      // In the order written (one after another, through both instances), for everyone.
      expect(s.items.map((i) => i.event?.filePath)).toEqual(paths);
      expect(s.items.map((i) => i.cursor)).toEqual(subscribers[0]?.items.map((i) => i.cursor));
    }
    // Nothing slipped through as an unhandled rejection.
    for (const s of servers) expect(s.output()).not.toContain("unhandled rejection");
  });

  it("PostgreSQL cut during ingestion: 503 SERVICE_UNAVAILABLE with Retry-After, readiness 503 and back, nothing accepted lost, every refusal audited", async () => {
    const own = await isolatedServices("pg_outage");
    onTestFinished(() => own.cleanup());
    const db = await proxied(own.env.DATABASE_URL as string, 5432);
    const server = await spawnServer({ ...own.env, DATABASE_URL: db.url });
    onTestFinished(() => server.kill("SIGKILL").then(() => undefined));
    const alice = await createUser(server.graphqlUrl);
    const run = randomUUID().slice(0, 8);
    const batch = (n: number) =>
      Array.from({ length: 5 }, (_, j) => ({
        kind: "FILE_CREATED",
        filePath: `/pg/${run}/${n}-${j}.txt`,
        clientEventId: `${run}-${n}-${j}`,
      }));
    const send = (n: number) =>
      gql<{ eventRecordBatch: { stored: number; duplicates: number } }>(server.graphqlUrl, BATCH, {
        token: alice.token,
        variables: { input: { events: batch(n) } },
      });

    for (let n = 0; n < 5; n++) expect((await send(n)).data?.eventRecordBatch.stored).toBe(5);
    await db.proxy.cut();
    const refused = [];
    for (let n = 5; n < 10; n++) refused.push(await send(n));
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("2");
      expect(r.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
      expect(r.errors?.[0]?.extensions?.retryable).toBe(true);
      expect(r.data?.eventRecordBatch ?? null).toBeNull();
    }
    expect(await readiness(server)).toBe(503);
    await db.proxy.restore();
    await until(
      () => readiness(server),
      (status) => status === 200,
    );
    // The client retries what was refused, and (not knowing) one that was accepted: same ids.
    for (let n = 5; n < 10; n++) expect((await send(n)).data?.eventRecordBatch.stored).toBe(5);
    expect((await send(0)).data?.eventRecordBatch).toEqual({ stored: 0, duplicates: 5 });

    const direct = new pg.Client({ connectionString: own.env.DATABASE_URL });
    await direct.connect();
    onTestFinished(() => direct.end());
    const stored = await direct.query("SELECT count(*)::int AS n FROM events WHERE client_event_id LIKE $1", [
      `${run}-%`,
    ]);
    expect(stored.rows[0].n).toBe(50);
    // The five refused mutations' entries, held while the database was away, written once it answered.
    const audited = await until(
      () =>
        direct.query(
          `SELECT count(*)::int AS n FROM audit_logs
           WHERE action = 'eventRecordBatch' AND outcome = 'FAILED' AND details->>'error' = 'SERVICE_UNAVAILABLE'`,
        ),
      (r) => r.rows[0].n >= 5,
    );
    expect(audited.rows[0].n).toBe(5);
    expect(alive(server)).toBe(true);
    expect(server.output()).not.toContain("unhandled rejection");
  });
});

describe("the process-level guard", () => {
  it("logs and counts an unhandled rejection instead of exiting, and serves on", async () => {
    const dataDir = services ? {} : { DATA_DIR: mkdtempSync(path.join(os.tmpdir(), "floyo-guard-")) };
    onTestFinished(() => {
      if (dataDir.DATA_DIR) rmSync(dataDir.DATA_DIR, { recursive: true, force: true });
    });
    const server = await spawnServer(dataDir, { preload: "./test/helpers/plantRejection.ts" });
    onTestFinished(() => server.kill("SIGKILL").then(() => undefined));
    // One signal at a time: two sent at once may arrive as one.
    for (const count of [1, 2]) {
      const logged = server.printed(`"unhandledRejections":${count}`);
      server.child.kill("SIGUSR2");
      await logged;
    }
    expect(server.output()).toContain("planted by the test");
    expect(alive(server)).toBe(true);
    expect((await gql(server.graphqlUrl, "{ __typename }")).data).toEqual({ __typename: "Query" });
    expect(await server.kill("SIGTERM")).toBe(0);
  });
});

describe("the live outbox", () => {
  it("relays what an instance committed but died before relaying, from another instance", async () => {
    const server = await startServer();
    onTestFinished(() => server.stop());
    const alice = await createUser(server.graphqlUrl);
    const after = await liveCursor(server.graphqlUrl, alice.token, alice.org.id, "EVENTS");
    const feed = subscribe<{ count: number | null }>(
      server.wsUrl,
      { authorization: `Bearer ${alice.token}` },
      "subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { count } }",
      { org: alice.org.id, after },
    );
    onTestFinished(() => feed.close());
    // As a dead instance leaves it: committed with its change, never relayed.
    const changeId = randomUUID();
    await server.app.runtime.db.prisma.liveOutbox.create({
      data: {
        feed: "EVENTS",
        organizationId: decodeId(alice.org.id).id,
        changeId,
        kind: "CREATED",
        data: { userId: decodeId(alice.user.id).id, count: 7777, single: 0 },
        deployment: loadConfig(testEnv()).redisKeyPrefix,
        createdAt: new Date(Date.now() - 60_000),
      },
    });
    expect(await feed.next(1)).toEqual([{ count: 7777 }]);
    await until(
      () => server.app.runtime.db.prisma.liveOutbox.count({ where: { changeId } }),
      (left) => left === 0,
    );
  });
});
