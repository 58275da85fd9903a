// The Floyo API measured beside PostGraphile 5 and a raw `pg` server on the same PostgreSQL
// database, plus its warm reads, cold start and live fan-out.
//
//   cd bench && npm install && npm run bench        (= npx tsx run.ts)
//
// Scenarios (--scenario, comma-separated; default: all but live):
//   typename   `{ __typename }`: ours and PostGraphile
//   nested     user -> 20 memberships -> organization: ours, PostGraphile, raw pg
//   deep       organization -> workflows(first: 20) -> executions(first: 5): ours, PostGraphile, raw pg
//   ingest     eventRecordBatch of 100 events, 5 connections, events/s: ours and raw pg
//   warm       nested and deep again, the API started with its response cache on: ours and PostGraphile
//   coldstart  embedded mode (no DATABASE_URL, no REDIS_URL) to GET /health/readiness 200, on an
//              empty DATA_DIR and again on that one after a clean stop
//   live       bench/live.ts: subscribers over one or two instances through Redis
//   all        every one of them
//
// Prepares the API source to measure (by default a snapshot of the HEAD commit, built with its
// own `npm run build` when it has one; see api-source.ts), seeds floyo_bench when it is missing
// or seeded by another version of seed.ts or for other migrations, starts the servers on free
// loopback ports, checks every workload's response once against the database, warms each server
// up, then runs autocannon against the servers in turn (the order rotates every round), checks
// the responses again, and writes a markdown report to results/<YYYY-MM-DD>-<label>.md. Every
// response of every timed run is compared with the verified one (autocannon's expectBody), and
// ingestion is checked by counting the rows each run stored. The servers are stopped at the
// end; the database is left for re-runs (the ingested rows are deleted).
//
// Options (flags or environment): see the README, or the parseArgs call below.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import jwt from "jsonwebtoken";
import pg from "pg";
import {
  type ApiSource,
  apiArg,
  BENCH_DIR,
  migrationNames,
  npmStartCommand,
  prepareApiSource,
  REPO_DIR,
  scriptOf,
  versionOf,
} from "./api-source.ts";
import {
  BENCH_DB,
  BENCH_DB_URL,
  BENCH_USER_EMAIL,
  BENCH_USER_MEMBERSHIPS,
  cleanIngest,
  DEEP_ORG_SQL,
  INGEST_ORG_SLUG,
  INGEST_USER_EMAIL,
  PG_SERVER_URL,
  SEED_COMMENT,
  seed,
  seedVersionOf,
} from "./seed.ts";

// ─────────────────────────────── options ───────────────────────────────

const ALL_SCENARIOS = ["typename", "nested", "deep", "ingest", "warm", "coldstart", "live"] as const;
type Scenario = (typeof ALL_SCENARIOS)[number];
const DEFAULT_SCENARIOS: Scenario[] = ["typename", "nested", "deep", "ingest", "warm", "coldstart"];

const { values: flags } = parseArgs({
  options: {
    api: { type: "string" },
    seed: { type: "boolean", default: false },
    scenario: { type: "string", multiple: true },
    rounds: { type: "string" },
    duration: { type: "string" },
    connections: { type: "string" },
    warmup: { type: "string" },
    label: { type: "string" },
    "quiet-below": { type: "string" },
    "quiet-wait": { type: "string" },
    "ingest-connections": { type: "string" },
    "ingest-batch": { type: "string" },
    "coldstart-reps": { type: "string" },
    subscribers: { type: "string" },
    "live-events": { type: "string" },
    "live-instances": { type: "string" },
    "live-connect-batch": { type: "string" },
  },
});
const num = (flag: string | undefined, env: string | undefined, fallback: number) => {
  const n = Number(flag ?? env ?? fallback);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a number: ${flag ?? env}`);
  return n;
};
const ROUNDS = num(flags.rounds, process.env.BENCH_ROUNDS, 2);
const DURATION = num(flags.duration, process.env.BENCH_DURATION, 8);
const CONNECTIONS = num(flags.connections, process.env.BENCH_CONNECTIONS, 20);
const WARMUP = num(flags.warmup, process.env.BENCH_WARMUP, 3);
const QUIET_BELOW = num(flags["quiet-below"], process.env.BENCH_QUIET_BELOW, 40);
const QUIET_WAIT = num(flags["quiet-wait"], process.env.BENCH_QUIET_WAIT, 20);
const INGEST_CONNECTIONS = num(flags["ingest-connections"], process.env.BENCH_INGEST_CONNECTIONS, 5);
const INGEST_BATCH = num(flags["ingest-batch"], process.env.BENCH_INGEST_BATCH, 100);
const COLDSTART_REPS = num(flags["coldstart-reps"], process.env.BENCH_COLDSTART_REPS, 3);
const LIVE_SUBSCRIBERS = num(flags.subscribers, process.env.BENCH_SUBSCRIBERS, 1000);
const LIVE_EVENTS = num(flags["live-events"], process.env.BENCH_LIVE_EVENTS, 50);
const LIVE_INSTANCES = num(flags["live-instances"], process.env.BENCH_LIVE_INSTANCES, 2);
const LIVE_CONNECT_BATCH = num(flags["live-connect-batch"], process.env.BENCH_LIVE_CONNECT_BATCH, 250);
const LABEL = flags.label ?? process.env.BENCH_LABEL ?? "baseline";
const FORCE_SEED = flags.seed || process.env.BENCH_SEED === "1";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const POOL_SIZE = 10; // every server: the API's DATABASE_POOL_SIZE default and pg's default

const SCENARIOS: Scenario[] = (() => {
  const given = (flags.scenario ?? (process.env.BENCH_SCENARIO ? [process.env.BENCH_SCENARIO] : []))
    .flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  if (given.length === 0) return DEFAULT_SCENARIOS;
  const out = new Set<Scenario>();
  for (const s of given) {
    if (s === "all") for (const a of ALL_SCENARIOS) out.add(a);
    else if ((ALL_SCENARIOS as readonly string[]).includes(s)) out.add(s as Scenario);
    else throw new Error(`unknown scenario "${s}": use ${ALL_SCENARIOS.join(", ")} or all`);
  }
  return ALL_SCENARIOS.filter((s) => out.has(s));
})();
if (LIVE_INSTANCES !== 1 && LIVE_INSTANCES !== 2) throw new Error("--live-instances is 1 or 2");

const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

// ─────────────────────────────── servers ───────────────────────────────

type ServerName = "ours" | "ours-warm" | "postgraphile" | "raw";
const LABELS: Record<ServerName, string> = {
  ours: "Floyo API",
  "ours-warm": "Floyo API, cache on",
  postgraphile: "PostGraphile 5",
  raw: "raw pg",
};
const ORDER: ServerName[] = ["ours", "ours-warm", "postgraphile", "raw"];

interface Server {
  name: ServerName;
  url: string; // base URL, no path
  proc: ChildProcess;
  output: string[]; // the last lines it printed, shown when something fails
}

const children = new Set<ChildProcess>();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function spawnTracked(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  const proc = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  children.add(proc);
  proc.on("exit", () => children.delete(proc));
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n")) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 60) output.shift();
    }
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  return { proc, output };
}

function startProcess(name: ServerName, args: string[], cwd: string, env: NodeJS.ProcessEnv): Server {
  const { proc, output } = spawnTracked(process.execPath, args, cwd, env);
  return { name, url: "", proc, output };
}

/** Waits until `probe` (a path) answers anything over HTTP (or 200, with `ok`). */
async function waitReady(server: Server, base: string, probe: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  while (Date.now() < deadline) {
    if (server.proc.exitCode !== null || server.proc.signalCode !== null) {
      throw new Error(
        `${LABELS[server.name]} exited (${server.proc.exitCode ?? server.proc.signalCode}) before it was ready:\n` +
          server.output.join("\n"),
      );
    }
    try {
      const res = await fetch(`${base}${probe}`);
      await res.arrayBuffer();
      if (res.ok || probe === "/") {
        server.url = base;
        return;
      }
      lastError = `HTTP ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${LABELS[server.name]} was not ready within ${timeoutMs / 1000} s (${lastError}):\n${server.output.join("\n")}`,
  );
}

/** The environment the throughput scenarios run the API with. */
function apiEnv(port: number, jwtKeys: string, responseCache: boolean): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_OPTIONS: "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: BENCH_DB_URL,
    DATABASE_POOL_SIZE: String(POOL_SIZE),
    REDIS_URL,
    REDIS_KEY_PREFIX: `bench:${randomBytes(3).toString("hex")}:`,
    JWT_KEYS: jwtKeys,
    // Required in production since integrations exist; the benchmark stores no secrets.
    SECRETS_KEYS: `bench:${Buffer.alloc(32, 1).toString("base64")}`,
    CORS_ORIGINS: "http://localhost",
    // Production requires an SMTP server since ced5313; the benchmark sends no mail, and
    // nodemailer connects only when one is sent. Nothing listens on port 1.
    SMTP_URL: "smtp://127.0.0.1:1",
    LOG_LEVEL: "warn",
    SHUTDOWN_TIMEOUT_MS: "2000",
    // Budgets (issue 13) are per caller per window: one user sending thousands of requests a
    // second would be answered 429 within a second. The limiter still runs (and still costs
    // its Redis round trips); the budgets are simply out of reach.
    RATE_LIMIT_POINTS: "1000000000",
    RATE_LIMIT_ANONYMOUS_POINTS: "1000000000",
    RATE_LIMIT_ADDRESS_POINTS: "1000000000",
    // The response cache (issue 14): off for the cold-cache scenarios, on (the default) for warm.
    RESPONSE_CACHE: responseCache ? "on" : "off",
  };
}

async function startOurs(source: ApiSource, jwtKeys: string, name: "ours" | "ours-warm"): Promise<Server> {
  const port = await freePort();
  const server = startProcess(name, source.start.args, source.dir, apiEnv(port, jwtKeys, name === "ours-warm"));
  await waitReady(server, `http://127.0.0.1:${port}`, "/health/readiness");
  return server;
}

async function startPeer(name: "postgraphile" | "raw"): Promise<Server> {
  const port = await freePort();
  const script = name === "postgraphile" ? "postgraphile-server.mjs" : "raw-pg-server.mjs";
  const server = startProcess(name, [script], BENCH_DIR, {
    ...process.env,
    NODE_OPTIONS: "",
    NODE_ENV: "production",
    PORT: String(port),
    DATABASE_URL: BENCH_DB_URL,
    PG_POOL_SIZE: String(POOL_SIZE),
  });
  await waitReady(server, `http://127.0.0.1:${port}`, "/");
  return server;
}

async function stopProcess(proc: ChildProcess | undefined, graceMs = 10_000): Promise<void> {
  if (!proc) return;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

// Whatever happens, no server outlives the run.
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => process.exit(130));
}

// ─────────────────────────────── workloads ───────────────────────────────

interface Request {
  path: string;
  headers: Record<string, string>;
  /** A fixed body, or a new one for every request (ingestion: distinct client ids). */
  body: string | (() => string);
}

interface Workload {
  key: string;
  scenario: Scenario;
  title: string;
  /** The first is ours; the ratios are ours / each of the others. */
  servers: ServerName[];
  connections: number;
  /** Ingestion: events per request, reported as events/s. */
  perRequest?: number;
  /** `tag` names the run, for workloads whose bodies differ (ingestion). */
  request(server: ServerName, tag: string): Request;
  /** Returns the problem with a response body, or null when it is right. */
  check(server: ServerName, body: unknown): Promise<string | null> | string | null;
  /** After a timed run: checks what it did to the database (ingestion); the problem or null. */
  after?(server: ServerName, tag: string, result: autocannon.Result): Promise<string | null>;
  /** When false, responses differ between requests and are not compared during the load. */
  constantBody: boolean;
}

interface BenchData {
  user: { id: string; token: string; expected: string[] };
  deep: { orgId: string; expected: string[] };
  ingest: { userId: string; orgId: string; token: string };
  pgVersion: string;
  counts: string;
}

const json = { "content-type": "application/json" };
const gqlBody = (query: string, variables?: object) => JSON.stringify(variables ? { query, variables } : { query });
const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString("base64");
const rowIdOf = (gid: unknown) => {
  const s = Buffer.from(String(gid), "base64").toString("utf8");
  return s.slice(s.indexOf(":") + 1);
};
const ms = (t: unknown) => (t == null ? "null" : String(Date.parse(String(t))));
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
const errorsOf = (body: any) => (body?.errors ? `errors: ${JSON.stringify(body.errors).slice(0, 500)}` : null);

function sameList(what: string, got: string[], want: string[], sorted: boolean): string | null {
  const g = sorted ? [...got].sort() : got;
  if (g.length !== want.length) return `expected ${want.length} ${what}, got ${g.length}`;
  const diff = g.findIndex((m, i) => m !== want[i]);
  return diff === -1 ? null : `${what} differ from the database: got "${g[diff]}", want "${want[diff]}"`;
}

const NESTED_OURS = "{ viewer { memberships { role organization { name slug } } } }";
const nestedPostGraphile = (userId: string) =>
  `query { userByRowId(rowId: "${userId}") { organizationMembersByUserId { nodes { role organizationByOrganizationId { name slug } } } } }`;
const deepOurs = (orgId: string) =>
  `{ node(id: "${globalId("Organization", orgId)}") { ... on Organization { workflows(first: 20) { edges { node { id name status updatedAt executions(first: 5) { edges { node { id status trigger queuedAt finishedAt } } } } } } } } }`;
const deepPostGraphile = (orgId: string) =>
  `query { organizationByRowId(rowId: "${orgId}") { workflowsByOrganizationId(first: 20, orderBy: [UPDATED_AT_DESC, ROW_ID_DESC]) { nodes { rowId name status updatedAt workflowExecutionsByWorkflowId(first: 5, orderBy: [QUEUED_AT_DESC, ROW_ID_DESC]) { nodes { rowId status trigger queuedAt finishedAt } } } } } }`;
const INGEST_MUTATION =
  "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { received stored duplicates } }";

/** A deep read's answer as lines "workflow id|name|status|updatedAt" and "  execution ...", in order. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
function deepLines(server: ServerName, body: any): string[] | string {
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
  let workflows: any[] | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
  const norm = (w: any, id: string, executions: any[], eid: (e: any) => string) => [
    `${id}|${w?.name}|${w?.status}|${ms(w?.updatedAt)}`,
    ...executions.map((e) => `  ${eid(e)}|${e?.status}|${e?.trigger}|${ms(e?.queuedAt)}|${ms(e?.finishedAt)}`),
  ];
  if (server === "ours" || server === "ours-warm") {
    workflows = body?.data?.node?.workflows?.edges;
    if (!Array.isArray(workflows)) return `no workflows in ${JSON.stringify(body).slice(0, 500)}`;
    return workflows.flatMap((edge) =>
      norm(
        edge?.node,
        rowIdOf(edge?.node?.id),
        (edge?.node?.executions?.edges ?? []).map((x: { node: unknown }) => x?.node),
        (e) => rowIdOf(e?.id),
      ),
    );
  }
  if (server === "postgraphile") {
    workflows = body?.data?.organizationByRowId?.workflowsByOrganizationId?.nodes;
    if (!Array.isArray(workflows)) return `no workflows in ${JSON.stringify(body).slice(0, 500)}`;
    return workflows.flatMap((w) => norm(w, w?.rowId, w?.workflowExecutionsByWorkflowId?.nodes ?? [], (e) => e?.rowId));
  }
  workflows = body?.data?.organization?.workflows;
  if (!Array.isArray(workflows)) return `no workflows in ${JSON.stringify(body).slice(0, 500)}`;
  return workflows.flatMap((w) => norm(w, w?.rowId, w?.executions ?? [], (e) => e?.rowId));
}

/** The events of one ingestion request; the same content for every server but the client ids. */
function ingestEvents(clientPrefix: string, base: number) {
  const events = [];
  for (let i = 0; i < INGEST_BATCH; i++) {
    const at = new Date(base + i).toISOString();
    const clientEventId = `${clientPrefix}-${i}`;
    const details = { source: "bench", line: i };
    switch (i % 3) {
      case 0:
        events.push({
          clientEventId,
          kind: "FILE_OPENED",
          filePath: `/home/bench/project/src/module-${i % 17}.ts`,
          occurredAt: at,
          details,
        });
        break;
      case 1:
        events.push({
          clientEventId,
          kind: "FILE_MODIFIED",
          filePath: `/home/bench/project/scripts/job-${i % 11}.py`,
          operation: "save",
          sizeBytes: 1000 + i,
          occurredAt: at,
          details,
        });
        break;
      default:
        events.push({ clientEventId, kind: "TOOL_USED", tool: "vscode", operation: "format", occurredAt: at, details });
    }
  }
  return events;
}

function workloads(data: BenchData, runTag: string): Workload[] {
  const out: Workload[] = [];
  const want = (s: Scenario) => SCENARIOS.includes(s);
  const auth = { ...json, authorization: `Bearer ${data.user.token}` };
  const nestedCheck = (server: ServerName, body: unknown) => {
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
    const b = body as any;
    const errors = errorsOf(b);
    if (errors) return errors;
    // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
    const list: any[] | undefined =
      server === "postgraphile"
        ? b?.data?.userByRowId?.organizationMembersByUserId?.nodes?.map(
            // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
            (n: any) => ({ role: n?.role, organization: n?.organizationByOrganizationId }),
          )
        : server === "raw"
          ? b?.data?.memberships
          : b?.data?.viewer?.memberships;
    if (!Array.isArray(list)) return `no membership list in ${JSON.stringify(b).slice(0, 500)}`;
    return sameList(
      "memberships",
      list.map((m) => `${m?.role} ${m?.organization?.slug} ${m?.organization?.name}`),
      data.user.expected,
      true,
    );
  };
  const deepCheck = (server: ServerName, body: unknown) => {
    const errors = errorsOf(body);
    if (errors) return errors;
    const lines = deepLines(server, body);
    return typeof lines === "string" ? lines : sameList("workflows and executions", lines, data.deep.expected, false);
  };
  const nestedRequest = (server: ServerName): Request =>
    server === "postgraphile"
      ? { path: "/graphql", headers: json, body: gqlBody(nestedPostGraphile(data.user.id)) }
      : server === "raw"
        ? { path: "/nested", headers: json, body: JSON.stringify({ userId: data.user.id }) }
        : { path: "/graphql", headers: auth, body: gqlBody(NESTED_OURS) };
  const deepRequest = (server: ServerName): Request =>
    server === "postgraphile"
      ? { path: "/graphql", headers: json, body: gqlBody(deepPostGraphile(data.deep.orgId)) }
      : server === "raw"
        ? { path: "/deep", headers: json, body: JSON.stringify({ organizationId: data.deep.orgId }) }
        : { path: "/graphql", headers: auth, body: gqlBody(deepOurs(data.deep.orgId)) };
  const nestedTitle = `nested read: user -> ${BENCH_USER_MEMBERSHIPS} memberships -> organization`;
  const deepTitle = "deep read: organization -> workflows(first: 20) -> executions(first: 5)";

  if (want("typename")) {
    out.push({
      key: "typename",
      scenario: "typename",
      title: "`{ __typename }`",
      servers: ["ours", "postgraphile"],
      connections: CONNECTIONS,
      constantBody: true,
      request: () => ({ path: "/graphql", headers: json, body: gqlBody("{ __typename }") }),
      // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
      check: (_server, body: any) =>
        errorsOf(body) ?? (body?.data?.__typename === "Query" ? null : `unexpected data ${JSON.stringify(body)}`),
    });
  }
  if (want("nested")) {
    out.push({
      key: "nested",
      scenario: "nested",
      title: nestedTitle,
      servers: ["ours", "postgraphile", "raw"],
      connections: CONNECTIONS,
      constantBody: true,
      request: nestedRequest,
      check: nestedCheck,
    });
  }
  if (want("deep")) {
    out.push({
      key: "deep",
      scenario: "deep",
      title: deepTitle,
      servers: ["ours", "postgraphile", "raw"],
      connections: CONNECTIONS,
      constantBody: true,
      request: deepRequest,
      check: deepCheck,
    });
  }
  if (want("ingest")) {
    const ingestGid = globalId("Organization", data.ingest.orgId);
    const base = Date.now() - 3_600_000; // an hour ago: inside any retention, never in the future
    let seq = 0;
    const prefixOf = (server: ServerName, tag: string) => `${runTag}-${server}-${tag}`;
    // The rows stored by the first request each server answered (checked), to compare them.
    const firstRows = new Map<ServerName, string>();
    // The client id prefix of the last request built for each server (the one verify() sent).
    const lastPrefix = new Map<ServerName, string>();
    out.push({
      key: "ingest",
      scenario: "ingest",
      title: `ingestion: eventRecordBatch of ${INGEST_BATCH} events, ${INGEST_CONNECTIONS} connections`,
      servers: ["ours", "raw"],
      connections: INGEST_CONNECTIONS,
      perRequest: INGEST_BATCH,
      constantBody: true,
      request: (server, tag) => {
        const prefix = prefixOf(server, tag);
        const body = () => {
          const clientPrefix = `${prefix}-${seq++}`;
          lastPrefix.set(server, clientPrefix);
          const events = ingestEvents(clientPrefix, base);
          return server === "raw"
            ? JSON.stringify({ userId: data.ingest.userId, input: { organizationId: ingestGid, events } })
            : gqlBody(INGEST_MUTATION, { input: { organizationId: ingestGid, events } });
        };
        return server === "raw"
          ? { path: "/ingest", headers: json, body }
          : { path: "/graphql", headers: { ...json, authorization: `Bearer ${data.ingest.token}` }, body };
      },
      // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
      check: async (server, body: any) => {
        const errors = errorsOf(body);
        if (errors) return errors;
        const r = server === "raw" ? body?.data : body?.data?.eventRecordBatch;
        if (r?.received !== INGEST_BATCH || r?.stored !== INGEST_BATCH) {
          return `expected ${INGEST_BATCH} received and stored, got ${JSON.stringify(body)}`;
        }
        // What was stored, column by column (the client id's request-specific part cut off).
        const db = new pg.Client({ connectionString: BENCH_DB_URL });
        await db.connect();
        try {
          const { rows } = await db.query<{ r: string }>(
            `SELECT string_agg(concat_ws('|', regexp_replace(client_event_id, '^.*-', ''), user_id, event_type, file_path,
                      file_extension, previous_path, tool, operation, size_bytes, interpreter, input_paths::text,
                      output_paths::text, details::text, (extract(epoch FROM occurred_at) * 1000)::bigint,
                      received_at > now() - interval '10 minutes', upload_id), E'\\n'
                      ORDER BY (regexp_replace(client_event_id, '^.*-', ''))::int) AS r
             FROM events WHERE organization_id = $1 AND client_event_id LIKE $2`,
            [data.ingest.orgId, `${lastPrefix.get(server)}-%`],
          );
          const stored = rows[0]?.r ?? "";
          const lines = stored.split("\n").filter(Boolean);
          if (lines.length !== INGEST_BATCH) return `expected ${INGEST_BATCH} rows in events, found ${lines.length}`;
          // The first batch each server stored is compared with the other's.
          if (!firstRows.has(server)) firstRows.set(server, lines.join("\n"));
          const others = [...firstRows.entries()].filter(([s]) => s !== server);
          for (const [other, theirs] of others) {
            if (theirs !== firstRows.get(server)) {
              const a = (firstRows.get(server) as string).split("\n");
              const b = theirs.split("\n");
              const i = a.findIndex((l, k) => l !== b[k]);
              return `the rows stored differ from ${LABELS[other]}'s: "${a[i]}" vs "${b[i]}"`;
            }
          }
          return null;
        } finally {
          await db.end();
        }
      },
      after: async (server, tag, result) => {
        await new Promise((r) => setTimeout(r, 500));
        const db = new pg.Client({ connectionString: BENCH_DB_URL });
        await db.connect();
        try {
          const { rows } = await db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM events WHERE organization_id = $1 AND client_event_id LIKE $2",
            [data.ingest.orgId, `${prefixOf(server, tag)}-%`],
          );
          const n = rows[0]?.n ?? 0;
          const ok = result["2xx"] - result.mismatches;
          if (n < ok * INGEST_BATCH || n > result.requests.sent * INGEST_BATCH) {
            return `stored ${n} events for ${ok} successful and ${result.requests.sent} sent requests of ${INGEST_BATCH}`;
          }
          return null;
        } finally {
          await db.end();
        }
      },
    });
  }
  if (want("warm")) {
    out.push(
      {
        key: "warm-nested",
        scenario: "warm",
        title: `warm: ${nestedTitle}`,
        servers: ["ours-warm", "postgraphile"],
        connections: CONNECTIONS,
        constantBody: true,
        request: nestedRequest,
        check: nestedCheck,
      },
      {
        key: "warm-deep",
        scenario: "warm",
        title: `warm: ${deepTitle}`,
        servers: ["ours-warm", "postgraphile"],
        connections: CONNECTIONS,
        constantBody: true,
        request: deepRequest,
        check: deepCheck,
      },
    );
  }
  return out;
}

async function send(server: Server, req: Request): Promise<{ status: number; text: string }> {
  const res = await fetch(`${server.url}${req.path}`, {
    method: "POST",
    headers: req.headers,
    body: typeof req.body === "function" ? req.body() : req.body,
  });
  return { status: res.status, text: await res.text() };
}

/** Sends one request, checks the answer; returns the body. */
async function verify(server: Server, workload: Workload, when: string): Promise<string> {
  const { status, text } = await send(server, workload.request(server.name, "verify"));
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const problem = status === 200 ? await workload.check(server.name, body) : `HTTP ${status}`;
  if (problem) {
    throw new Error(
      `VERIFICATION FAILED (${when}) for ${LABELS[server.name]}, workload ${workload.key}: ${problem}\n` +
        `response: ${text.slice(0, 1000)}\n` +
        `last lines the server printed:\n${server.output.slice(-30).join("\n")}`,
    );
  }
  return text;
}

// ─────────────────────────────── CPU accounting ───────────────────────────────

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** utime + stime of one process, in seconds; null when it is gone. */
function cpuSeconds(pid: number): number | null {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLK_TCK : null;
}

/** The pids of a process and all its descendants. */
function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields) parent.set(Number(entry), Number(fields[1]));
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    for (const [pid, ppid] of parent) if (ppid === tree[i]) tree.push(pid);
  }
  return tree;
}

/** CPU seconds of every process named postgres, by pid. */
function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() !== "postgres") continue;
    } catch {
      continue;
    }
    const s = cpuSeconds(Number(entry));
    if (s !== null) out.set(Number(entry), s);
  }
  return out;
}

/** Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat. */
function machineBusy(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  // cpu user nice system idle iowait irq softirq steal ...
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + (steal || 0)) / CLK_TCK;
}

function postgresDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of after) total += s - (before.get(pid) ?? 0);
  return total;
}

/** CPU of the rest of the machine (% of one core) over `seconds`, not counting ours. */
async function restOfMachine(ourPids: number[], seconds: number): Promise<number> {
  const ours = () => ourPids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  const pg0 = postgresCpu();
  const m0 = machineBusy();
  const o0 = ours();
  const s0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const self = process.cpuUsage(s0);
  const rest = machineBusy() - m0 - (ours() - o0) - postgresDelta(pg0, postgresCpu()) - (self.user + self.system) / 1e6;
  return (100 * Math.max(0, rest)) / seconds;
}

/** Waits (at most QUIET_WAIT s) until the rest of the machine uses under QUIET_BELOW% of a core. */
async function waitForQuiet(ourPids: number[]): Promise<number> {
  if (QUIET_WAIT <= 0) return 0;
  const started = Date.now();
  let announced = false;
  for (;;) {
    const rest = await restOfMachine(ourPids, 1.5);
    const waited = (Date.now() - started) / 1000;
    if (rest < QUIET_BELOW) return Math.max(0, waited - 1.5);
    if (waited >= QUIET_WAIT) {
      log(`  the rest of the machine still uses ${f0(rest)}% of a core after ${f0(waited)} s: running anyway`);
      return waited;
    }
    if (!announced) {
      log(
        `  the rest of the machine uses ${f0(rest)}% of a core: waiting up to ${QUIET_WAIT} s for it to drop under ${QUIET_BELOW}%`,
      );
      announced = true;
    }
  }
}

/**
 * After ingestion: the API analyses new events in the background, in its own process. Waits
 * (at most 60 s) until that process uses under 10% of a core over a second, so the next run is
 * not measured beside it. Returns the seconds waited.
 */
async function waitForIdle(pid: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const before = cpuSeconds(pid);
    await new Promise((r) => setTimeout(r, 1000));
    const after = cpuSeconds(pid);
    if (before === null || after === null || after - before < 0.1) return (Date.now() - started) / 1000;
    if (Date.now() - started > 60_000) {
      log(`  ${pid} still busy after 60 s: going on`);
      return (Date.now() - started) / 1000;
    }
  }
}

// ─────────────────────────────── load ───────────────────────────────

interface Run {
  round: number;
  workload: string;
  server: ServerName;
  rps: number;
  p50: number;
  p99: number;
  total: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  serverCpu: number; // % of one core
  postgresCpu: number; // % of one core
  loadgenCpu: number; // % of one core
  otherCpu: number; // % of one core: everything else on the machine (other users' processes)
  loadavg: number; // 1-minute load average at the start
  waited: number; // seconds spent waiting for the rest of the machine to quieten
  drained: number; // seconds spent after the run waiting for the API's background work (ingestion)
  problem: string | null; // what `after` found
}

let loadTag = 0;

/** A response body without its trailing `"extensions"` member, when it has one. */
function withoutExtensions(body: string): string {
  const i = body.lastIndexOf(',"extensions":');
  return i === -1 ? body : body.slice(0, i);
}

async function load(
  server: Server,
  workload: Workload,
  seconds: number,
  round: number,
  expectBody: string | undefined,
  waited = 0,
): Promise<Run> {
  const tag = `r${round}-${++loadTag}`;
  const req = workload.request(server.name, tag);
  const pid = server.proc.pid as number;
  const serverBefore = cpuSeconds(pid) ?? 0;
  const pgBefore = postgresCpu();
  const machineBefore = machineBusy();
  const loadavg = os.loadavg()[0];
  const selfBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const makeBody = req.body;
  const want = expectBody === undefined ? undefined : withoutExtensions(expectBody);
  const result = await autocannon({
    url: `${server.url}${req.path}`,
    method: "POST",
    headers: req.headers,
    ...(typeof makeBody === "function"
      ? { requests: [{ setupRequest: (r: autocannon.Request) => ({ ...r, body: makeBody() }) }] }
      : { body: makeBody }),
    connections: workload.connections,
    duration: seconds,
    // Compared without `extensions` (the API's cost extension differs on every response: the
    // budget's remaining points and reset time).
    ...(want !== undefined
      ? { verifyBody: (b: string | Buffer | undefined) => withoutExtensions(String(b ?? "")) === want }
      : {}),
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const self = process.cpuUsage(selfBefore);
  const machine = machineBusy() - machineBefore;
  const serverS = (cpuSeconds(pid) ?? serverBefore) - serverBefore;
  const postgresS = postgresDelta(pgBefore, postgresCpu());
  const loadgenS = (self.user + self.system) / 1e6;
  const pct = (s: number) => (100 * s) / wall;
  const problem = round > 0 && workload.after ? await workload.after(server.name, tag, result) : null;
  return {
    round,
    workload: workload.key,
    server: server.name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches ?? 0,
    serverCpu: pct(serverS),
    postgresCpu: pct(postgresS),
    loadgenCpu: pct(loadgenS),
    otherCpu: pct(Math.max(0, machine - serverS - postgresS - loadgenS)),
    loadavg,
    waited,
    drained: 0,
    problem,
  };
}

// ─────────────────────────────── cold start ───────────────────────────────

interface ColdStart {
  variant: string; // how it was started
  rep: number;
  dataDir: "empty" | "existing";
  firstOutputMs: number | null;
  readyMs: number;
  cpuMs: number; // CPU of the process tree until ready
  stopMs: number; // SIGTERM to exit
  rest: number; // % of a core the rest of the machine used just before
  waited: number;
}

async function coldStarts(source: ApiSource): Promise<{ rows: ColdStart[]; variants: string[] }> {
  const variants: { name: string; script: string }[] = [];
  if (source.dir === REPO_DIR) {
    // The work tree: its start script may build (write dist/), and the bench writes nothing
    // outside bench/; the server starts as the throughput scenarios start it.
    variants.push({
      name: `${source.start.how.split(" (")[0]} (work tree: its npm start script is not run)`,
      script: `node ${source.start.args.join(" ")}`,
    });
  } else {
    const { script } = npmStartCommand(source.dir, log);
    variants.push({ name: `npm start (\`${script}\`)`, script });
  }
  const plainDist = /^node (--\S+ )*dist\/main\.js$/;
  const rows: ColdStart[] = [];
  for (let v = 0; v < variants.length; v++) {
    const variant = variants[v] as { name: string; script: string };
    for (let rep = 1; rep <= COLDSTART_REPS; rep++) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-bench-coldstart-"));
      try {
        for (const state of ["empty", "existing"] as const) {
          const waited = await waitForQuiet([]);
          const rest = await restOfMachine([], 0.5);
          const row = await startOnce(source.dir, variant.script, dataDir);
          rows.push({ variant: variant.name, rep, dataDir: state, ...row, rest, waited });
          log(
            `cold start ${variant.name}, ${state} DATA_DIR, #${rep}: ready in ${f0(row.readyMs)} ms ` +
              `(first output ${row.firstOutputMs === null ? "-" : f0(row.firstOutputMs)} ms, CPU ${f0(row.cpuMs)} ms), stopped in ${f0(row.stopMs)} ms`,
          );
        }
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
    // The compiled server alone too, when the start script is something else (tsx, or a build
    // before the server) and there is a dist/main.js (by now: a start script may have built it).
    if (
      v === 0 &&
      source.dir !== REPO_DIR &&
      !plainDist.test(variant.script) &&
      existsSync(path.join(source.dir, "dist", "main.js"))
    ) {
      variants.push({ name: "`node dist/main.js`", script: "node dist/main.js" });
    }
  }
  return { rows, variants: variants.map((v) => v.name) };
}

/** One start in the embedded mode: spawn, poll readiness every 25 ms, SIGTERM, wait for the exit. */
async function startOnce(dir: string, script: string, dataDir: string) {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.join(dir, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}`,
    HOST: "127.0.0.1",
    PORT: String(port),
    DATA_DIR: dataDir,
    NODE_OPTIONS: "",
  };
  // The embedded mode: what a new user's `npm start` does with no services configured.
  for (const k of ["DATABASE_URL", "REDIS_URL", "NODE_ENV", "UPLOAD_DIR", "JWT_KEYS", "SMTP_URL"]) delete env[k];
  const t0 = performance.now();
  // A single command is exec'ed (the process we signal is that command); a compound one (a
  // build, then the server) runs under the shell, as npm runs it.
  const simple = !/&&|\|\||;|\|/.test(script);
  const { proc, output } = spawnTracked("sh", ["-c", simple ? `exec ${script}` : script], dir, env);
  let firstOutputMs: number | null = null;
  const first = () => {
    firstOutputMs ??= performance.now() - t0;
  };
  proc.stdout?.once("data", first);
  proc.stderr?.once("data", first);
  const url = `http://127.0.0.1:${port}/health/readiness`;
  let readyMs = 0;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `the API exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output.join("\n")}`,
      );
    }
    if (performance.now() - t0 > 120_000) {
      await stopProcess(proc);
      throw new Error(`the API was not ready within 120 s:\n${output.join("\n")}`);
    }
    const ok = await fetch(url).then(
      async (r) => {
        await r.arrayBuffer();
        return r.status === 200;
      },
      () => false,
    );
    if (ok) {
      readyMs = performance.now() - t0;
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const tree = processTree(proc.pid as number);
  // The live processes' CPU, and what the root's children that already exited used (a build
  // before the server, in a compound start script).
  const rootStat = statFields(proc.pid as number);
  const exitedChildren = rootStat ? (Number(rootStat[13]) + Number(rootStat[14])) / CLK_TCK : 0;
  const cpuMs = 1000 * (exitedChildren + tree.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0));
  const s0 = performance.now();
  // SIGTERM to the server itself: the innermost node process of the tree (tsx's CLI or a shell
  // above it would relay it, or not; esbuild, under a server run through tsx, is no server);
  // then the stop ends when every process of the tree is gone.
  const comm = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      return "";
    }
  };
  const nodes = tree.filter((pid) => comm(pid) === "node");
  const innermost = nodes.filter((pid) => !nodes.some((other) => statFields(other)?.[1] === String(pid)));
  const leaves = innermost.length ? innermost : [proc.pid as number];
  for (const pid of leaves) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // already gone
    }
  }
  const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
  if (proc.exitCode === null && proc.signalCode === null) await new Promise((r) => proc.once("exit", r));
  clearTimeout(killer);
  // Nothing of the tree may hold the data dir when the next start opens it.
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return statFields(pid)?.[0] !== "Z";
    } catch {
      return false;
    }
  };
  while (tree.slice(1).some(alive) && performance.now() - s0 < 30_000) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const stopMs = performance.now() - s0;
  for (const pid of tree.slice(1).filter(alive)) {
    process.kill(pid, "SIGKILL");
    log(`  a process of that server (${pid}) was still running 30 s after SIGTERM: killed`);
  }
  return { firstOutputMs, readyMs, cpuMs, stopMs };
}

// ─────────────────────────────── live ───────────────────────────────

interface LiveResult {
  markdown: string;
  command: string;
}

async function live(source: ApiSource): Promise<LiveResult> {
  const out = path.join(mkdtempSync(path.join(os.tmpdir(), "floyo-bench-live-")), "live.json");
  const args = [
    "--import",
    "tsx",
    "live.ts",
    "--api-dir",
    source.dir,
    "--start",
    JSON.stringify(source.start.args),
    "--subscribers",
    String(LIVE_SUBSCRIBERS),
    "--events",
    String(LIVE_EVENTS),
    "--instances",
    String(LIVE_INSTANCES),
    "--connect-batch",
    String(LIVE_CONNECT_BATCH),
    "--json",
    out,
  ];
  const waited = await waitForQuiet([]);
  if (waited) log(`  waited ${f0(waited)} s for the machine to quieten`);
  log(`live: node ${args.slice(2).join(" ")}`);
  const proc = spawn(process.execPath, args, { cwd: BENCH_DIR, stdio: ["ignore", "inherit", "inherit"] });
  children.add(proc);
  const code = await new Promise<number | null>((resolve) => proc.once("exit", (c) => resolve(c)));
  children.delete(proc);
  if (code !== 0) throw new Error(`live.ts exited ${code}`);
  const result = JSON.parse(readFileSync(out, "utf8")) as { markdown: string };
  rmSync(path.dirname(out), { recursive: true, force: true });
  return { markdown: result.markdown, command: `node --import tsx live.ts ${args.slice(3).join(" ")}` };
}

// ─────────────────────────────── setup ───────────────────────────────

/** Seeded by this version of seed.ts, with exactly the migrations of the source to measure. */
async function databaseReady(apiDir: string): Promise<boolean> {
  const admin = new pg.Client({ connectionString: `${PG_SERVER_URL}/postgres` });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [BENCH_DB]);
    if (!rowCount) return false;
  } finally {
    await admin.end();
  }
  const db = new pg.Client({ connectionString: BENCH_DB_URL });
  await db.connect();
  try {
    if ((await seedVersionOf(db)) !== SEED_COMMENT) return false;
    const { rows: applied } = await db.query<{ name: string }>(
      `SELECT migration_name AS name FROM _prisma_migrations
       WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
    );
    if (applied.map((r) => r.name).join() !== migrationNames(apiDir).join()) return false;
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM organization_members m JOIN users u ON u.id = m.user_id WHERE u.email = $1`,
      [BENCH_USER_EMAIL],
    );
    if (rows[0]?.n !== BENCH_USER_MEMBERSHIPS) return false;
    const { rowCount: sessions } = await db.query(
      `SELECT 1 FROM user_sessions s JOIN users u ON u.id = s.user_id
       WHERE u.email = ANY($1) AND s.device = 'bench' AND s.revoked_at IS NULL AND s.expires_at > now() + interval '1 day'`,
      [[BENCH_USER_EMAIL, INGEST_USER_EMAIL]],
    );
    return sessions === 2;
  } catch {
    return false;
  } finally {
    await db.end();
  }
}

async function benchData(secret: string): Promise<BenchData> {
  const db = new pg.Client({ connectionString: BENCH_DB_URL });
  await db.connect();
  try {
    const sessionOf = async (email: string) => {
      const { rows } = await db.query<{ uid: string; sid: string }>(
        `SELECT u.id AS uid, s.id AS sid FROM users u JOIN user_sessions s ON s.user_id = u.id
         WHERE u.email = $1 AND s.device = 'bench' AND s.revoked_at IS NULL AND s.expires_at > now()`,
        [email],
      );
      if (!rows[0]) throw new Error(`no live bench session for ${email} in ${BENCH_DB}: run with --seed`);
      const token = jwt.sign({ sid: rows[0].sid }, secret, {
        algorithm: "HS256",
        keyid: "bench",
        subject: rows[0].uid,
        issuer: "floyo",
        audience: "floyo-api",
        expiresIn: "6h",
      });
      return { id: rows[0].uid, token };
    };
    const user = await sessionOf(BENCH_USER_EMAIL);
    const ingestUser = await sessionOf(INGEST_USER_EMAIL);
    const { rows } = await db.query<{ m: string }>(
      `SELECT m.role || ' ' || o.slug || ' ' || o.name AS m
       FROM organization_members m JOIN organizations o ON o.id = m.organization_id
       WHERE m.user_id = $1`,
      [user.id],
    );
    const { rows: deepOrg } = await db.query<{ id: string }>(DEEP_ORG_SQL);
    const orgId = deepOrg[0]?.id as string;
    const { rows: deep } = await db.query<{ line: string }>(
      `SELECT line FROM (
         SELECT w.rank, 0 AS e, concat_ws('|', w.id, w.name, w.status, (extract(epoch FROM w.updated_at) * 1000)::bigint) AS line
         FROM (SELECT *, row_number() OVER (ORDER BY updated_at DESC, id DESC) AS rank FROM workflows WHERE organization_id = $1) w
         WHERE w.rank <= 20
         UNION ALL
         SELECT w.rank, x.e, '  ' || concat_ws('|', x.id, x.status, x.trigger, (extract(epoch FROM x.queued_at) * 1000)::bigint,
                  COALESCE(((extract(epoch FROM x.finished_at) * 1000)::bigint)::text, 'null'))
         FROM (SELECT *, row_number() OVER (ORDER BY updated_at DESC, id DESC) AS rank FROM workflows WHERE organization_id = $1) w
         CROSS JOIN LATERAL (SELECT *, row_number() OVER (ORDER BY queued_at DESC, id DESC) AS e
                             FROM workflow_executions WHERE workflow_id = w.id) x
         WHERE w.rank <= 20 AND x.e <= 5
       ) t ORDER BY rank, e`,
      [orgId],
    );
    const { rows: ingestOrg } = await db.query<{ id: string }>("SELECT id FROM organizations WHERE slug = $1", [
      INGEST_ORG_SLUG,
    ]);
    const { rows: v } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    const { rows: c } = await db.query<{ users: number; orgs: number; members: number; w: number; e: number }>(
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM organizations) AS orgs,
              (SELECT count(*)::int FROM organization_members) AS members,
              (SELECT count(*)::int FROM workflows) AS w, (SELECT count(*)::int FROM workflow_executions) AS e`,
    );
    return {
      user: { id: user.id, token: user.token, expected: rows.map((r) => r.m).sort() },
      deep: { orgId, expected: deep.map((r) => r.line) },
      ingest: { userId: ingestUser.id, token: ingestUser.token, orgId: ingestOrg[0]?.id as string },
      pgVersion: v[0].v,
      counts: `${c[0].users} users, ${c[0].orgs} organizations, ${c[0].members} memberships, ${c[0].w} workflows (all in the deep read's organization), ${c[0].e} executions`,
    };
  } finally {
    await db.end();
  }
}

async function cleanIngested(): Promise<void> {
  const db = new pg.Client({ connectionString: BENCH_DB_URL });
  await db.connect();
  try {
    const n = await cleanIngest(db);
    if (n) log(`deleted ${f0(n)} rows the ingestion wrote`);
  } finally {
    await db.end();
  }
}

/** Whether the API source knows the RESPONSE_CACHE setting at all. */
function knowsResponseCache(dir: string): boolean {
  try {
    return (
      execFileSync("grep", ["-rl", "RESPONSE_CACHE", path.join(dir, "src")])
        .toString()
        .trim() !== ""
    );
  } catch {
    return false;
  }
}

// ─────────────────────────────── report ───────────────────────────────

const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

function throughputReport(runs: Run[], wl: Workload): string {
  const unit = wl.perRequest ? "events/s" : "req/s";
  const k = wl.perRequest ?? 1;
  const [ours, ...peers] = wl.servers as [ServerName, ...ServerName[]];
  const header = [
    "round",
    ...wl.servers.map((s) => `${LABELS[s]} ${unit}`),
    ...peers.map((p) => `ours / ${LABELS[p]}`),
    ...wl.servers.map((s) => `${LABELS[s]} p99 (ms)`),
  ];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i ? "---:" : "---")).join("|")}|`];
  const rounds = [...new Set(runs.filter((r) => r.workload === wl.key).map((r) => r.round))];
  const find = (round: number, s: ServerName) =>
    runs.find((r) => r.round === round && r.workload === wl.key && r.server === s) as Run;
  for (const round of rounds) {
    const cells = wl.servers.map((s) => find(round, s));
    lines.push(
      `| ${round} | ${cells.map((r) => f0(r.rps * k)).join(" | ")} | ${peers
        .map((p) => `${(find(round, ours).rps / find(round, p).rps).toFixed(2)}x`)
        .join(" | ")} | ${cells.map((r) => r.p99).join(" | ")} |`,
    );
  }
  const avg = (s: ServerName) => mean(runs.filter((r) => r.workload === wl.key && r.server === s).map((r) => r.rps));
  const p99 = (s: ServerName) => mean(runs.filter((r) => r.workload === wl.key && r.server === s).map((r) => r.p99));
  lines.push(
    `| **mean** | ${wl.servers.map((s) => `**${f0(avg(s) * k)}**`).join(" | ")} | ${peers
      .map((p) => `**${(avg(ours) / avg(p)).toFixed(2)}x**`)
      .join(" | ")} | ${wl.servers.map((s) => f1(p99(s))).join(" | ")} |`,
  );
  return lines.join("\n");
}

/** CPU milliseconds per request: less sensitive to a busy machine than req/s. */
function costReport(runs: Run[], wls: Workload[]): string {
  const lines = [
    "| workload | server | server CPU ms/request | PostgreSQL CPU ms/request | server CPU ratio (this / ours) | PostgreSQL CPU ratio (this / ours) |",
    "|---|---|---:|---:|---:|---:|",
  ];
  // % of a core for `wall` seconds over rps * wall requests: cpu% * 10 / rps ms per request.
  const perRequest = (rs: Run[], cpu: (r: Run) => number) => mean(rs.map((r) => (cpu(r) * 10) / r.rps));
  for (const wl of wls) {
    const of = (s: ServerName) => runs.filter((r) => r.workload === wl.key && r.server === s);
    const ours = wl.servers[0] as ServerName;
    const os_ = perRequest(of(ours), (r) => r.serverCpu);
    const op = perRequest(of(ours), (r) => r.postgresCpu);
    for (const s of wl.servers) {
      const sc = perRequest(of(s), (r) => r.serverCpu);
      const pc = perRequest(of(s), (r) => r.postgresCpu);
      lines.push(
        `| ${wl.key} | ${LABELS[s]} | ${sc.toFixed(3)} | ${pc.toFixed(3)} | ${s === ours ? "" : `${(sc / os_).toFixed(2)}x`} | ${s === ours ? "" : `${(pc / op).toFixed(2)}x`} |`,
      );
    }
  }
  return lines.join("\n");
}

function cpuReport(runs: Run[]): string {
  const lines = [
    "| round | workload | server | req/s | p50 (ms) | requests | server CPU | postgres CPU (all backends) | autocannon CPU | rest of the machine | load avg (1 min) | waited for quiet (s) | drained after (s) | non-2xx / errors / timeouts / mismatched bodies |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of runs) {
    lines.push(
      `| ${r.round} | ${r.workload} | ${LABELS[r.server]} | ${f0(r.rps)} | ${r.p50} | ${f0(r.total)} | ${f0(r.serverCpu)}% | ${f0(
        r.postgresCpu,
      )}% | ${f0(r.loadgenCpu)}% | ${f0(r.otherCpu)}% | ${r.loadavg.toFixed(1)} | ${f0(r.waited)} | ${r.drained ? f0(r.drained) : ""} | ${r.non2xx} / ${r.errors} / ${r.timeouts} / ${r.mismatches}${r.problem ? `; ${r.problem}` : ""} |`,
    );
  }
  return lines.join("\n");
}

function coldStartReport(rows: ColdStart[], variants: string[]): string {
  const lines = [
    "| started as | DATA_DIR | runs | ready: min (ms) | ready: median (ms) | first output: median (ms) | CPU until ready: median (ms) | stop after SIGTERM: median (ms) | target |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const v of variants) {
    for (const state of ["empty", "existing"] as const) {
      const rs = rows.filter((r) => r.variant === v && r.dataDir === state);
      if (!rs.length) continue;
      const first = rs.map((r) => r.firstOutputMs).filter((x): x is number => x !== null);
      const target = state === "empty" ? 3000 : 1500;
      const med = median(rs.map((r) => r.readyMs));
      lines.push(
        `| ${v} | ${state} | ${rs.length} | ${f0(Math.min(...rs.map((r) => r.readyMs)))} | ${f0(med)} | ${first.length ? f0(median(first)) : "-"} | ${f0(median(rs.map((r) => r.cpuMs)))} | ${f0(median(rs.map((r) => r.stopMs)))} | <= ${f0(target)} ms: ${med <= target ? "met" : `missed (${(med / target).toFixed(1)}x)`} |`,
      );
    }
  }
  lines.push(
    "",
    "Each start:",
    "",
    "| started as | # | DATA_DIR | ready (ms) | first output (ms) | CPU until ready (ms) | stop (ms) | rest of the machine just before | waited for quiet (s) |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const r of rows) {
    lines.push(
      `| ${r.variant} | ${r.rep} | ${r.dataDir} | ${f0(r.readyMs)} | ${r.firstOutputMs === null ? "-" : f0(r.firstOutputMs)} | ${f0(r.cpuMs)} | ${f0(r.stopMs)} | ${f0(r.rest)}% | ${f0(r.waited)} |`,
    );
  }
  return lines.join("\n");
}

// ─────────────────────────────── main ───────────────────────────────

async function runPhase(name: string, servers: Map<ServerName, Server>, wls: Workload[], runs: Run[]): Promise<void> {
  if (!wls.length) return;
  const expected = new Map<string, string | undefined>();
  for (const wl of wls) {
    for (const s of wl.servers) {
      const server = servers.get(s) as Server;
      // Twice: a cache fills on the first, answers the second; the second is what every timed
      // response is compared with.
      await verify(server, wl, "before the run");
      const text = await verify(server, wl, "before the run, again");
      expected.set(`${wl.key}/${s}`, wl.constantBody ? text : undefined);
      log(`verified ${wl.key} on ${LABELS[s]} (${Buffer.byteLength(text)} bytes)`);
    }
  }
  const oursPid = (servers.get("ours") ?? servers.get("ours-warm"))?.proc.pid as number;
  const afterRun = async (wl: Workload, run: Run | null) => {
    if (wl.key !== "ingest") return;
    await cleanIngested();
    const drained = await waitForIdle(oursPid);
    if (run) run.drained = drained;
  };
  if (WARMUP > 0) {
    for (const wl of wls) {
      for (const s of wl.servers) {
        log(`warm-up ${WARMUP} s: ${wl.key} on ${LABELS[s]}`);
        await load(servers.get(s) as Server, wl, WARMUP, 0, undefined);
        await afterRun(wl, null);
      }
    }
  }
  const pids = [...servers.values()].map((s) => s.proc.pid as number);
  for (let round = 1; round <= ROUNDS; round++) {
    for (const wl of wls) {
      // The order rotates every round: with two servers, ours first in odd rounds.
      const order = wl.servers.map((_, i) => wl.servers[(i + round - 1) % wl.servers.length] as ServerName);
      for (const s of order) {
        const waited = await waitForQuiet(pids);
        const run = await load(servers.get(s) as Server, wl, DURATION, round, expected.get(`${wl.key}/${s}`), waited);
        await afterRun(wl, run);
        runs.push(run);
        const k = wl.perRequest ?? 1;
        log(
          `${name} round ${round} ${wl.key} ${LABELS[s]}: ${f0(run.rps * k)} ${k > 1 ? "events/s" : "req/s"}, p99 ${run.p99} ms, ` +
            `server CPU ${f0(run.serverCpu)}%, postgres ${f0(run.postgresCpu)}%, autocannon ${f0(run.loadgenCpu)}%, ` +
            `rest of the machine ${f0(run.otherCpu)}%` +
            (run.non2xx || run.errors || run.timeouts || run.mismatches
              ? `, non-2xx ${run.non2xx}, errors ${run.errors}, timeouts ${run.timeouts}, mismatched bodies ${run.mismatches}`
              : "") +
            (run.problem ? `; ${run.problem}` : ""),
        );
      }
    }
  }
  for (const wl of wls) for (const s of wl.servers) await verify(servers.get(s) as Server, wl, "after the run");
  log(`${name}: verified every workload again after the run`);
}

async function main() {
  const startedAt = new Date();
  const source: ApiSource = prepareApiSource(flags.api ?? apiArg([]), log);
  log(`api: ${source.description}`);
  log(`api starts as ${source.start.how}`);
  log(`scenarios: ${SCENARIOS.join(", ")}`);
  const throughput = SCENARIOS.some((s) => ["typename", "nested", "deep", "ingest", "warm"].includes(s));

  let data: BenchData | undefined;
  let wls: Workload[] = [];
  const runs: Run[] = [];
  const secret = randomBytes(36).toString("base64url"); // 48 characters
  const runTag = `bench${randomBytes(3).toString("hex")}`;
  if (throughput) {
    if (FORCE_SEED || !(await databaseReady(source.dir))) {
      log(
        FORCE_SEED
          ? "seeding (--seed)"
          : `${BENCH_DB} is missing, seeded by another seed.ts, or has other migrations: seeding`,
      );
      await seed(source.dir, log);
    } else {
      log(`using the existing ${BENCH_DB} (pass --seed to re-create it)`);
    }
    data = await benchData(secret);
    wls = workloads(data, runTag);
  }
  const cacheKnown = knowsResponseCache(source.dir);

  const servers = new Map<ServerName, Server>();
  const stop = async (name: ServerName) => {
    const s = servers.get(name);
    servers.delete(name);
    await stopProcess(s?.proc);
  };
  const ensure = async (name: ServerName) => {
    if (servers.has(name)) return;
    log(`starting ${LABELS[name]}`);
    const s =
      name === "ours" || name === "ours-warm"
        ? await startOurs(source, `bench:${secret}`, name)
        : await startPeer(name);
    servers.set(name, s);
    log(`  ${s.url} (pid ${s.proc.pid})`);
  };
  let cold: { rows: ColdStart[]; variants: string[] } | undefined;
  let liveResult: LiveResult | undefined;
  try {
    // 1. Reads with the cache off, beside PostGraphile and raw pg.
    const reads = wls.filter((w) => ["typename", "nested", "deep"].includes(w.scenario));
    // 2. Ingestion, beside raw pg (the API analyses what it stored in the background: each run
    //    is followed by a wait until its process is idle again, and the rows are deleted).
    const ingest = wls.filter((w) => w.scenario === "ingest");
    // 3. Warm reads, the API restarted with its response cache on, beside PostGraphile.
    const warm = wls.filter((w) => w.scenario === "warm");
    if (reads.length || ingest.length) {
      for (const n of ORDER) if ([...reads, ...ingest].some((w) => w.servers.includes(n))) await ensure(n);
      if (ingest.length) await cleanIngested();
      await runPhase("reads", servers, reads, runs);
      if (ingest.length) {
        // Only the two servers that ingest run now.
        for (const n of [...servers.keys()]) if (!ingest[0]?.servers.includes(n)) await stop(n);
        await runPhase("ingest", servers, ingest, runs);
      }
      for (const n of [...servers.keys()]) await stop(n);
      if (ingest.length) await cleanIngested();
    }
    if (warm.length) {
      for (const n of ORDER) if (warm.some((w) => w.servers.includes(n))) await ensure(n);
      await runPhase("warm", servers, warm, runs);
      for (const n of [...servers.keys()]) await stop(n);
    }
    // 4. Cold start, nothing else of ours running.
    if (SCENARIOS.includes("coldstart")) cold = await coldStarts(source);
    // 5. Live fan-out.
    if (SCENARIOS.includes("live")) liveResult = await live(source);
  } finally {
    if (servers.size) log("stopping the servers");
    await Promise.all([...servers.keys()].map(stop));
  }

  const bad = runs.filter((r) => r.non2xx || r.errors || r.timeouts || r.mismatches || r.problem);

  const date = startedAt.toISOString().slice(0, 10);
  const argv = process.argv.slice(2).join(" ");
  const command =
    process.env.npm_lifecycle_event === "bench"
      ? `cd bench && npm run bench${argv ? ` -- ${argv}` : ""}`
      : `cd bench && npx tsx run.ts${argv ? ` ${argv}` : ""}`;
  const envOverrides = Object.keys(process.env)
    .filter((k) => k.startsWith("BENCH_"))
    .map((k) => `${k}=${process.env[k]}`)
    .join(" ");
  const cpu = os.cpus();
  const dir = source.dir;
  const sections: string[] = [];
  const summary: string[] = ["| scenario | ours | peer(s) | ratio | target |", "|---|---:|---:|---:|---|"];
  const avgOf = (wl: string, s: ServerName) =>
    mean(runs.filter((r) => r.workload === wl && r.server === s).map((r) => r.rps));
  for (const wl of wls) {
    const k = wl.perRequest ?? 1;
    const unit = k > 1 ? "events/s" : "req/s";
    const [ours, ...peers] = wl.servers as [ServerName, ...ServerName[]];
    for (const p of peers) {
      const ratio = avgOf(wl.key, ours) / avgOf(wl.key, p);
      const target =
        wl.scenario === "ingest"
          ? p === "raw"
            ? [0.5, ">= 0.5x raw"]
            : null
          : wl.scenario === "warm"
            ? p === "postgraphile"
              ? [3, ">= 3x PostGraphile"]
              : null
            : (wl.scenario === "nested" || wl.scenario === "deep") && p === "postgraphile"
              ? [1, ">= 1.0x PostGraphile (not done below 0.75x)"]
              : null;
      summary.push(
        `| ${wl.key} | ${f0(avgOf(wl.key, ours) * k)} ${unit} | ${LABELS[p]}: ${f0(avgOf(wl.key, p) * k)} | ${ratio.toFixed(2)}x | ${
          target ? `${target[1]}: ${ratio >= (target[0] as number) ? "met" : "missed"}` : ""
        } |`,
      );
    }
    sections.push(`### ${wl.title}\n\n${throughputReport(runs, wl)}`);
  }
  const queries = `## Requests

- \`{ __typename }\`: the same on both, no credentials.
- nested read, ours (\`Authorization: Bearer <HS256 access token for the bench user>\`): \`${NESTED_OURS}\`
- nested read, PostGraphile (no credentials; the uuid column \`id\` is exposed as \`rowId\`):
  \`${nestedPostGraphile("<bench user uuid>")}\`
- nested read, raw pg: \`POST /nested {"userId": "<uuid>"}\`, one prepared statement (json_agg), no credentials.
- deep read, ours (bench user's token; the bench user is ADMIN of the organization; Relay global id):
  \`${deepOurs("<uuid>").replace(/node\(id: "[^"]*"\)/, 'node(id: "<Organization global id>")')}\`
- deep read, PostGraphile: \`${deepPostGraphile("<organization uuid>")}\`
- deep read, raw pg: \`POST /deep {"organizationId": "<uuid>"}\`, one prepared statement (json_agg, LIMIT 20 and 5 per workflow), no credentials.
- ingestion, ours (the ingestion user's token; it is OWNER of its organization): \`${INGEST_MUTATION}\` with
  \`{"input": {"organizationId": "<global id>", "events": [${INGEST_BATCH} EventInput]}}\`; every request's clientEventIds
  are new (nothing is deduplicated); the events are FILE_OPENED, FILE_MODIFIED (with operation and sizeBytes) and
  TOOL_USED, each with occurredAt and a small details object.
- ingestion, raw pg: \`POST /ingest {"userId": "<uuid>", "input": <the same input>}\`: one
  \`INSERT INTO events (16 columns) VALUES (...) x ${INGEST_BATCH} ON CONFLICT DO NOTHING\` (named statement), no credentials,
  no audit entry, no live notice, no validation beyond what the insert needs.
`;
  const warmNote = SCENARIOS.includes("warm")
    ? cacheKnown
      ? "The warm scenario's API was started with its response cache on (RESPONSE_CACHE unset: the default) and sent the same request over and over; the cold-cache scenarios' API with RESPONSE_CACHE=off."
      : "**This API source has no response cache** (its src/ never reads RESPONSE_CACHE): the warm scenario measures it exactly like the cold one; RESPONSE_CACHE=off/on were passed and ignored."
    : "";

  const md = `# Floyo API vs PostGraphile 5 and raw pg: ${LABEL} (${date})

- date: ${startedAt.toISOString()}
- command: \`${envOverrides ? `${envOverrides} ` : ""}${command}\`${liveResult ? `\n- live scenario, as the runner started it: \`cd bench && ${liveResult.command}\`` : ""}
- scenarios: ${SCENARIOS.join(", ")}
- API commit: ${source.commit}; measured: ${source.description}
- API started as ${source.start.how}${scriptOf(dir, "start") ? ` (its npm start script: \`${scriptOf(dir, "start")}\`)` : ""}
- node ${process.version}; ${cpu.length} cores (${cpu[0]?.model.trim()}), ${f0(os.totalmem() / 2 ** 30)} GiB${data ? `; PostgreSQL ${data.pgVersion}` : ""}
- ours: graphql-yoga ${versionOf(dir, "graphql-yoga")}, @pothos/core ${versionOf(dir, "@pothos/core")}, @prisma/client ${versionOf(dir, "@prisma/client")}, @prisma/adapter-pg ${versionOf(dir, "@prisma/adapter-pg")}, graphql ${versionOf(dir, "graphql")}; NODE_ENV=production, LOG_LEVEL=warn, pool ${POOL_SIZE}, budgets raised out of reach (RATE_LIMIT_*POINTS=1e9)
- peers: postgraphile ${versionOf(BENCH_DIR, "postgraphile")} (amber preset, no simplify-inflection, grafserv on node:http), NODE_ENV=production, pool ${POOL_SIZE}; raw pg (\`raw-pg-server.mjs\`: node:http, pg ${versionOf(BENCH_DIR, "pg")}, pool ${POOL_SIZE})
- load: autocannon ${versionOf(BENCH_DIR, "autocannon")} (programmatic, in the runner's process), ${CONNECTIONS} connections (ingestion: ${INGEST_CONNECTIONS}), ${DURATION} s per run, ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}, ${WARMUP} s warm-up per server and workload; servers in turn, the order rotated every round; before each timed run, waited up to ${QUIET_WAIT} s for the rest of the machine to use under ${QUIET_BELOW}% of a core
${data ? `- data: ${BENCH_DB} (${SEED_COMMENT}): ${data.counts}; the bench user has ${BENCH_USER_MEMBERSHIPS} memberships\n` : ""}- every workload's response was checked against the database on every server before and after the timed runs, and every response of every timed run was compared with the checked one (mismatched bodies); ingestion: the rows each run stored were counted (at least ${INGEST_BATCH} per successful response), the rows both servers stored for the same batch compared column by column, and deleted after each run
${warmNote ? `- ${warmNote}\n` : ""}
## Summary (ratios from this run; ours first)

${wls.length ? summary.join("\n") : "(no throughput scenario)"}
${bad.length ? `\n**WARNING: ${bad.length} run(s) had non-2xx responses, errors, timeouts, mismatched bodies or wrong row counts; see "CPU during each run".**\n` : ""}
${
  wls.length
    ? `## Throughput

${sections.join("\n\n")}

req/s is autocannon's mean of per-second samples (events/s: req/s x ${INGEST_BATCH}); a ratio > 1 means ours is faster.

CPU cost per request, mean over the rounds (the server process and all of PostgreSQL; a ratio > 1 means
the other server costs more than ours). On a busy machine this moves less than req/s does:

${costReport(runs, wls)}

## CPU during each run

CPU is the share of one core over the run's wall time (the machine has ${cpu.length}, so ${cpu.length * 100}% is all of
it): the server process, every \`postgres\` process together, the runner process (autocannon), and the rest of
the machine (busy CPU in /proc/stat minus those three: other people's processes on a shared machine). A
server well under 100% while the rest of the machine is busy was starved of CPU, not idle. "drained after":
after an ingestion run, seconds until the API's process was idle again (its background analysis of the
stored events), waited before the next run.

${cpuReport(runs)}

${queries}`
    : ""
}${
  cold
    ? `
## Cold start (embedded mode)

No DATABASE_URL, no REDIS_URL, no NODE_ENV (what \`npm start\` does for a new user), DATA_DIR a new empty temporary
directory; the time from spawning the start command (\`sh -c "exec <start script>"\`, or \`sh -c "<start script>"\` for a
compound one such as a build and then the server, in the API directory with its node_modules/.bin on PATH, i.e.
\`npm start\` without npm itself) until \`GET /health/readiness\` answered 200,
polled every 25 ms; then SIGTERM to the server process, waited until every process of the start command had exited, and the same again on that now-existing DATA_DIR.
${COLDSTART_REPS} repetitions each. "CPU until ready": the process tree's user+system time at readiness.
Targets (issue 14): empty <= 3 s, existing <= 1.5 s.

${coldStartReport(cold.rows, cold.variants)}
`
    : ""
}${liveResult ? `\n## Live fan-out\n\n${liveResult.markdown}\n` : ""}`;

  mkdirSync(path.join(BENCH_DIR, "results"), { recursive: true });
  const file = path.join(BENCH_DIR, "results", `${date}-${LABEL}.md`);
  writeFileSync(file, md);
  if (wls.length) console.log(`\n${summary.join("\n")}\n`);
  if (cold) console.log(`${coldStartReport(cold.rows, cold.variants).split("\n\nEach start:")[0]}\n`);
  log(`wrote ${path.relative(REPO_DIR, file)}`);
  if (bad.length) {
    throw new Error(
      `${bad.length} timed run(s) had non-2xx responses, errors, timeouts, mismatched bodies or wrong row counts (see ${file})`,
    );
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
