// Two instances on the real Redis, as behind a load balancer: what a mutation publishes on
// one reaches subscribers on the other, only in its organization, resumably, at scale.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gql, wsClient } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { liveCursor, rawSocket, subscribe } from "./helpers/live.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";

const EVENTS = `subscription($org: ID!, $after: String) {
  eventsRecorded(organizationId: $org, after: $after) { cursor kind event { filePath } }
}`;
type Recorded = { cursor: string; kind: string; event: { filePath: string } | null };

const bearer = (user: Pick<TestUser, "token">) => ({ authorization: `Bearer ${user.token}` });

describe.runIf(services)("two instances", () => {
  let a: TestServer;
  let b: TestServer;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    // Their own database and Redis prefix: the connection counts below are theirs alone.
    const isolated = await isolatedServices("live");
    cleanup = isolated.cleanup;
    const env = { ...isolated.env, WS_MAX_CONNECTIONS_PER_USER: "2000", WS_MAX_CONNECTIONS_PER_IP: "5000" };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await cleanup?.();
  });

  async function record(on: TestServer, user: TestUser, filePath: string, organizationId?: string) {
    const r = await gql(on.graphqlUrl, "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }", {
      token: user.token,
      variables: { input: { organizationId, event: { kind: "FILE_OPENED", filePath } } },
    });
    if (r.errors) throw new Error(JSON.stringify(r.errors));
  }

  it("delivers to a client on B what a mutation on A published, and nothing of another organization", async () => {
    const alice = await createUser(a.graphqlUrl);
    const bob = await createUser(b.graphqlUrl);
    const aliceOnB = subscribe<Recorded>(b.wsUrl, bearer(alice), EVENTS, {
      org: alice.org.id,
      after: await liveCursor(b.graphqlUrl, alice.token, alice.org.id, "EVENTS"),
    });
    const bobOnB = subscribe<Recorded>(b.wsUrl, bearer(bob), EVENTS, {
      org: bob.org.id,
      after: await liveCursor(b.graphqlUrl, bob.token, bob.org.id, "EVENTS"),
    });
    await record(a, alice, "/alice/on-a.txt");
    await record(a, bob, "/bob/on-a.txt");
    expect((await aliceOnB.next()).map((e) => e.event?.filePath)).toEqual(["/alice/on-a.txt"]);
    expect((await bobOnB.next()).map((e) => e.event?.filePath)).toEqual(["/bob/on-a.txt"]);
    await Promise.all([aliceOnB.close(), bobOnB.close()]);
  });

  it("resumes on B a feed dropped on A, with every missed event once", async () => {
    const alice = await createUser(a.graphqlUrl);
    const onA = subscribe<Recorded>(a.wsUrl, bearer(alice), EVENTS, {
      org: alice.org.id,
      after: await liveCursor(a.graphqlUrl, alice.token, alice.org.id, "EVENTS"),
    });
    await record(b, alice, "/r/0.txt");
    const [last] = await onA.next();
    await onA.close();
    // Published on both instances while the client is away.
    for (let i = 1; i <= 6; i++) await record(i % 2 ? a : b, alice, `/r/${i}.txt`);
    const onB = subscribe<Recorded>(b.wsUrl, bearer(alice), EVENTS, { org: alice.org.id, after: last?.cursor });
    expect((await onB.next(6)).map((e) => e.event?.filePath)).toEqual([1, 2, 3, 4, 5, 6].map((i) => `/r/${i}.txt`));
    await record(a, alice, "/r/7.txt");
    expect((await onB.next()).map((e) => e.event?.filePath)).toEqual(["/r/7.txt"]);
    expect(onB.items).toHaveLength(7);
    await onB.close();
  });

  it("closes a socket on B when its session is revoked on A", async () => {
    const alice = await createUser(a.graphqlUrl);
    const socket = rawSocket(b.wsUrl);
    await socket.opened;
    socket.send({ type: "connection_init", payload: bearer(alice) });
    await socket.message((m) => m.type === "connection_ack");
    await gql(a.graphqlUrl, "mutation { authLogout }", { token: alice.token });
    expect(await socket.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^SESSION_REVOKED/) });
  });

  it("gives every one of 1,000 concurrent subscribers, across both instances, every event in order", async () => {
    const alice = await createUser(a.graphqlUrl);
    const after = await liveCursor(a.graphqlUrl, alice.token, alice.org.id, "EVENTS");
    const count = 1000;
    const events = 10;
    const received: string[][] = Array.from({ length: count }, () => []);
    const clients = Array.from({ length: count }, (_, i) => wsClient((i % 2 ? a : b).wsUrl, bearer(alice)));
    let done = 0;
    let resolveAll: () => void = () => undefined;
    let rejectAll: (e: unknown) => void = () => undefined;
    const all = new Promise<void>((resolve, reject) => {
      resolveAll = resolve;
      rejectAll = reject;
    });
    clients.forEach((client, i) => {
      client.subscribe<{ eventsRecorded: { cursor: string } }>(
        {
          query:
            "subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { cursor } }",
          variables: { org: alice.org.id, after },
        },
        {
          next: ({ data, errors }) => {
            if (errors) rejectAll(errors);
            const mine = received[i] as string[];
            mine.push(data?.eventsRecorded.cursor as string);
            if (mine.length === events && ++done === count) resolveAll();
          },
          error: rejectAll,
          complete: () => undefined,
        },
      );
    });
    // Published from both instances, while the subscribers are still connecting.
    for (let i = 0; i < events; i++) await record(i % 2 ? b : a, alice, `/many/${i}.txt`);
    await all;
    const expected = received[0] as string[];
    expect(new Set(expected).size).toBe(events);
    for (const cursors of received) expect(cursors).toEqual(expected);
    await Promise.all(clients.map((c) => c.dispose()));
  });
});
