// Health routes for load balancers: liveness always, readiness only while every dependency
// answers, naming the one that does not.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";

async function readiness(server: TestServer) {
  const response = await fetch(`${server.url}/health/readiness`);
  return {
    status: response.status,
    body: (await response.json()) as { status: string; checks: Record<string, { ok: boolean; error?: string }> },
  };
}

describe("health routes", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(() => server.stop());

  it("answers liveness, readiness and both together", async () => {
    expect(await (await fetch(`${server.url}/health/liveness`)).json()).toEqual({ status: "ok" });
    const ready = await readiness(server);
    expect(ready.status).toBe(200);
    const expected = services ? ["database", "migrations", "redis"] : ["database", "migrations"];
    expect(Object.keys(ready.body.checks).sort()).toEqual(expected);
    const both = await fetch(`${server.url}/health`);
    expect(both.status).toBe(200);
    expect(await both.json()).toMatchObject({
      status: "ready",
      liveness: { status: "ok" },
      readiness: { status: "ready" },
    });
  });

  it("answers 404 for unknown health paths and 405 for other methods", async () => {
    expect((await fetch(`${server.url}/health/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/health/readiness`, { method: "POST" })).status).toBe(405);
  });
});

describe.runIf(services)("readiness through outages", () => {
  it("is 503 naming the database while PostgreSQL is unreachable, and 200 once it is back", async () => {
    const dbUrl = new URL(services!.databaseUrl);
    const proxy = await startProxy({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) });
    dbUrl.host = `127.0.0.1:${proxy.port}`;
    const server = await startServer({ DATABASE_URL: dbUrl.toString() });
    try {
      expect((await readiness(server)).status).toBe(200);
      await proxy.cut();
      const down = await readiness(server);
      expect(down.status).toBe(503);
      expect(down.body.status).toBe("unavailable");
      expect(down.body.checks.database?.ok).toBe(false);
      expect(down.body.checks.redis?.ok).toBe(true);
      // GraphQL keeps answering what needs no database.
      const typename = await fetch(`${server.url}/graphql?query=%7B__typename%7D`);
      expect(await typename.json()).toMatchObject({ data: { __typename: "Query" } });
      await proxy.restore();
      const up = await readiness(server);
      expect(up.status).toBe(200);
      expect(up.body.checks.database?.ok).toBe(true);
    } finally {
      await server.stop();
      proxy.close();
    }
  });

  it("is 503 naming Redis while Redis is unreachable, and 200 once it is back", async () => {
    const redisUrl = new URL(services!.redisUrl);
    const proxy = await startProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    redisUrl.host = `127.0.0.1:${proxy.port}`;
    const server = await startServer({ REDIS_URL: redisUrl.toString() });
    try {
      expect((await readiness(server)).status).toBe(200);
      await proxy.cut();
      const down = await readiness(server);
      expect(down.status).toBe(503);
      expect(down.body.checks.redis?.ok).toBe(false);
      expect(down.body.checks.database?.ok).toBe(true);
      await proxy.restore();
      // ioredis reconnects on its own schedule: wait for its ready event, not for time.
      const redis = server.app.runtime.redis!;
      if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
      expect((await readiness(server)).status).toBe(200);
    } finally {
      await server.stop();
      proxy.close();
    }
  });
});
