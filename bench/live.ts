// Live fan-out: how fast one organization's events reach many subscribers spread over two
// instances on PostgreSQL and Redis, as a dashboard would follow them (the row re-read for each
// subscriber) and as a bare feed (cursor and count only, no database read per delivery).
// Run from the repository root (it uses the API's own node_modules): npx tsx bench/live.ts
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import { createClient } from "graphql-ws";
import pg from "pg";
import WebSocket from "ws";

const { values: flags } = parseArgs({
  options: {
    subscribers: { type: "string", default: "1000" },
    events: { type: "string", default: "50" },
    label: { type: "string", default: "live-fanout" },
  },
});
const SUBSCRIBERS = Number(flags.subscribers);
const EVENTS = Number(flags.events);
const PG = process.env.BENCH_PG_URL ?? "postgresql://postgres@127.0.0.1:5432";
const DB = "floyo_bench_live";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const children: ChildProcess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const CLK_TCK = 100;
const cpu = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};

async function gql<T>(url: string, query: string, variables: object, token?: string): Promise<T> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await r.json()) as { data?: T; errors?: unknown };
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function main() {
  const admin = new pg.Client({ connectionString: `${PG}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  const databaseUrl = `${PG}/${DB}`;
  execFileSync("node_modules/.bin/prisma", ["migrate", "deploy"], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
    stdio: "ignore",
  });
  const env = {
    ...process.env,
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: `benchlive:${randomBytes(3).toString("hex")}:`,
    JWT_KEYS: `k1:${randomBytes(36).toString("base64url")}`,
    SECRETS_KEYS: `s1:${randomBytes(32).toString("base64")}`,
    SMTP_URL: "smtp://127.0.0.1:2525",
    CORS_ORIGINS: "http://localhost:3000",
    WS_MAX_CONNECTIONS_PER_USER: String(SUBSCRIBERS * 2),
    WS_MAX_CONNECTIONS_PER_IP: String(SUBSCRIBERS * 2),
  };
  const servers = await Promise.all(
    [0, 1].map(async () => {
      const port = await freePort();
      const child = spawn("node", ["--import", "tsx", "src/main.ts"], {
        env: { ...env, HOST: "127.0.0.1", PORT: String(port) },
        stdio: "inherit",
      });
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; ; i++) {
        if (i > 600) throw new Error("server did not start");
        if ((await fetch(`${url}/health/readiness`).catch(() => null))?.ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return { url, graphql: `${url}/graphql`, ws: `ws://127.0.0.1:${port}/graphql`, pid: child.pid as number };
    }),
  );
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]];
  const registered = await gql<{
    authRegister: { accessToken: string; user: { memberships: { organization: { id: string } }[] } };
  }>(
    a.graphql,
    "mutation($input: AuthRegisterInput!) { authRegister(input: $input) { accessToken user { memberships { organization { id } } } } }",
    { input: { email: `bench-${Date.now()}@bench.test`, password: "correct horse battery staple", fullName: "Bench" } },
  );
  const token = registered.authRegister.accessToken;
  const org = registered.authRegister.user.memberships[0]?.organization.id as string;

  const results: string[] = [];
  for (const [name, selection] of [
    ["dashboard (row re-read per subscriber)", "cursor event { id filePath occurredAt }"],
    ["bare feed (cursor and count)", "cursor count"],
  ] as const) {
    const { liveCursor: after } = await gql<{ liveCursor: string }>(
      a.graphql,
      "query($org: ID!) { liveCursor(organizationId: $org, feed: EVENTS) }",
      { org },
      token,
    );
    const received = new Map<string, number>();
    const arrivals = new Map<string, number[]>();
    const clients = Array.from({ length: SUBSCRIBERS }, (_, i) =>
      createClient({
        url: (i % 2 ? b : a).ws,
        webSocketImpl: WebSocket,
        lazy: false,
        retryAttempts: 0,
        connectionParams: { authorization: `Bearer ${token}` },
      }),
    );
    let waiting: ((cursor: string) => void) | null = null;
    for (const client of clients) {
      client.subscribe<{ eventsRecorded: { cursor: string } }>(
        {
          query: `subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { ${selection} } }`,
          variables: { org, after },
        },
        {
          next: ({ data, errors }) => {
            if (errors) throw new Error(JSON.stringify(errors));
            const cursor = data?.eventsRecorded.cursor as string;
            const n = (received.get(cursor) ?? 0) + 1;
            received.set(cursor, n);
            if (!arrivals.has(cursor)) arrivals.set(cursor, []);
            if (n === SUBSCRIBERS) {
              (arrivals.get(cursor) as number[]).push(performance.now());
              waiting?.(cursor);
            }
          },
          error: (e) => {
            throw e;
          },
          complete: () => undefined,
        },
      );
    }
    // Everyone is listening once a first event reaches all of them.
    const record = (server: typeof a, path: string) =>
      gql<{ eventRecord: { id: string } }>(
        server.graphql,
        "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
        { input: { event: { kind: "FILE_OPENED", filePath: path } } },
        token,
      );
    const all = () => new Promise<string>((resolve) => (waiting = resolve));
    let done = all();
    await record(a, "/bench/warmup.txt");
    await done;
    log(`${name}: ${SUBSCRIBERS} subscribers live`);

    // Latency: one event at a time, from the mutation's start to its last delivery.
    const latencies: number[] = [];
    const cpuBefore = servers.map((s) => cpu(s.pid));
    const started = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      done = all();
      const t0 = performance.now();
      await record(i % 2 ? b : a, `/bench/${i}.txt`);
      await done;
      latencies.push(performance.now() - t0);
    }
    const elapsed = (performance.now() - started) / 1000;
    const cpuUsed = servers.reduce((sum, s, i) => sum + cpu(s.pid) - (cpuBefore[i] as number), 0);
    // Throughput: a burst of events back to back, until every subscriber has every one.
    const burst = EVENTS;
    const burstStart = performance.now();
    const lastOfBurst = new Promise<void>((resolve) => {
      let seen = 0;
      waiting = () => {
        if (++seen === burst) resolve();
      };
    });
    await Promise.all(Array.from({ length: burst }, (_, i) => record(i % 2 ? b : a, `/bench/burst-${i}.txt`)));
    await lastOfBurst;
    const burstSeconds = (performance.now() - burstStart) / 1000;
    await Promise.all(clients.map((c) => c.dispose()));

    latencies.sort((x, y) => x - y);
    const pct = (p: number) =>
      (latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] as number).toFixed(1);
    results.push(
      `| ${name} | ${SUBSCRIBERS} | ${EVENTS} | ${pct(50)} | ${pct(95)} | ${(latencies.at(-1) as number).toFixed(1)} | ${Math.round((SUBSCRIBERS * EVENTS) / elapsed).toLocaleString("en-US")} | ${((cpuUsed * 1e6) / (SUBSCRIBERS * EVENTS)).toFixed(0)} | ${Math.round((SUBSCRIBERS * burst) / burstSeconds).toLocaleString("en-US")} |`,
    );
    log(results.at(-1) as string);
  }
  await Promise.all(children.map((c) => new Promise((resolve) => c.once("exit", resolve).kill("SIGTERM"))));
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();

  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"]).toString().trim();
  const file = `bench/results/${new Date().toISOString().slice(0, 10)}-${flags.label}.md`;
  writeFileSync(
    file,
    `# Live fan-out: ${SUBSCRIBERS} subscribers on two instances\n\n` +
      `- Command: \`npx tsx bench/live.ts --subscribers ${SUBSCRIBERS} --events ${EVENTS}\` (repository root)\n` +
      `- Commit: ${commit} (work tree), Node ${process.version}, PostgreSQL and Redis on this machine, ${new Date().toISOString()}\n` +
      `- Setup: one organization; subscribers alternate between two API processes (NODE_ENV=production) sharing PostgreSQL and Redis; events are recorded alternately on each; the client, both servers, PostgreSQL and Redis share the machine's 2 cores.\n` +
      `- Latency: one \`eventRecord\` at a time, from the mutation's start until its event reached every subscriber. Deliveries/s (sequential): subscribers x events / time. CPU: both API processes' user+system time per delivery. Burst: ${EVENTS} mutations at once, until every subscriber has every event.\n\n` +
      `| selection | subscribers | events | p50 ms | p95 ms | max ms | deliveries/s (sequential) | API CPU µs/delivery | deliveries/s (burst) |\n|---|---|---|---|---|---|---|---|---|\n${results.join("\n")}\n`,
  );
  log(`wrote ${file}`);
  process.exit(0);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
