// /metrics as Prometheus scrapes it: the token enforced, operations counted alike on every
// path (fast path, Yoga's GET, graphql-ws), errors by code, the gauges read at scrape time,
// label cardinality bounded against hostile operation names, and an answer (NaN, not a
// failure) while the database is cut.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { gql, wsClient, wsRequest } from "./helpers/client.ts";
import { createUser } from "./helpers/factories.ts";
import { subscribe } from "./helpers/live.ts";
import { services, startServer, type TestServer, testEnv } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

const TOKEN = "scrape-0123456789abcdef0123456789";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The text exposition format, strictly: a line that does not parse fails the test. */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? "";
    const pair = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let m = pair.exec(body); m; m = pair.exec(body)) {
      labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      consumed = pair.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`labels do not parse: ${JSON.stringify(line)}`);
    const raw = match[3] as string;
    // Prometheus reads NaN in any letter case (Go's ParseFloat); prom-client writes "Nan".
    const nan = raw.toLowerCase() === "nan";
    const value = nan ? Number.NaN : raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (!nan && Number.isNaN(value)) throw new Error(`value does not parse: ${JSON.stringify(line)}`);
    samples.push({ name: match[1] as string, labels, value });
  }
  return samples;
}

async function scrape(server: TestServer, token: string | null = TOKEN) {
  const response = await fetch(`${server.url}/metrics`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`scrape answered ${response.status}: ${text}`);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return { text, samples: parse(text) };
}

/** The sum of the samples of `name` whose labels include `labels`. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}) {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return found.length ? found.reduce((n, s) => n + s.value, 0) : undefined;
}

const OPS = "floyo_graphql_operation_duration_seconds_count";
const ERRORS = "floyo_graphql_errors_total";
const post = (server: TestServer, body: unknown, headers: Record<string, string> = {}) =>
  fetch(server.graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

describe("/metrics with a token", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ METRICS_TOKEN: TOKEN, ANALYSIS_POLL_MS: "100" });
  });
  afterAll(() => server.stop());

  it("answers only the bearer token: 401 without it or with another, 200 with it; GET and HEAD only", async () => {
    const url = `${server.url}/metrics`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="metrics"');
    expect(await none.text()).not.toContain("floyo_");
    for (const authorization of [
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}`,
      `Bearer ${TOKEN} ${TOKEN}`,
      "Bearer ",
      TOKEN,
    ]) {
      expect((await fetch(url, { headers: { authorization } })).status, authorization).toBe(401);
    }
    expect((await fetch(`${url}?token=${TOKEN}`)).status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: `bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("cache-control")).toBe("no-store");
    const head = await fetch(url, { method: "HEAD", headers: { authorization: `Bearer ${TOKEN}` } });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
    const postStatus = (await fetch(url, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status;
    expect(postStatus).toBe(405);
    expect((await fetch(`${server.url}/metrics/extra`)).status).toBe(404);
  });

  it("counts operations by name, type and outcome alike on the fast path, Yoga's GET and graphql-ws; errors by code", async () => {
    const before = (await scrape(server)).samples;
    for (let i = 0; i < 3; i++) {
      expect((await gql(server.graphqlUrl, "query MetricsPing { __typename }")).data).toEqual({ __typename: "Query" });
    }
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent("query MetricsGet { __typename }")}`);
    expect(((await get.json()) as { data: unknown }).data).toEqual({ __typename: "Query" });
    const client = wsClient(server.wsUrl);
    try {
      expect((await wsRequest(client, "query MetricsPing { __typename }")).data).toEqual({ __typename: "Query" });
    } finally {
      await client.dispose();
    }
    // Refused at validation, at parse, and while building the context (bad credentials).
    const invalid = await gql(server.graphqlUrl, "query MetricsBroken { noSuchField }");
    expect(invalid.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const syntax = await post(server, { query: "query MetricsSyntax {", operationName: "MetricsSyntax" });
    expect(syntax.status).toBe(400);
    const unauthenticated = await gql(server.graphqlUrl, "query MetricsWho { __typename }", {
      headers: { authorization: "Bearer not-a-token" },
    });
    expect(unauthenticated.errors?.[0]?.extensions?.code).toBe("TOKEN_MALFORMED");

    const after = (await scrape(server)).samples;
    const delta = (name: string, labels: Record<string, string>) =>
      (value(after, name, labels) ?? 0) - (value(before, name, labels) ?? 0);
    expect(delta(OPS, { operation_name: "MetricsPing", operation_type: "query", outcome: "ok" })).toBe(4);
    expect(delta(OPS, { operation_name: "MetricsGet", operation_type: "query", outcome: "ok" })).toBe(1);
    expect(delta(OPS, { operation_name: "MetricsPing", outcome: "error" })).toBe(0);
    // Not valid, so not admitted to a series of its own: "other".
    expect(delta(OPS, { operation_name: "other", operation_type: "query", outcome: "error" })).toBe(1);
    // A syntax error names no operation type; the name it claims is not trusted either.
    expect(delta(OPS, { operation_name: "other", operation_type: "unknown", outcome: "error" })).toBe(1);
    expect(delta(OPS, { operation_name: "MetricsWho", operation_type: "query", outcome: "error" })).toBe(1);
    expect(delta(ERRORS, { code: "GRAPHQL_VALIDATION_FAILED" })).toBe(1);
    expect(delta(ERRORS, { code: "GRAPHQL_PARSE_FAILED" })).toBe(1);
    expect(delta(ERRORS, { code: "TOKEN_MALFORMED" })).toBe(1);
    // The histogram's buckets hold the same operations.
    const inf = { operation_name: "MetricsPing", outcome: "ok", le: "+Inf" };
    expect(delta("floyo_graphql_operation_duration_seconds_bucket", inf)).toBe(4);
  });

  it("counts subscriptions and WebSockets open while they are, and no more once closed", async () => {
    const user = await createUser(server.graphqlUrl);
    const feed = subscribe(
      server.wsUrl,
      { authorization: `Bearer ${user.token}` },
      "subscription MetricsLive($org: ID!) { eventsRecorded(organizationId: $org) { cursor kind } }",
      { org: user.org.id },
    );
    const open = await until(
      () => scrape(server),
      // The socket of an earlier test may still be closing: both, then.
      ({ samples }) =>
        value(samples, "floyo_graphql_subscriptions_open") === 1 && value(samples, "floyo_websockets_open") === 1,
    );
    expect(value(open.samples, OPS, { operation_name: "MetricsLive", operation_type: "subscription" })).toBe(1);
    // Nothing that names a user, an organization or a token is a label (or anywhere in the text).
    for (const secret of [user.email, user.user.id, user.org.id, user.token, TOKEN]) {
      expect(open.text).not.toContain(secret);
    }
    await feed.close();
    const closed = await until(
      () => scrape(server),
      ({ samples }) =>
        value(samples, "floyo_graphql_subscriptions_open") === 0 && value(samples, "floyo_websockets_open") === 0,
    );
    expect(value(closed.samples, "floyo_graphql_subscriptions_open")).toBe(0);
  });

  it("shows the pool, the breaker, the scheduler, the live outbox, the analysis backlog, jobs and the process", async () => {
    const user = await createUser(server.graphqlUrl);
    const recorded = await gql(
      server.graphqlUrl,
      "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
      { token: user.token, variables: { input: { event: { kind: "FILE_OPENED", filePath: "/tmp/metrics.txt" } } } },
    );
    expect(recorded.errors).toBeUndefined();
    const { text, samples } = await until(
      () => scrape(server),
      ({ samples }) =>
        // Embedded, this instance is the only one: it leads and it analyses what was recorded.
        services !== undefined ||
        (value(samples, "floyo_scheduler_leader") === 1 &&
          (value(samples, "floyo_job_runs_total", { job: "analysis" }) ?? 0) >= 1),
    );
    expect(value(samples, "floyo_db_breaker_state", { state: "closed" })).toBe(1);
    expect(value(samples, "floyo_db_breaker_state", { state: "open" })).toBe(0);
    expect(value(samples, "floyo_db_breaker_state", { state: "half-open" })).toBe(0);
    if (services) {
      expect(value(samples, "floyo_db_pool_max")).toBe(10);
      expect(value(samples, "floyo_db_pool_in_use")).toBeGreaterThanOrEqual(0);
      expect(value(samples, "floyo_db_pool_idle")).toBeGreaterThanOrEqual(0);
      expect(value(samples, "floyo_db_pool_waiting")).toBe(0);
    } else {
      // PGlite has no pool: no pool gauges rather than made-up ones.
      expect(value(samples, "floyo_db_pool_max")).toBeUndefined();
    }
    const leader = value(samples, "floyo_scheduler_leader");
    const token = value(samples, "floyo_scheduler_fencing_token");
    expect([0, 1]).toContain(leader);
    // A token while leading, none while following.
    expect(leader === 1 ? token! > 0 : token === 0).toBe(true);
    for (const name of [
      "floyo_live_outbox_pending",
      "floyo_live_outbox_oldest_seconds",
      "floyo_analysis_backlog_events",
      "floyo_analysis_backlog_oldest_seconds",
    ]) {
      expect(value(samples, name), name).toBeGreaterThanOrEqual(0);
    }
    for (const job of ["analysis", "executions", "scheduler_tick", "retention", "upload_sweep"]) {
      expect(value(samples, "floyo_job_runs_total", { job }), job).toBeGreaterThanOrEqual(0);
      expect(value(samples, "floyo_job_failures_total", { job }), job).toBeGreaterThanOrEqual(0);
    }
    // Counters with no sample until something is counted are still declared.
    for (const name of ["floyo_rate_limit_rejections_total", "floyo_cost_spent_total", ERRORS]) {
      expect(text).toContain(`# TYPE ${name} counter`);
    }
    expect(value(samples, "process_resident_memory_bytes")).toBeGreaterThan(0);
    expect(value(samples, "nodejs_eventloop_lag_seconds")).toBeGreaterThanOrEqual(0);
  });
});

describe("/metrics in the open", () => {
  let server: TestServer;
  beforeAll(async () => {
    // Outside production and without a token, served to anyone (as a development server).
    server = await startServer({ METRICS_TOKEN: undefined });
  });
  afterAll(() => server.stop());

  it("keeps operation-name series bounded against 500 distinct names and hostile ones", async () => {
    const hostile = ["constructor", "__proto__", "toString", "hasOwnProperty"];
    for (const name of hostile)
      expect((await gql(server.graphqlUrl, `query ${name} { __typename }`)).data).toBeTruthy();
    const names = Array.from({ length: 500 }, (_, i) => `Flood${i}_${"x".repeat(i % 40)}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((n) => gql(server.graphqlUrl, `query ${n} { __typename }`)));
    }
    // Names too long for a series, and names a client claims for a document that does not parse.
    const long = `L${"o".repeat(64)}ng`;
    expect((await gql(server.graphqlUrl, `query ${long} { __typename }`)).data).toBeTruthy();
    for (const claimed of ['evil"} 1\nfloyo_injected 1', "x".repeat(10_000), "__proto__", "Flood999"]) {
      expect((await post(server, { query: "query {", operationName: claimed })).status).toBe(400);
    }
    expect((await gql(server.graphqlUrl, "{ __typename }")).data).toBeTruthy();

    const { text, samples } = await scrape(server, null);
    expect(text).not.toContain("floyo_injected");
    const counts = samples.filter((s) => s.name === OPS);
    const labelled = new Set(counts.map((s) => s.labels.operation_name));
    // At most the default 200 names of their own, plus "other" and "anonymous".
    expect(labelled.size).toBeLessThanOrEqual(202);
    expect(labelled.size).toBeGreaterThan(100);
    for (const name of hostile) expect(value(samples, OPS, { operation_name: name, outcome: "ok" }), name).toBe(1);
    expect(labelled.has(long)).toBe(false);
    expect(labelled.has("Flood999")).toBe(false);
    // Every operation is still counted, under its name or under "other".
    const total = counts.reduce((n, s) => n + s.value, 0);
    expect(total).toBe(hostile.length + names.length + 1 + 4 + 1);
    expect(value(samples, OPS, { operation_name: "other" })).toBeGreaterThanOrEqual(500 + 1 + 4 - 200);
    expect(value(samples, OPS, { operation_name: "anonymous", outcome: "ok" })).toBe(1);
  });
});

describe("/metrics turned off", () => {
  it("is 404 without a token when METRICS_PUBLIC=false, as in production by default", async () => {
    const server = await startServer({ METRICS_PUBLIC: "false" });
    try {
      const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(response.status).toBe(404);
      expect(await response.text()).toMatch(/METRICS_TOKEN/);
    } finally {
      await server.stop();
    }
  });

  it("is off in production unless a token or METRICS_PUBLIC=true is set; the two together and weak tokens are refused", () => {
    const production = {
      NODE_ENV: "production",
      JWT_KEYS: "k1:0123456789abcdef0123456789abcdef-strong",
      CORS_ORIGINS: "https://app.floyo.test",
      DATABASE_URL: "postgresql://floyo@db.internal:5432/floyo",
      REDIS_URL: "redis://cache.internal:6379",
      SMTP_URL: "smtp://mail.internal:587",
      PASSWORD_HASH_LOG_N: "15",
    };
    expect(loadConfig(testEnv(production)).metrics).toMatchObject({ token: undefined, public: false });
    expect(loadConfig(testEnv({ ...production, METRICS_PUBLIC: "true" })).metrics.public).toBe(true);
    expect(loadConfig(testEnv({ ...production, METRICS_TOKEN: TOKEN })).metrics.token).toBe(TOKEN);
    expect(loadConfig(testEnv({})).metrics.public).toBe(true);
    const refused = (env: Record<string, string>) => () => loadConfig(testEnv({ ...production, ...env }));
    expect(refused({ METRICS_TOKEN: TOKEN, METRICS_PUBLIC: "true" })).toThrow(ConfigError);
    expect(refused({ METRICS_TOKEN: "short" })).toThrow(/METRICS_TOKEN/);
    expect(refused({ METRICS_TOKEN: "with spaces in it 0123456789" })).toThrow(/METRICS_TOKEN/);
  });
});

describe.runIf(services)("/metrics while PostgreSQL is cut", () => {
  it("still answers 200: what the database must tell is NaN, the rest is there", async () => {
    const dbUrl = new URL(services!.databaseUrl);
    const proxy = await startProxy({ host: dbUrl.hostname, port: Number(dbUrl.port || 5432) });
    dbUrl.host = `127.0.0.1:${proxy.port}`;
    const server = await startServer({ DATABASE_URL: dbUrl.toString(), METRICS_TOKEN: TOKEN });
    try {
      const up = (await scrape(server)).samples;
      expect(value(up, "floyo_live_outbox_pending")).toBeGreaterThanOrEqual(0);
      await proxy.cut();
      const down = (await scrape(server)).samples;
      for (const name of [
        "floyo_live_outbox_pending",
        "floyo_live_outbox_oldest_seconds",
        "floyo_analysis_backlog_events",
        "floyo_analysis_backlog_oldest_seconds",
      ]) {
        expect(value(down, name), name).toBeNaN();
      }
      expect(value(down, "floyo_db_pool_max")).toBe(10);
      expect(value(down, "process_resident_memory_bytes")).toBeGreaterThan(0);
      await proxy.restore();
      await until(
        () => scrape(server),
        ({ samples }) => !Number.isNaN(value(samples, "floyo_analysis_backlog_events")),
      );
    } finally {
      await server.stop();
      proxy.close();
    }
  });
});
