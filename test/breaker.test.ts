// The database circuit breaker and pool guard, as an operator meets them: PostgreSQL turning
// clients away (through a TCP proxy this test controls), a pool whose queue is full, and
// callers sending bad requests in a row. While the breaker is open, database calls are
// refused at once with the retryable code, without a connection attempt; it probes and
// closes once PostgreSQL answers; a query error never opens it.
import { describe, expect, it, onTestFinished } from "vitest";
import { type GraphQLResponse, gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { services, startServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

// A non-null root field: refused, it leaves no partial data (a partial answer is not a 503).
// A findMany: Prisma batches concurrent findUnique calls into one query, which would let
// several requests share one database call (and one place in the pool's queue).
const READ = "{ organizations(first: 5) { edges { node { id slug } } } }";
const orgsOf = (user: TestUser) => ({ organizations: { edges: [{ node: user.org }] } });
const RENAME = "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { id username } }";
const OPENED = "database breaker open";
const HALF_OPEN = "database breaker half-open";
const CLOSED = "database breaker closed";

type Checks = Record<string, { ok: boolean; breaker?: string }>;

async function readiness(url: string) {
  const response = await fetch(`${url}/health/readiness`);
  return { status: response.status, checks: ((await response.json()) as { checks: Checks }).checks };
}

function expectRefused(r: GraphQLResponse) {
  expect(r.status, JSON.stringify(r)).toBe(503);
  expect(r.headers.get("retry-after")).toBe("2");
  expect(r.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
  expect(r.errors?.[0]?.extensions?.retryable).toBe(true);
}

/** The server's log lines (pino JSON), those printed between two points of its output. */
function lines(server: ServerProcess, from = 0, to?: number) {
  return server
    .output()
    .slice(from, to)
    .split("\n")
    .filter((line) => line.startsWith("{") && line.endsWith("}"))
    .map((line) => JSON.parse(line) as { level: number; msg?: string });
}

async function proxiedServer(label: string, env: Record<string, string>) {
  const own = await isolatedServices(label);
  onTestFinished(() => own.cleanup());
  const target = new URL(own.env.DATABASE_URL as string);
  const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
  onTestFinished(() => proxy.close());
  target.host = `127.0.0.1:${proxy.port}`;
  // The same query is sent again and again to reach the database: not answered from the cache.
  const server = await spawnServer({ ...own.env, DATABASE_URL: target.toString(), RESPONSE_CACHE: "off", ...env });
  onTestFinished(() => server.kill("SIGKILL").then(() => undefined));
  return { proxy, server };
}

describe.runIf(services)("database circuit breaker", () => {
  it("opens after consecutive outage failures, refuses at once without connecting, probes and closes when PostgreSQL is back", async () => {
    const { proxy, server } = await proxiedServer("breaker", {
      DATABASE_BREAKER_FAILURES: "3",
      DATABASE_BREAKER_RESET_MS: "1000",
      // Jobs poll the database often: while the breaker is open, they must not log each poll.
      EXECUTION_POLL_MS: "50",
    });
    const alice = await createUser(server.graphqlUrl);
    expect((await gql(server.graphqlUrl, READ, { token: alice.token })).data).toEqual(orgsOf(alice));
    expect((await readiness(server.url)).checks.database).toEqual({ ok: true, breaker: "closed" });

    // PostgreSQL turns every connection away: requests fail (retryably) until the breaker opens.
    const opened = server.printed(OPENED);
    proxy.drop();
    for (;;) {
      const r = await gql(server.graphqlUrl, READ, { token: alice.token });
      expectRefused(r);
      if (server.output().includes(OPENED)) break;
    }
    await opened;
    const openedAt = server.output().indexOf(OPENED);
    expect(lines(server).find((l) => l.msg?.startsWith(OPENED))).toMatchObject({
      level: 40,
      breaker: "open",
      reason: "database unreachable",
    });

    // Open: refused with the retryable code, and (but for a probe each reset interval) not one
    // connection attempt reaches PostgreSQL's address.
    const attempts = proxy.accepted;
    const refused = 20;
    for (let i = 0; i < refused; i++) expectRefused(await gql(server.graphqlUrl, READ, { token: alice.token }));
    expect(proxy.accepted - attempts).toBeLessThan(refused / 2);
    const down = await readiness(server.url);
    expect(down.status).toBe(503);
    expect(down.checks.database?.ok).toBe(false);
    expect(["open", "half-open"]).toContain(down.checks.database?.breaker);
    expect(down.checks.redis?.ok).toBe(true);
    // GraphQL still answers what needs no database.
    expect((await gql(server.graphqlUrl, "{ __typename }")).data).toEqual({ __typename: "Query" });

    // PostgreSQL back: the next call after the reset interval probes (half-open), then closes.
    const restoredAt = server.output().length;
    await proxy.restore();
    await until(
      () => readiness(server.url),
      (r) => r.status === 200,
    );
    await server.printed(CLOSED);
    const after = server.output().slice(restoredAt);
    expect(after.indexOf(HALF_OPEN)).toBeGreaterThanOrEqual(0);
    expect(after.indexOf(CLOSED)).toBeGreaterThan(after.indexOf(HALF_OPEN));
    expect((await readiness(server.url)).checks.database).toEqual({ ok: true, breaker: "closed" });
    expect((await gql(server.graphqlUrl, READ, { token: alice.token })).data).toEqual(orgsOf(alice));

    // No storm while PostgreSQL was away and the breaker open: jobs polling every 50 ms logged
    // nothing per poll (any other message at most once), nothing at error level; the breaker
    // itself one line per change of state.
    const outage = lines(server, openedAt, restoredAt).filter((l) => !l.msg?.startsWith("database breaker"));
    expect(outage.filter((l) => l.level >= 50)).toEqual([]);
    const messages = outage.map((l) => l.msg);
    expect(messages.length).toBe(new Set(messages).size);
    expect(server.output()).not.toContain("unhandled rejection");
  });

  it("sheds calls past the pool's wait-queue bound at once with the retryable code, instead of queueing them", async () => {
    const { proxy, server } = await proxiedServer("pool_guard", {
      DATABASE_POOL_SIZE: "1",
      DATABASE_POOL_MAX_WAITING: "1",
      // Long enough that a queued call could only come back because the guard refused it.
      DATABASE_CONNECT_TIMEOUT_MS: "120000",
      DATABASE_STATEMENT_TIMEOUT_MS: "120000",
      DATABASE_BREAKER_RESET_MS: "500",
      JOBS_ENABLED: "false",
      // No operation deadline either: a request comes back early only if the guard refuses it.
      OPERATION_TIMEOUT_MS: "0",
    });
    const alice = await createUser(server.graphqlUrl);
    // Her session is now cached: concurrent requests would otherwise share its one lookup.
    expect((await gql(server.graphqlUrl, READ, { token: alice.token })).data).toEqual(orgsOf(alice));
    // PostgreSQL stops answering (connections stay open): the pool's one connection is held.
    proxy.pause();
    const sent = 10;
    const settled: GraphQLResponse[] = [];
    let enough: () => void = () => {};
    const mostBack = new Promise<void>((resolve) => {
      enough = resolve;
    });
    const requests = Array.from({ length: sent }, () =>
      gql(server.graphqlUrl, READ, { token: alice.token }).then((r) => {
        settled.push(r);
        if (settled.length >= sent - 2) enough();
        return r;
      }),
    );
    // At most one call holds the connection and one waits (the bound): every other request is
    // answered while PostgreSQL is still silent, so none of them waited for it.
    await mostBack;
    const backWhilePaused = settled.length;
    expect(backWhilePaused).toBeLessThan(sent);
    for (const r of settled) expectRefused(r);
    expect(lines(server).find((l) => l.msg?.startsWith(OPENED))).toMatchObject({
      breaker: "open",
      reason: "pool wait queue full",
    });
    const busy = await readiness(server.url);
    expect(busy.status).toBe(503);
    expect(busy.checks.database?.ok).toBe(false);
    expect(busy.checks.database?.breaker).not.toBe("closed");

    // PostgreSQL answers again: what was held completes (or is refused retryably), nothing fails otherwise.
    proxy.resume();
    for (const r of await Promise.all(requests)) {
      if (r.status !== 200) expectRefused(r);
    }
    await until(
      () => readiness(server.url),
      (r) => r.status === 200,
    );
    expect((await gql(server.graphqlUrl, READ, { token: alice.token })).data).toEqual(orgsOf(alice));
    expect(server.output()).not.toContain("unhandled rejection");
  });
});

describe("database circuit breaker and query errors", () => {
  it("stays closed through many query errors in a row: duplicates, not-found, foreign ids, hostile names", async () => {
    const server = await startServer({ DATABASE_BREAKER_FAILURES: "2" });
    onTestFinished(() => server.stop());
    const [alice, bob] = await Promise.all([createUser(server.graphqlUrl), createUser(server.graphqlUrl)]);
    const taken = `taken_${Date.now().toString(36)}`;
    const mine = await gql(server.graphqlUrl, RENAME, {
      token: alice.token,
      variables: { input: { username: taken } },
    });
    expect(mine.errors).toBeUndefined();

    for (let i = 0; i < 10; i++) {
      // A unique violation raised by PostgreSQL itself (the service relies on the constraint).
      const duplicate = await gql(server.graphqlUrl, RENAME, {
        token: bob.token,
        variables: { input: { username: taken } },
      });
      expect(duplicate.status).toBe(200);
      expect(duplicate.errors?.[0]?.extensions?.code).toBe("USERNAME_TAKEN");
      // Ids that resolve to nothing, or to another tenant's row.
      for (const id of [alice.org.id, "T3JnYW5pemF0aW9uOmNvbnN0cnVjdG9y", "__proto__", "constructor"]) {
        const r = await gql<{ node: unknown }>(server.graphqlUrl, "query($id: ID!) { node(id: $id) { id } }", {
          token: bob.token,
          variables: { id },
        });
        expect(r.status).toBeLessThan(500);
        expect(r.data?.node ?? null).toBeNull();
      }
    }
    expect(server.app.runtime.db.stats().breaker).toBe("closed");
    const ready = await readiness(server.url);
    expect(ready.status).toBe(200);
    expect(ready.checks.database).toEqual({ ok: true, breaker: "closed" });
    // The database keeps answering the same caller.
    const renamed = await gql(server.graphqlUrl, RENAME, {
      token: bob.token,
      variables: { input: { username: `${taken}_b` } },
    });
    expect(renamed.errors).toBeUndefined();
  });

  it("reports the pool and the breaker: pool null when embedded", async () => {
    const server = await startServer();
    onTestFinished(() => server.stop());
    const stats = server.app.runtime.db.stats();
    expect(stats.breaker).toBe("closed");
    if (services) {
      expect(stats.pool).toMatchObject({ max: 10 });
      expect(stats.pool?.waiting).toBe(0);
    } else expect(stats.pool).toBeNull();
  });
});
