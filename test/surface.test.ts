// The production surface (issue 13, part 4), on every path a request can take: the JSON fast
// path, Yoga's own handler (GET, application/graphql+json, multipart, SSE) and graphql-ws.
// Introspection is refused to anonymous callers, "Did you mean" never leaks, every HTTP
// response carries the security headers, slow clients and slow operations are cut off.
// With PostgreSQL and Redis (the services mode) the first server runs NODE_ENV=production;
// embedded, production needs services, so it sets what production defaults to instead.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { gql, wsClient } from "./helpers/client.ts";
import { createUser, PASSWORD, uniqueEmail } from "./helpers/factories.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { services, startServer, type TestServer, testEnv } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

type Result = {
  status?: number;
  headers?: Headers;
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
};
type Auth = { token?: string; apiKey?: string };
type Options = { variables?: Record<string, unknown>; operationName?: string; auth?: Auth };
type Send = (url: string, query: string, options?: Options) => Promise<Result>;

const GRAPHQL_RESPONSE = "application/graphql-response+json";
const credentials = (auth: Auth = {}): Record<string, string> => ({
  ...(auth.token ? { authorization: `Bearer ${auth.token}` } : {}),
  ...(auth.apiKey ? { "x-api-key": auth.apiKey } : {}),
});
const answer = async (response: Response): Promise<Result> => ({
  status: response.status,
  headers: response.headers,
  ...(await response.json()),
});
const body = (query: string, o: Options) =>
  JSON.stringify({ query, variables: o.variables, operationName: o.operationName });

/** Yoga answers SSE with one `next` event per result, then `complete`. */
async function fromStream(response: Response): Promise<Result> {
  const text = await response.text();
  if (!response.headers.get("content-type")?.startsWith("text/event-stream"))
    return { status: response.status, headers: response.headers, ...JSON.parse(text) };
  const data = /^data: (.+)$/m.exec(text)?.[1];
  return { status: response.status, headers: response.headers, ...(data ? JSON.parse(data) : {}) };
}

const PATHS: [string, Send][] = [
  [
    "the JSON fast path",
    async (url, query, o = {}) =>
      answer(
        await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: GRAPHQL_RESPONSE, ...credentials(o.auth) },
          body: body(query, o),
        }),
      ),
  ],
  [
    "GET",
    async (url, query, o = {}) => {
      const params = new URLSearchParams({ query });
      if (o.variables) params.set("variables", JSON.stringify(o.variables));
      if (o.operationName) params.set("operationName", o.operationName);
      return answer(await fetch(`${url}?${params}`, { headers: { accept: GRAPHQL_RESPONSE, ...credentials(o.auth) } }));
    },
  ],
  [
    "Yoga's POST (application/graphql+json)",
    async (url, query, o = {}) =>
      answer(
        await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/graphql+json", accept: GRAPHQL_RESPONSE, ...credentials(o.auth) },
          body: body(query, o),
        }),
      ),
  ],
  [
    "multipart",
    async (url, query, o = {}) => {
      const form = new FormData();
      form.set("operations", body(query, o));
      form.set("map", "{}");
      return answer(
        await fetch(url, {
          method: "POST",
          headers: { "graphql-preflight": "1", accept: GRAPHQL_RESPONSE, ...credentials(o.auth) },
          body: form,
        }),
      );
    },
  ],
  [
    "SSE",
    async (url, query, o = {}) =>
      fromStream(
        await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "text/event-stream", ...credentials(o.auth) },
          body: body(query, o),
        }),
      ),
  ],
  ["graphql-ws", (url, query, o = {}) => overWebSocket(url, query, o)],
];

/** One operation on a connection of its own; credentials in connection_init, as clients send them. */
async function overWebSocket(url: string, query: string, o: Options = {}): Promise<Result> {
  const client = wsClient(url.replace(/^http/, "ws"), credentials(o.auth));
  try {
    return await new Promise<Result>((resolve, reject) => {
      let result: Result | undefined;
      client.subscribe(
        { query, variables: o.variables, operationName: o.operationName },
        {
          next: (value) => {
            result = value as Result;
          },
          error: (err) => (Array.isArray(err) ? resolve({ errors: err }) : reject(err)),
          complete: () => (result ? resolve(result) : reject(new Error("completed without a result"))),
        },
      );
    });
  } finally {
    await client.dispose();
  }
}

const fastPath = PATHS[0]![1];
const INTROSPECTION = "{ __schema { queryType { name } } }";
const code = (r: Result) => r.errors?.[0]?.extensions?.code;

async function apiKeyOf(url: string, token: string, organizationId: string) {
  const r = await gql<{ apiKeyCreate: { secret: string } }>(
    url,
    "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
    { token, variables: { input: { organizationId, name: "sdk generator", role: "VIEWER" } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.apiKeyCreate.secret;
}

// The production server, and one with the defaults outside production (public introspection,
// suggestions, GraphiQL, no HSTS): what the production one refuses, this one shows, so each
// case below is one that would leak.
let prod: TestServer;
let dev: TestServer;
let mail: MailCatcher;
let user: { token: string; apiKey: string };
beforeAll(async () => {
  mail = await startMailCatcher();
  const production = services
    ? { NODE_ENV: "production", CORS_ORIGINS: "https://app.floyo.test", PASSWORD_HASH_LOG_N: "15" }
    : { INTROSPECTION: "authenticated", GRAPHQL_SUGGESTIONS: "false", HSTS_MAX_AGE: "31536000", GRAPHIQL: "false" };
  [prod, dev] = await Promise.all([
    startServer({ ...production, SMTP_URL: mail.url, JOBS_ENABLED: "false" }),
    startServer({ JOBS_ENABLED: "false" }),
  ]);
  const alice = await createUser(prod.graphqlUrl);
  user = { token: alice.token, apiKey: await apiKeyOf(prod.graphqlUrl, alice.token, alice.org.id) };
});
afterAll(async () => {
  await Promise.all([prod?.stop(), dev?.stop()]);
  await mail?.close();
});

describe("configuration", () => {
  const production = {
    NODE_ENV: "production",
    CORS_ORIGINS: "https://app.floyo.test",
    DATABASE_URL: "postgresql://floyo@db:5432/floyo",
    REDIS_URL: "redis://redis:6379",
    SMTP_URL: "smtp://mail:25",
    PASSWORD_HASH_LOG_N: "15",
  };

  it("defaults to authenticated introspection, no suggestions and a year of HSTS in production only", () => {
    expect(loadConfig(testEnv(production))).toMatchObject({
      introspection: "authenticated",
      suggestions: false,
      hstsMaxAge: 31_536_000,
    });
    expect(loadConfig(testEnv())).toMatchObject({ introspection: "public", suggestions: true, hstsMaxAge: 0 });
    expect(loadConfig(testEnv({ ...production, INTROSPECTION: "public" })).introspection).toBe("public");
  });

  it.each([
    [{ INTROSPECTION: "partners" }, "INTROSPECTION"],
    [{ HEADERS_TIMEOUT_MS: "5000", REQUEST_TIMEOUT_MS: "1000" }, "HEADERS_TIMEOUT_MS"],
    [{ OPERATION_TIMEOUT_MS: "-1" }, "OPERATION_TIMEOUT_MS"],
  ])("refuses %o, naming %s", (env, name) => {
    expect(() => loadConfig(testEnv(env))).toThrow(ConfigError);
    expect(() => loadConfig(testEnv(env))).toThrow(name);
  });
});

describe("introspection in production", () => {
  it.each(PATHS)("is refused to an anonymous caller over %s, with INTROSPECTION_DISABLED", async (name, send) => {
    const r = await send(prod.graphqlUrl, INTROSPECTION);
    expect(code(r)).toBe("INTROSPECTION_DISABLED");
    expect(r.data ?? null).toBeNull();
    if (name !== "graphql-ws" && name !== "SSE") expect(r.status).toBe(403);
  });

  it.each(PATHS)("is answered to a signed-in user and to an API key over %s", async (_name, send) => {
    for (const auth of [{ token: user.token }, { apiKey: user.apiKey }]) {
      const r = await send(prod.graphqlUrl, INTROSPECTION, { auth });
      expect(r.errors).toBeUndefined();
      expect(r.data).toEqual({ __schema: { queryType: { name: "Query" } } });
    }
  });

  const tricks: [string, string, string?][] = [
    ["a named fragment", "{ ...F } fragment F on Query { __schema { types { name } } }"],
    ["an aliased __type", '{ t: __type(name: "User") { fields { name } } }'],
    ["an aliased __schema in an inline fragment", "{ ... on Query { s: __schema { queryType { name } } } }"],
    [
      "a fragment inside a fragment",
      '{ ...A } fragment A on Query { ...B } fragment B on Query { __type(name: "User") { name } }',
    ],
    [
      "a directive-wrapped inline fragment",
      "{ __typename ... @include(if: true) { __schema { queryType { name } } } }",
    ],
    [
      "a fragment named constructor",
      "{ ...constructor } fragment constructor on Query { __schema { types { name } } }",
    ],
    ["a fragment named __proto__", "{ ...__proto__ } fragment __proto__ on Query { __schema { types { name } } }"],
    [
      "the introspecting operation of two",
      "query Safe { __typename } query Peek { __schema { types { name } } }",
      "Peek",
    ],
  ];

  it.each(tricks)("sees through %s, on every path", async (_name, query, operationName) => {
    for (const [, send] of PATHS)
      expect(code(await send(prod.graphqlUrl, query, { operationName }))).toBe("INTROSPECTION_DISABLED");
  });

  it("lets __typename through, and the harmless operation of a document that also introspects", async () => {
    for (const [, send] of PATHS) {
      expect((await send(prod.graphqlUrl, "{ __typename }")).data).toEqual({ __typename: "Query" });
      const safe = await send(prod.graphqlUrl, tricks.at(-1)![1], { operationName: "Safe" });
      expect(safe.data).toEqual({ __typename: "Query" });
    }
  });

  it("is answered to anyone outside production (INTROSPECTION=public, the default there)", async () => {
    for (const [, send] of PATHS) {
      const r = await send(dev.graphqlUrl, tricks[0]![1]);
      expect(r.errors).toBeUndefined();
      expect((r.data as { __schema: { types: unknown[] } }).__schema.types.length).toBeGreaterThan(10);
    }
  });
});

describe("suggestions", () => {
  // Each makes graphql-js or the executor suggest something: a field, an argument, a type, an
  // enum value (literal and variable), an input field, an inline fragment, a sub-selection.
  const cases: [string, string, Record<string, unknown>?][] = [
    ["a mistyped field", "{ viewr { id } }"],
    ["a mistyped argument", '{ node(idd: "x") { id } }'],
    ["a mistyped enum literal", '{ liveCursor(feed: EVENT, organizationId: "x") }'],
    ["a mistyped type", "query($x: Strin) { __typename }"],
    ["a field of an implementation asked of the interface", '{ node(id: "x") { email } }'],
    ["an object field without a selection", "{ viewer }"],
    [
      "a mistyped enum value in a variable",
      'query($f: LiveFeed!) { liveCursor(feed: $f, organizationId: "x") }',
      { f: "EVENT" },
    ],
    [
      "a mistyped input field in a variable",
      "query($f: AuditFilter) { viewer { auditLogs(first: 1, filter: $f) { edges { cursor } } } }",
      { f: { outcom: "ALLOWED" } },
    ],
  ];

  it.each(cases)("are shown for %s outside production", async (_name, query, variables) => {
    const r = await fastPath(dev.graphqlUrl, query, { variables });
    expect(r.errors?.map((e) => e.message).join(" ")).toMatch(/Did you mean/);
  });

  it.each(cases)("are hidden for %s in production, on every path", async (_name, query, variables) => {
    for (const [path, send] of PATHS) {
      const r = await send(prod.graphqlUrl, query, { variables });
      expect(r.errors?.length, path).toBeGreaterThan(0);
      expect(JSON.stringify(r.errors), path).not.toMatch(/did you mean|suggestion/i);
      expect(["GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"], path).toContain(code(r));
    }
  });
});

describe("security headers", () => {
  const requests: [string, (base: string) => Promise<Response>][] = [
    ["a query on the fast path", (b) => post(b, '{"query":"{ __typename }"}')],
    ["invalid JSON on the fast path (400)", (b) => post(b, "{nope")],
    ["a refused introspection (403)", (b) => post(b, JSON.stringify({ query: INTROSPECTION }))],
    ["a GET query", (b) => fetch(`${b}/graphql?query=${encodeURIComponent("{ __typename }")}`)],
    [
      "an application/graphql+json query",
      (b) => post(b, '{"query":"{ __typename }"}', { "content-type": "application/graphql+json" }),
    ],
    ["an SSE query", (b) => post(b, '{"query":"{ __typename }"}', { accept: "text/event-stream" })],
    ["a forged form post (415)", (b) => post(b, "query={__typename}", { "content-type": "text/plain" })],
    [
      "a body over the limit (413)",
      (b) => post(b, JSON.stringify({ query: `{ __typename } #${"x".repeat(2 ** 21)}` })),
    ],
    [
      "a multipart body without a length (411)",
      (b) =>
        fetch(`${b}/graphql`, {
          method: "POST",
          headers: { "content-type": "multipart/form-data; boundary=x", "graphql-preflight": "1" },
          body: new ReadableStream({ pull: (c) => c.close() }),
          duplex: "half",
        } as RequestInit),
    ],
    [
      "a CORS preflight",
      (b) =>
        fetch(`${b}/graphql`, {
          method: "OPTIONS",
          headers: { origin: "https://app.floyo.test", "access-control-request-method": "POST" },
        }),
    ],
    ["/health", (b) => fetch(`${b}/health`)],
    ["/health/liveness", (b) => fetch(`${b}/health/liveness`)],
    ["an unknown /health route (404)", (b) => fetch(`${b}/health/nope`)],
    ["/downloads without a link (4xx)", (b) => fetch(`${b}/downloads/export`)],
    ["an unknown /downloads route (404)", (b) => fetch(`${b}/downloads/nope`)],
    ["an unknown path (404)", (b) => fetch(`${b}/nope`)],
    ["/metrics", (b) => fetch(`${b}/metrics`)],
  ];

  function post(base: string, text: string, headers: Record<string, string> = {}) {
    return fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: text,
    });
  }

  it.each(requests)("are on %s", async (_name, request) => {
    const response = await request(prod.url);
    await response.arrayBuffer();
    const h = response.headers;
    expect(h.get("x-content-type-options")).toBe("nosniff");
    expect(h.get("referrer-policy")).toBe("no-referrer");
    expect(h.get("x-frame-options")).toBe("DENY");
    expect(h.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(h.get("cross-origin-resource-policy")).toBe("same-origin");
    expect(h.get("strict-transport-security")).toBe("max-age=31536000");
    expect(h.get("cache-control")).toBe("no-store");
  });

  it("say no-store on GraphQL answers, and no HSTS outside production", async () => {
    const response = await post(dev.url, '{"query":"{ __typename }"}');
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("strict-transport-security")).toBeNull();
  });

  it("leave GraphiQL its scripts but not a frame", async () => {
    const page = await fetch(dev.graphqlUrl, { headers: { accept: "text/html" } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<script/);
    expect(page.headers.get("content-security-policy")).toBe("frame-ancestors 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    // Production has no GraphiQL (GRAPHIQL unset): the same request gets the API's policy.
    const none = await fetch(prod.graphqlUrl, { headers: { accept: "text/html" } });
    await none.arrayBuffer();
    expect(none.headers.get("content-security-policy")).toBe("default-src 'none'; frame-ancestors 'none'");
  });
});

describe("timeouts", () => {
  // INTROSPECTION=off, short timeouts, SMTP (and PostgreSQL in the services mode) behind
  // proxies this suite can pause: a mail server or database that stopped answering.
  let server: TestServer;
  let smtp: Awaited<ReturnType<typeof startProxy>>;
  let db: Awaited<ReturnType<typeof startProxy>> | undefined;
  const OPERATION_TIMEOUT_MS = 1500;
  beforeAll(async () => {
    const catcher = new URL(mail.url);
    smtp = await startProxy({ host: catcher.hostname, port: Number(catcher.port) });
    const env: Record<string, string> = {
      INTROSPECTION: "off",
      JOBS_ENABLED: "false",
      SMTP_URL: `smtp://127.0.0.1:${smtp.port}`,
      HEADERS_TIMEOUT_MS: "500",
      REQUEST_TIMEOUT_MS: "1000",
      OPERATION_TIMEOUT_MS: String(OPERATION_TIMEOUT_MS),
      // Each path must run the slow query itself, not read the first one's answer.
      RESPONSE_CACHE: "off",
    };
    if (services) {
      const target = new URL(services.databaseUrl);
      db = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
      target.host = `127.0.0.1:${db.port}`;
      env.DATABASE_URL = target.toString();
    }
    server = await startServer(env);
  });
  afterAll(async () => {
    smtp?.resume();
    db?.resume();
    await server?.stop();
    smtp?.close();
    db?.close();
  });

  it("refuses introspection even to a signed-in user with INTROSPECTION=off", async () => {
    const bob = await createUser(server.graphqlUrl);
    for (const [, send] of PATHS)
      expect(code(await send(server.graphqlUrl, INTROSPECTION, { auth: { token: bob.token } }))).toBe(
        "INTROSPECTION_DISABLED",
      );
  });

  /** The raw answer to bytes sent on a connection that then goes quiet, up to Node closing it. */
  function quietClient(bytes: string) {
    const { port } = new URL(server.url);
    return new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(port), "127.0.0.1", () => socket.write(bytes));
      let received = "";
      socket.on("data", (chunk) => {
        received += chunk;
      });
      socket.on("close", () => resolve(received));
      socket.on("error", reject);
    });
  }

  it("answers 408 and disconnects a client that never finishes its headers (slowloris)", async () => {
    const answer = await quietClient("GET /health/liveness HTTP/1.1\r\nHost: api\r\nX-Slow: 1");
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("answers 408 and disconnects a client that never finishes its body", async () => {
    const answer = await quietClient(
      'POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("answers a mutation past its deadline TIMEOUT with an unknown outcome; it commits, and the audit says so", async () => {
    const email = uniqueEmail("slow-mail");
    smtp.pause();
    onTestFinished(() => smtp.resume());
    const r = await fastPath(
      server.graphqlUrl,
      "mutation($input: AuthRegisterInput!) { authRegister(input: $input) { user { id } } }",
      { variables: { input: { email, password: PASSWORD, fullName: "Slow Mail" } } },
    );
    expect(r.errors?.[0]?.extensions).toMatchObject({ code: "TIMEOUT", retryable: false, outcome: "UNKNOWN" });
    expect(r.data).toBeNull();
    // Not a 503: a client or proxy retrying it would register twice.
    expect(r.status).toBe(200);
    expect(r.headers?.get("retry-after")).toBeNull();

    smtp.resume();
    await mail.next(email, /verify/i);
    const login = await gql<{ authLogin: { accessToken: string } }>(
      server.graphqlUrl,
      "mutation($input: AuthLoginInput!) { authLogin(input: $input) { accessToken } }",
      { variables: { input: { email, password: PASSWORD } } },
    );
    expect(login.errors).toBeUndefined();
    const token = login.data!.authLogin.accessToken;
    const entries = await until(
      async () =>
        (
          await gql<{ viewer: { auditLogs: { edges: { node: { action: string; outcome: string } }[] } } }>(
            server.graphqlUrl,
            '{ viewer { auditLogs(first: 5, filter: { action: "authRegister" }) { edges { node { action outcome } } } } }',
            { token },
          )
        ).data?.viewer.auditLogs.edges.map((e) => e.node) ?? [],
      (found) => found.length > 0,
    );
    expect(entries).toEqual([{ action: "authRegister", outcome: "ALLOWED" }]);
  });

  it.runIf(services)(
    "answers a query past its deadline TIMEOUT, 503 with Retry-After, on every path; then serves again",
    async () => {
      const carol = await createUser(server.graphqlUrl);
      const auth = { token: carol.token };
      const query = "{ viewer { id email } }";
      // Credentials are checked (and cached) before the database stops answering.
      expect((await fastPath(server.graphqlUrl, query, { auth })).errors).toBeUndefined();
      db!.pause();
      onTestFinished(() => db!.resume());
      for (const [path, send] of PATHS) {
        const r = await send(server.graphqlUrl, query, { auth });
        // The first paths wait out their deadline. Background work fails against the same
        // stopped database meanwhile, so on a slow machine the breaker may open before the last
        // path: refused at once, SERVICE_UNAVAILABLE. Either way retryable, 503, Retry-After.
        const code = path === PATHS[0]![0] ? "TIMEOUT" : expect.stringMatching(/^(TIMEOUT|SERVICE_UNAVAILABLE)$/);
        expect(r.errors?.[0]?.extensions, path).toMatchObject({ code, retryable: true });
        if (path !== "graphql-ws" && path !== "SSE") {
          expect(r.status, path).toBe(503);
          expect(r.headers?.get("retry-after"), path).toMatch(/^\d+$/);
        }
      }
      db!.resume();
      // An open breaker lets a probe through before it serves everyone again.
      const again = await until(
        () => fastPath(server.graphqlUrl, query, { auth }),
        (r) => r.data !== undefined && r.data !== null,
      );
      expect(again.data).toEqual({ viewer: { id: carol.user.id, email: carol.email } });
    },
  );
});
