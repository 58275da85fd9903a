// Deployment shapes: two instances on one PostgreSQL and Redis (a revocation on one ends
// access on the other at once, not when its cache would have expired), and a proxy in front.
import { setImmediate } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser } from "./helpers/factories.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";

describe.runIf(services)("several instances", () => {
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    [a, b] = await Promise.all([startServer(), startServer()]);
  });
  afterAll(() => Promise.all([a.stop(), b.stop()]));

  it("ends a session everywhere when it is revoked on one instance", async () => {
    const { token } = await createUser(a.graphqlUrl);
    // B has now checked, and cached, this session.
    expect((await gql(b.graphqlUrl, "{ viewer { id } }", { token })).errors).toBeUndefined();

    const heard = b.app.runtime.pubsub.subscribe("auth:revoked", "all");
    const revocation = heard.next();
    expect((await gql(a.graphqlUrl, "mutation { authLogout }", { token })).data).toEqual({ authLogout: true });
    // Wait for B to hear it over Redis, then one turn of its event loop for its cache to drop it.
    await revocation;
    await heard.return?.();
    await setImmediate();
    expect(errorCode(await gql(b.graphqlUrl, "{ viewer { id } }", { token }))).toBe("SESSION_REVOKED");
  });
});

describe("behind a proxy", () => {
  it("takes the client IP from the hop the trusted proxy appended, not from what the client sent", async () => {
    const proxied = await startServer({ TRUST_PROXY: "true" });
    try {
      const r = await gql(
        proxied.graphqlUrl,
        'mutation { authLogin(input: { email: "x@example.test", password: "whatever-123456" }) { accessToken } }',
        {
          headers: { "x-forwarded-for": "6.6.6.6, 203.0.113.7" },
        },
      );
      const row = await proxied.app.runtime.db.prisma.auditLog.findFirst({
        where: { requestId: r.headers.get("x-request-id") },
      });
      expect(row?.ip).toBe("203.0.113.7");
    } finally {
      await proxied.stop();
    }
  });
});
