// Rate limits and cost budgets as a client meets them, over HTTP and graphql-ws: each
// operation's cost in extensions.cost, RateLimit-* headers on every answer, 429 with
// Retry-After and RATE_LIMITED once a bucket is spent, separate buckets per API key, user and
// address, stricter attempt limits on sign-in and the like (a lockout the right password does
// not lift), one budget across instances through Redis, and service through a Redis outage.
// Servers trust X-Forwarded-For, so each test calls from addresses of its own.
import { randomUUID } from "node:crypto";
import { createClient } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { errorCode } from "./helpers/api.ts";
import { type GraphQLResponse, gql, wsClient, wsRequest } from "./helpers/client.ts";
import { PASSWORD, uniqueEmail } from "./helpers/factories.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

// Budgets small enough to spend in a test; windows longer than any run, so none resets midway.
const TIGHT = {
  TRUST_PROXY: "true",
  RATE_LIMIT_WINDOW_SECONDS: "3600",
  RATE_LIMIT_POINTS: "1000",
  RATE_LIMIT_ANONYMOUS_POINTS: "300",
  RATE_LIMIT_ADDRESS_POINTS: "2000",
  AUTH_RATE_LIMIT_ACCOUNT: "5/3600",
  AUTH_RATE_LIMIT_ADDRESS: "8/3600",
  // Counters of their own (the run's other suites call from 127.0.0.1 with loose limits), and
  // no background jobs from this separate deployment on the run's shared database.
  ...(services ? { REDIS_KEY_PREFIX: `${services.redisKeyPrefix}limits_${randomUUID().slice(0, 8)}:` } : {}),
  JOBS_ENABLED: "false",
};

let server: TestServer;
let mail: MailCatcher;
beforeAll(async () => {
  mail = await startMailCatcher();
  server = await startServer({ ...TIGHT, SMTP_URL: mail.url });
});
afterAll(async () => {
  await server?.stop();
  await mail?.close();
});

let lastAddress = 0;
/** A caller address no other test uses. */
const newAddress = () => `198.51.${Math.floor(++lastAddress / 250)}.${(lastAddress % 250) + 1}`;

type Cost = { cost: number; limit: number; remaining: number; resetAt: string };
type Answer = GraphQLResponse & { extensions?: { cost?: Cost } };

function send(
  query: string,
  options: { from: string; token?: string; apiKey?: string; variables?: Record<string, unknown>; url?: string },
): Promise<Answer> {
  return gql(options.url ?? server.graphqlUrl, query, {
    token: options.token,
    variables: options.variables,
    headers: { "x-forwarded-for": options.from, ...(options.apiKey ? { "x-api-key": options.apiKey } : {}) },
  }) as Promise<Answer>;
}

const REGISTER = `mutation($input: AuthRegisterInput!) {
  authRegister(input: $input) { accessToken user { id memberships { organization { id } } } }
}`;

async function register(url = server.graphqlUrl, email = uniqueEmail("limits")) {
  const r = await gql<{
    authRegister: { accessToken: string; user: { id: string; memberships: { organization: { id: string } }[] } };
  }>(url, REGISTER, {
    variables: { input: { email, password: PASSWORD } },
    headers: { "x-forwarded-for": newAddress() },
  });
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  const { accessToken, user } = r.data.authRegister;
  return { email, token: accessToken, userId: user.id, orgId: user.memberships[0]?.organization.id as string };
}

/** A page of `n` organizations' ids: 1 + n x (edges 1 + node 1 + id 1). */
const orgPage = (n: number | string) => `{ organizations(first: ${n}) { edges { node { id } } } }`;
const pageCost = (n: number) => 1 + n * 3;

function headersOf(r: { headers: Headers }) {
  return {
    limit: Number(r.headers.get("ratelimit-limit")),
    remaining: Number(r.headers.get("ratelimit-remaining")),
    reset: Number(r.headers.get("ratelimit-reset")),
  };
}

function expectHeaders(r: { headers: Headers }) {
  for (const name of ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"])
    expect(r.headers.get(name), name).toMatch(/^\d+$/);
  const h = headersOf(r);
  expect(h.remaining).toBeLessThanOrEqual(h.limit);
  expect(h.reset).toBeLessThanOrEqual(3600);
  return h;
}

/** Sends `query` until refused; returns what was accepted and the refusal. */
async function spendUntilRefused(query: string, options: Parameters<typeof send>[1], max = 500) {
  const accepted: Answer[] = [];
  for (let i = 0; i < max; i++) {
    const r = await send(query, options);
    if (errorCode(r) === "RATE_LIMITED") return { accepted, refused: r };
    accepted.push(r);
  }
  throw new Error("never refused");
}

describe("cost", () => {
  it("multiplies a connection's selection by its page size, and reports it with the budget left", async () => {
    const { token } = await register();
    const from = newAddress();
    const fifty = await send(orgPage(50), { from, token });
    const five = await send(orgPage(5), { from, token });
    const unsized = await send(orgPage("null"), { from, token });
    expect(fifty.errors).toBeUndefined();
    expect(fifty.extensions?.cost).toMatchObject({ cost: pageCost(50), limit: 1000, remaining: 1000 - pageCost(50) });
    expect(five.extensions?.cost).toMatchObject({ cost: pageCost(5), remaining: 1000 - pageCost(50) - pageCost(5) });
    // No `first`: the page the resolver fetches by default, 20.
    expect(unsized.extensions?.cost?.cost).toBe(pageCost(20));
    expect(Date.parse(five.extensions?.cost?.resetAt ?? "")).toBeGreaterThan(Date.now());
    expect(headersOf(five)).toMatchObject({ limit: 1000, remaining: 1000 - pageCost(50) - pageCost(5) });
  });

  it("caps huge, negative and overflowing page sizes: never NaN, negative or past the page maximum", async () => {
    const { token } = await register();
    const from = newAddress();
    const huge = await send(orgPage(2_147_483_647), { from, token });
    expect(huge.extensions?.cost?.cost).toBe(pageCost(100));
    const negative = await send("query($n: Int) { organizations(first: $n) { edges { node { id } } } }", {
      from,
      token,
      variables: { n: -5 },
    });
    expect(negative.extensions?.cost?.cost).toBe(1);
    expect(errorCode(negative)).toBeDefined();
    const overflow = await send(orgPage("99999999999"), { from, token });
    expect(overflow.status).toBe(400);
    expect(errorCode(overflow)).toBe("GRAPHQL_VALIDATION_FAILED");
    const overflowVariable = await send("query($n: Int) { organizations(first: $n) { edges { node { id } } } }", {
      from,
      token,
      variables: { n: 1e300 },
    });
    expect(overflowVariable.status).toBeLessThan(500);
    expect(errorCode(overflowVariable)).toBe("BAD_USER_INPUT");
    for (const r of [huge, negative, overflowVariable]) {
      const cost = r.extensions?.cost;
      if (cost) expect(Number.isInteger(cost.cost) && cost.cost >= 0 && Number.isInteger(cost.remaining)).toBe(true);
      expectHeaders(r);
    }
  });

  it("refuses an operation over the most one may cost, with COST_LIMIT_EXCEEDED, before it runs", async () => {
    const { token } = await register();
    // 100 organizations x 100 members each: far over a user's budget of 1000 per window.
    const nested = `{ organizations(first: 100) { edges { node { members(first: 100) { edges { node { id } } } } } } }`;
    const r = await send(nested, { from: newAddress(), token });
    expect(r.data ?? null).toBeNull();
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "COST_LIMIT_EXCEEDED", maxCost: 1000 });
    expect(r.errors?.[0]?.extensions?.cost).toBeGreaterThan(1000);
    expectHeaders(r);
  });
});

describe("headers", () => {
  it("come with every answer: success, validation and parse errors, GET, SSE and bad credentials", async () => {
    const from = newAddress();
    const ok = await send("{ __typename }", { from });
    expect(expectHeaders(ok)).toEqual({ limit: 300, remaining: 299, reset: expect.any(Number) });
    expect(ok.extensions?.cost).toMatchObject({ cost: 1, limit: 300, remaining: 299 });
    const invalid = await send("{ nope }", { from });
    expect(errorCode(invalid)).toBe("GRAPHQL_VALIDATION_FAILED");
    expectHeaders(invalid);
    const unparsable = await send("{ viewer { ", { from });
    expect(unparsable.status).toBe(400);
    expectHeaders(unparsable);
    const badToken = await send("{ __typename }", { from, token: "not-a-jwt" });
    expect(badToken.status).toBe(401);
    expectHeaders(badToken);
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent("{ __typename }")}`, {
      headers: { "x-forwarded-for": from },
    });
    expect(get.status).toBe(200);
    expectHeaders(get);
    expect(((await get.json()) as Answer).extensions?.cost?.cost).toBe(1);
    const sse = await fetch(server.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", "x-forwarded-for": from },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(sse.status).toBe(200);
    expectHeaders(sse);
    expect(await sse.text()).toContain('"cost"');
  });

  it("charges a document that cannot run one point to its address", async () => {
    // An address budget of 5: five unparsable documents spend it.
    const tiny = await startServer({ ...TIGHT, RATE_LIMIT_ADDRESS_POINTS: "5" });
    try {
      const from = newAddress();
      for (let i = 0; i < 5; i++) {
        const r = await send("{ viewer { ", { from, url: tiny.graphqlUrl });
        expect(errorCode(r)).toBe("GRAPHQL_PARSE_FAILED");
      }
      const refused = await send("{ __typename }", { from, url: tiny.graphqlUrl });
      expect(refused.status).toBe(429);
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "address" });
      expect((await send("{ __typename }", { from: newAddress(), url: tiny.graphqlUrl })).status).toBe(200);
    } finally {
      await tiny.stop();
    }
  });
});

describe("budgets", () => {
  it("refuses a spent caller with 429, Retry-After and RATE_LIMITED, and no one else", async () => {
    const from = newAddress();
    const { accepted, refused } = await spendUntilRefused("{ a: __typename b: __typename c: __typename }", { from });
    expect(accepted.reduce((sum, r) => sum + (r.extensions?.cost?.cost ?? 0), 0)).toBe(300);
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "anonymous", retryAfter });
    expect(refused.extensions?.cost).toMatchObject({ cost: 3, remaining: 0, limit: 300 });
    expect(headersOf(refused)).toMatchObject({ limit: 300, remaining: 0 });
    // Another address, and a signed-in user at this one, have budgets of their own.
    expect((await send("{ __typename }", { from: newAddress() })).status).toBe(200);
    const { token } = await register();
    const signedIn = await send("{ viewer { id } }", { from, token });
    expect(signedIn.status).toBe(200);
    expect(signedIn.extensions?.cost?.limit).toBe(1000);
  });

  it("keeps a user's, another user's and an API key's budgets apart at one address", async () => {
    const from = newAddress();
    const [alice, bob, carol] = [await register(), await register(), await register()];
    const secret = await createKey(carol);
    const { accepted, refused } = await spendUntilRefused(orgPage(33), { from, token: alice.token });
    expect(accepted).toHaveLength(10);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "user" });
    // A cheaper operation is refused too: nothing is left.
    expect(errorCode(await send("{ __typename }", { from, token: alice.token }))).toBe("RATE_LIMITED");
    const asBob = await send(orgPage(33), { from, token: bob.token });
    expect(asBob.errors).toBeUndefined();
    expect(asBob.extensions?.cost).toMatchObject({ limit: 1000, remaining: 1000 - 100 });
    const asKey = await send(orgPage(33), { from, apiKey: secret });
    expect(asKey.errors).toBeUndefined();
    // Now the address's bucket, which all three share, is the one closest to refusing.
    expect(asKey.extensions?.cost).toMatchObject({ limit: 2000, remaining: 2000 - 1000 - 100 - 100 });
    // The key's own bucket, seen from an address with room to spare.
    const keyElsewhere = await send(orgPage(33), { from: newAddress(), apiKey: secret });
    expect(keyElsewhere.extensions?.cost).toMatchObject({ limit: 1000, remaining: 1000 - 200 });
  });

  it("gives the same code over graphql-ws, without HTTP status or headers", async () => {
    const from = newAddress();
    await spendUntilRefused("{ a: __typename b: __typename c: __typename }", { from });
    const client = wsClientFrom(from);
    try {
      const refused = await wsRequest(client, "{ __typename }");
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "anonymous" });
      expect(refused.errors?.[0]?.extensions?.retryAfter).toBeGreaterThan(0);
      expect(refused.errors?.[0]?.extensions?.http).toBeUndefined();
    } finally {
      await client.dispose();
    }
    const fresh = wsClient(server.wsUrl);
    try {
      const ok = (await wsRequest(fresh, "{ __typename }")) as Answer;
      expect(ok.data).toEqual({ __typename: "Query" });
      expect(ok.extensions?.cost).toMatchObject({ cost: 1, limit: 300 });
    } finally {
      await fresh.dispose();
    }
  });

  it("charges a subscription once as it starts, marks its events so, and refuses one past the budget", async () => {
    const user = await register();
    const from = newAddress();
    const cursor = await send("query($org: ID!) { liveCursor(organizationId: $org, feed: AUDIT) }", {
      from,
      token: user.token,
      variables: { org: user.orgId },
    });
    const after = (cursor.data as { liveCursor: string }).liveCursor;
    // An entry in the personal organization's audit feed, sent on subscribing from `after`.
    await createKey(user);
    const subscription =
      "subscription($org: ID!, $after: String) { auditEntryAdded(organizationId: $org, after: $after) { entry { action } } }";
    const client = wsClientFrom(from, { authorization: `Bearer ${user.token}` });
    try {
      const event = await firstPayload(client, subscription, { org: user.orgId, after });
      expect(event.data).toEqual({ auditEntryAdded: { entry: { action: "apiKeyCreate" } } });
      // auditEntryAdded 1 + entry 1 + action 1.
      expect(event.extensions?.cost).toMatchObject({ cost: 3, limit: 1000 });
      // Spent to the last point: large operations, then the smallest.
      await spendUntilRefused(orgPage(33), { from, token: user.token });
      await spendUntilRefused("{ __typename }", { from, token: user.token });
      const refused = await firstPayload(client, subscription, { org: user.orgId, after });
      expect(refused.data ?? null).toBeNull();
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "user" });
    } finally {
      await client.dispose();
    }
  });

  it("treats inherited property names as plain names: operations, accounts", async () => {
    const from = newAddress();
    for (const name of ["constructor", "__proto__", "toString"]) {
      const r = (await gql(server.graphqlUrl, `query ${name} { __typename }`, {
        headers: { "x-forwarded-for": from },
      })) as Answer;
      expect(r.status).toBe(200);
      expect(r.extensions?.cost?.cost).toBe(1);
    }
    for (const email of ["__proto__", "constructor"]) {
      const r = await send("mutation($e: String!) { passwordForgot(email: $e) }", { from, variables: { e: email } });
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
    }
  });
});

/** A graphql-ws client whose connection comes from `address` (X-Forwarded-For on the upgrade). */
function wsClientFrom(address: string, connectionParams?: Record<string, unknown>) {
  class FromAddress extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { "x-forwarded-for": address } });
    }
  }
  return createClient({
    url: server.wsUrl,
    webSocketImpl: FromAddress,
    lazy: false,
    retryAttempts: 0,
    connectionParams,
  });
}

/** The first payload a subscription sends (an event, or the errors that refused it). */
function firstPayload(client: ReturnType<typeof createClient>, query: string, variables: Record<string, unknown>) {
  return new Promise<Answer>((resolve, reject) => {
    const stop = client.subscribe(
      { query, variables },
      {
        next: (value) => {
          resolve(value as Answer);
          stop();
        },
        error: (err) => (Array.isArray(err) ? resolve({ errors: err } as Answer) : reject(err)),
        complete: () => undefined,
      },
    );
  });
}

const CREATE_KEY = "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }";
const createKeyAs = (user: { token: string; orgId: string }) =>
  send(CREATE_KEY, {
    from: newAddress(),
    token: user.token,
    variables: { input: { organizationId: user.orgId, name: "limits", role: "VIEWER" } },
  });

async function createKey(user: { token: string; orgId: string }) {
  const r = await createKeyAs(user);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return (r.data as { apiKeyCreate: { secret: string } }).apiKeyCreate.secret;
}

const LOGIN = "mutation($input: AuthLoginInput!) { authLogin(input: $input) { accessToken } }";
const login = (email: string, password: string, from: string) =>
  send(LOGIN, { from, variables: { input: { email, password } } });

describe("sensitive actions", () => {
  it("locks an account after 5 attempts in the window: the right password is refused too", async () => {
    const { email } = await register();
    const from = newAddress();
    for (let i = 0; i < 5; i++) {
      const wrong = await login(email, `wrong password ${i}`, from);
      expect(errorCode(wrong)).toBe("INVALID_CREDENTIALS");
      expect(wrong.status).toBe(401);
    }
    const right = await login(email, PASSWORD, from);
    expect(right.status).toBe(429);
    expect(right.data ?? null).toBeNull();
    expect(right.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(right.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "login:account" });
    // From anywhere: the lock is the account's.
    expect(errorCode(await login(email, PASSWORD, newAddress()))).toBe("RATE_LIMITED");
    // Another account at the same address is not locked.
    const other = await register();
    expect((await login(other.email, PASSWORD, from)).status).toBe(200);
  });

  it("does not count sign-ins that succeed toward the lockout", async () => {
    const { email } = await register();
    for (let i = 0; i < 7; i++) expect((await login(email, PASSWORD, newAddress())).status).toBe(200);
  });

  it("limits attempts per address across accounts", async () => {
    const from = newAddress();
    for (let i = 0; i < 8; i++)
      expect(errorCode(await login(uniqueEmail("spray"), "x", from))).toBe("INVALID_CREDENTIALS");
    const refused = await login(uniqueEmail("spray"), "x", from);
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "login:address" });
  });

  it("counts each aliased reset request, and mails no link beyond the limit", async () => {
    const { email } = await register();
    const aliased = `mutation($e: String!) { ${Array.from({ length: 8 }, (_, i) => `r${i}: passwordForgot(email: $e)`).join(" ")} }`;
    const r = await send(aliased, { from: newAddress(), variables: { e: email } });
    expect(r.status).toBe(429);
    expect(r.errors?.[0]?.path).toEqual(["r5"]);
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "passwordForgot:account" });
    // Per account, from any address.
    const again = await send("mutation($e: String!) { passwordForgot(email: $e) }", {
      from: newAddress(),
      variables: { e: email },
    });
    expect(errorCode(again)).toBe("RATE_LIMITED");
    // A link mailed after the refusals arrives after any they could have caused.
    const sentinel = await register();
    const asked = await send("mutation($e: String!) { passwordForgot(email: $e) }", {
      from: newAddress(),
      variables: { e: sentinel.email },
    });
    expect(asked.data).toEqual({ passwordForgot: true });
    await mail.next(sentinel.email, /Reset/);
    for (let i = 0; i < 5; i++) await mail.next(email, /Reset/);
    expect(mail.received.filter((m) => m.to === email.toLowerCase() && /Reset/.test(m.subject))).toHaveLength(0);
  });

  it("limits API key creation per user, and audits the refused attempts", async () => {
    const user = await register();
    for (let i = 0; i < 5; i++) await createKey(user);
    const refused = await createKeyAs(user);
    expect(refused.status).toBe(429);
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "apiKeyCreate:account" });
    const trail = await send("{ viewer { auditLogs(first: 6) { edges { node { action outcome details } } } } }", {
      from: newAddress(),
      token: user.token,
    });
    const entries = (
      trail.data as {
        viewer: { auditLogs: { edges: { node: { action: string; outcome: string; details: unknown } }[] } };
      }
    ).viewer.auditLogs.edges.map((e) => e.node);
    expect(entries[0]).toMatchObject({ action: "apiKeyCreate", outcome: "FAILED", details: { error: "RATE_LIMITED" } });
    expect(entries.slice(1).every((e) => e.action === "apiKeyCreate" && e.outcome === "ALLOWED")).toBe(true);
  });
});

describe.skipIf(!services)("across instances (services mode)", () => {
  it("shares one budget: spent half on one instance and the rest on the other, refused on both", async () => {
    const other = await startServer(TIGHT);
    try {
      const { token } = await register();
      const from = newAddress();
      for (let i = 0; i < 5; i++) expect((await send(orgPage(33), { from, token })).errors).toBeUndefined();
      for (let i = 0; i < 5; i++) {
        const r = await send(orgPage(33), { from, token, url: other.graphqlUrl });
        expect(r.errors).toBeUndefined();
        expect(r.extensions?.cost?.remaining).toBe(1000 - 100 * (6 + i));
      }
      for (const url of [server.graphqlUrl, other.graphqlUrl]) {
        const refused = await send(orgPage(33), { from, token, url });
        expect(refused.status).toBe(429);
        expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "RATE_LIMITED", bucket: "user" });
      }
    } finally {
      await other.stop();
    }
  });

  it("keeps serving while Redis is cut, counting in memory, and shares again once it is back", async () => {
    const redis = new URL(services?.redisUrl ?? "redis://127.0.0.1:6379");
    const proxy = await startProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    const cut = await startServer({ ...TIGHT, REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
    try {
      const from = newAddress();
      expect((await send("{ __typename }", { from, url: cut.graphqlUrl })).status).toBe(200);
      await proxy.cut();
      const during: Answer[] = [];
      for (let i = 0; i < 3; i++)
        during.push(await send("{ a: __typename b: __typename }", { from, url: cut.graphqlUrl }));
      for (const r of during) {
        expect(r.status).toBe(200);
        expect(r.data).toEqual({ a: "Query", b: "Query" });
        expectHeaders(r);
      }
      // The in-memory counter still counts: its remaining budget goes down.
      expect(during.map((r) => r.extensions?.cost?.remaining)).toEqual([298, 296, 294]);
      const { refused } = await spendUntilRefused("{ a: __typename b: __typename c: __typename }", {
        from,
        url: cut.graphqlUrl,
      });
      expect(refused.status).toBe(429);
      await proxy.restore();
      await until(
        () => fetch(`${cut.url}/health/readiness`),
        (r) => r.status === 200,
      );
      // Counted in Redis again: where it was before the cut (one point spent), not in memory.
      const after = await send("{ a: __typename b: __typename }", { from, url: cut.graphqlUrl });
      expect(after.status).toBe(200);
      expect(after.extensions?.cost?.remaining).toBe(297);
    } finally {
      await cut.stop();
      proxy.close();
    }
  });
});
