// WebSocket connects under a storm and while the database is away: credential checks are
// admitted a few at a time (the rest refused with 1013, retry later), and a check that cannot
// reach the database is a retryable 1013, never the final 4403 that bad credentials get.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser } from "./helpers/factories.ts";
import { rawSocket } from "./helpers/live.ts";
import { startPgTap } from "./helpers/pgTap.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";

describe.runIf(services)("WebSocket connects", () => {
  let server: TestServer;
  // Users sign up here: the server under test has never seen their sessions (none cached).
  let issuer: TestServer;
  let db: Awaited<ReturnType<typeof startProxy>>;
  beforeAll(async () => {
    const target = new URL(services!.databaseUrl);
    db = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${db.port}`;
    issuer = await startServer({ JOBS_ENABLED: "false" });
    server = await startServer({
      DATABASE_URL: target.toString(),
      JOBS_ENABLED: "false",
      WS_CONNECT_CONCURRENCY: "1",
      WS_CONNECT_QUEUE: "0",
      DATABASE_STATEMENT_TIMEOUT_MS: "300",
      DATABASE_CONNECT_TIMEOUT_MS: "300",
    });
  });
  afterAll(async () => {
    db?.resume();
    await server?.stop();
    await issuer?.stop();
    db?.close();
  });

  const connect = (token: string) => {
    const socket = rawSocket(server.wsUrl);
    void socket.opened.then(() =>
      socket.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }),
    );
    return socket;
  };

  it("refuses a connect past the admission queue, and one it cannot check, with 1013; then admits again", async () => {
    const [alice, bob] = await Promise.all([createUser(issuer.graphqlUrl), createUser(issuer.graphqlUrl)]);
    db.pause();
    // Both connect at once: whichever the server takes first holds the one admission slot while
    // its check waits on the database; the other finds the slot taken and no room to queue.
    const closed = await Promise.all([connect(alice.token).closed, connect(bob.token).closed]);
    const reasons = closed.map((c) => `${c.code} ${c.reason.split(":")[0]}`).sort();
    expect(reasons).toEqual(["1013 SERVICE_UNAVAILABLE", "1013 Too many connections at once; retry shortly"]);
    db.resume();
    // Nothing was final: both come back once the database answers.
    for (const user of [alice, bob]) {
      const socket = connect(user.token);
      expect((await socket.message((m) => m.type === "connection_ack")).type).toBe("connection_ack");
      socket.socket.close();
      await socket.closed;
    }
  });

  it("still refuses bad credentials with 4403", async () => {
    const socket = connect("not-a-token");
    const closed = await socket.closed;
    expect(closed.code).toBe(4403);
    expect(closed.reason).toMatch(/^TOKEN_MALFORMED/);
  });
});

// A storm of clients reconnecting with the same new credential costs one lookup, not one each:
// concurrent checks of one session share the load in flight (single flight).
describe.runIf(services)("WebSocket connects with one credential", () => {
  const CHECKS = 5;
  let server: TestServer;
  let issuer: TestServer;
  let tap: Awaited<ReturnType<typeof startPgTap>>;
  beforeAll(async () => {
    const target = new URL(services!.databaseUrl);
    tap = await startPgTap({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${tap.proxy.port}`;
    issuer = await startServer({ JOBS_ENABLED: "false" });
    // CHECKS credential checks at a time and no queue: one more connect is refused while
    // CHECKS are in flight, which is how the test knows they are.
    server = await startServer({
      DATABASE_URL: target.toString(),
      JOBS_ENABLED: "false",
      WS_CONNECT_CONCURRENCY: String(CHECKS),
      WS_CONNECT_QUEUE: "0",
    });
  });
  afterAll(async () => {
    tap?.proxy.resume();
    await server?.stop();
    await issuer?.stop();
    tap?.proxy.close();
  });

  it("checks a session once for every connect that waits on it", async () => {
    const { token } = await createUser(issuer.graphqlUrl);
    const sessionLookups = () => tap.executed.filter((s) => /"user_sessions"/.test(s.sql)).length;
    const before = sessionLookups();
    tap.proxy.pause();
    const sockets = Array.from({ length: CHECKS + 1 }, () => rawSocket(server.wsUrl));
    await Promise.all(sockets.map((s) => s.opened));
    for (const s of sockets) s.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    // One is refused at once: CHECKS connects hold every admission slot, all waiting on the
    // database, which the proxy holds back.
    const refused = await Promise.race(sockets.map((s) => s.closed.then((closed) => ({ s, closed }))));
    expect(refused.closed.code).toBe(1013);
    tap.proxy.resume();
    const admitted = sockets.filter((s) => s !== refused.s);
    for (const s of admitted) expect((await s.message((m) => m.type === "connection_ack")).type).toBe("connection_ack");
    expect(sessionLookups() - before).toBe(1);
    for (const s of admitted) s.socket.close();
    await Promise.all(admitted.map((s) => s.closed));
  });
});
