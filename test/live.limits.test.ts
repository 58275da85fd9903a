// The WebSocket transport's limits, and what a client resuming after a long absence is told.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { gql, wsClient } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { liveCursor, rawSocket, subscribe } from "./helpers/live.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let url: string;
beforeAll(async () => {
  server = await startServer({
    // A Redis prefix of its own: the connection counts are its alone.
    REDIS_KEY_PREFIX: services ? `${services.redisKeyPrefix}limits-${randomBytes(3).toString("hex")}:` : undefined,
    JOBS_ENABLED: "false",
    WS_MAX_SUBSCRIPTIONS: "2",
    WS_MAX_CONNECTIONS_PER_USER: "2",
    WS_MAX_CONNECTIONS_PER_IP: "8",
    WS_INIT_TIMEOUT_MS: "300",
    WS_MAX_MESSAGE_BYTES: "4096",
    WS_KEEPALIVE_MS: "200",
    LIVE_MAX_QUEUE: "2",
    LIVE_RETENTION_EVENTS: "10",
  });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const bearer = (user: Pick<TestUser, "token">) => ({ authorization: `Bearer ${user.token}` });
const EVENTS =
  "subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { cursor kind count } }";

async function record(user: TestUser, details?: Record<string, unknown>, on = url) {
  const r = await gql<{ eventRecord: { id: string } }>(
    on,
    "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { event: { kind: "FILE_OPENED", filePath: "/l/file.txt", details } } },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
}

async function acked(user: TestUser, on = server) {
  const socket = rawSocket(on.wsUrl);
  await socket.opened;
  socket.send({ type: "connection_init", payload: bearer(user) });
  await Promise.race([socket.message((m) => m.type === "connection_ack"), socket.closed]);
  return socket;
}

describe("limits", () => {
  it("closes a connection that never says connection_init with 4408", async () => {
    const socket = rawSocket(server.wsUrl);
    await socket.opened;
    expect((await socket.closed).code).toBe(4408);
  });

  it("closes a connection that sends a message over the size limit with 1009", async () => {
    const socket = rawSocket(server.wsUrl);
    await socket.opened;
    socket.send({ type: "connection_init", payload: { padding: "x".repeat(5000) } });
    expect((await socket.closed).code).toBe(1009);
  });

  it("pings, and drops a peer that stops answering", async () => {
    const alice = await createUser(url);
    const socket = rawSocket(server.wsUrl, { autoPong: false });
    await socket.opened;
    socket.send({ type: "connection_init", payload: bearer(alice) });
    await new Promise((resolve) => socket.socket.once("ping", resolve));
    // Terminated, not closed: a peer that does not answer pings would not answer a close either.
    expect((await socket.closed).code).toBe(1006);
  });

  it("allows a user so many connections, with 1013 for one more", async () => {
    const alice = await createUser(url);
    const sockets = [await acked(alice), await acked(alice)];
    const third = await acked(alice);
    expect(await third.closed).toEqual({ code: 1013, reason: "Too many connections for this user" });
    for (const s of sockets) s.socket.close();
    await Promise.all(sockets.map((s) => s.closed));
  });

  it("allows a connection so many subscriptions", async () => {
    const alice = await createUser(url);
    const client = wsClient(server.wsUrl, bearer(alice));
    const feeds = [0, 1, 2].map(() => {
      const errors: unknown[] = [];
      const done = new Promise<void>((resolve) =>
        client.subscribe(
          { query: EVENTS, variables: { org: alice.org.id } },
          {
            next: () => undefined,
            error: (e) => {
              errors.push(e);
              resolve();
            },
            complete: resolve,
          },
        ),
      );
      return { errors, done };
    });
    await feeds[2]?.done;
    expect(errorCode({ errors: feeds[2]?.errors[0] as never })).toBe("TOO_MANY_SUBSCRIPTIONS");
    expect(feeds[0]?.errors).toEqual([]);
    await client.dispose();
  });

  it("counts SSE streams as connections of their user", async () => {
    const alice = await createUser(url);
    const controller = new AbortController();
    const open = () =>
      fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", ...bearer(alice) },
        body: JSON.stringify({ query: EVENTS, variables: { org: alice.org.id } }),
        signal: controller.signal,
      });
    const streams = [await open(), await open()];
    const reader = (await open()).body?.getReader() as ReadableStreamDefaultReader<Uint8Array>;
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("TOO_MANY_CONNECTIONS")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text).toContain("TOO_MANY_CONNECTIONS");
    expect(streams.every((s) => s.status === 200)).toBe(true);
    controller.abort();
  });

  it("allows an address so many connections, with 1013 for one more", async () => {
    const sockets = [];
    for (let i = 0; i < 8; i++) {
      const socket = rawSocket(server.wsUrl);
      await socket.opened;
      sockets.push(socket);
    }
    const one = rawSocket(server.wsUrl);
    expect(await one.closed).toEqual({ code: 1013, reason: "Too many connections from this address" });
    for (const s of sockets) s.socket.close();
    await Promise.all(sockets.map((s) => s.closed));
  });
});

describe("slow consumers", () => {
  // No pings here: a peer that stops reading stops answering them too, and would be dropped for that.
  let quiet: TestServer;
  beforeAll(async () => {
    // Room for a relay's burst (the outbox hands several notices over at once): the subscriber
    // who reads must not be taken for one who does not.
    quiet = await startServer({ JOBS_ENABLED: "false", WS_KEEPALIVE_MS: "0", LIVE_MAX_QUEUE: "50" });
  });
  afterAll(() => quiet.stop());

  it("drops a subscriber that stops reading, with 4008, while others get every event", async () => {
    const url = quiet.graphqlUrl;
    const alice = await createUser(url);
    const after = await liveCursor(url, alice.token, alice.org.id, "EVENTS");
    // Large messages: the one who stops reading fills the socket's buffers quickly.
    const big = `subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { cursor ${Array.from(
      { length: 12 },
      (_, i) => `e${i}: event { details }`,
    ).join(" ")} } }`;
    const slow = await acked(alice, quiet);
    slow.send({ id: "1", type: "subscribe", payload: { query: big, variables: { org: alice.org.id, after } } });
    (slow.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const fast = subscribe<{ cursor: string }>(quiet.wsUrl, bearer(alice), big, { org: alice.org.id, after });

    const details = { blob: "x".repeat(7000) };
    const total = 200;
    for (let i = 0; i < total; i++) await record(alice, details, url);
    expect(await fast.next(total)).toHaveLength(total);

    (slow.socket as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/^SLOW_CONSUMER/);
    await fast.close();
  });
});

describe("retention", () => {
  it("reports a GAP when what a client missed is older than the retention, then sends what is kept", async () => {
    const alice = await createUser(url);
    const start = await liveCursor(url, alice.token, alice.org.id, "EVENTS");
    const first = subscribe<{ cursor: string }>(server.wsUrl, bearer(alice), EVENTS, {
      org: alice.org.id,
      after: start,
    });
    await record(alice);
    const [seen] = await first.next();
    await first.close();
    for (let i = 0; i < 25; i++) await record(alice);
    const head = await liveCursor(url, alice.token, alice.org.id, "EVENTS");

    const resumed = subscribe<{ cursor: string; kind: string; count: number | null }>(
      server.wsUrl,
      bearer(alice),
      EVENTS,
      {
        org: alice.org.id,
        after: seen?.cursor,
      },
    );
    const [gap, ...kept] = await resumed.next(11);
    expect(gap).toMatchObject({ kind: "GAP", count: null });
    expect(kept.every((e) => e.kind === "CREATED")).toBe(true);
    expect(kept.at(-1)?.cursor).toBe(head);
    await resumed.close();

    // Resuming from the GAP's cursor: what is kept, and no GAP.
    const again = subscribe<{ kind: string }>(server.wsUrl, bearer(alice), EVENTS, {
      org: alice.org.id,
      after: gap?.cursor,
    });
    expect((await again.next(10)).map((e) => e.kind)).toEqual(Array(10).fill("CREATED"));
    await again.close();
  });
});
