// Live fan-out: how fast one organization's events reach many graphql-ws subscribers spread
// over one or two API instances on PostgreSQL and Redis, as a dashboard would follow them (the
// row re-read for each subscriber) and as a bare feed (cursor and count only), and what an idle
// subscriber costs an instance in memory.
//
//   cd bench && npx tsx live.ts [--api HEAD|<ref>|worktree] [--subscribers 1000] [--events 50]
//                               [--instances 2] [--connect-batch 250] [--label live-fanout]
//   (or `npm run bench -- --scenario live --subscribers N --live-instances 1|2`, which passes
//   --api-dir and --start itself and puts the table into the run's results file)
//
// Per selection: subscribers connect in batches of --connect-batch (0: all at once, a connection
// storm), alternating between the instances; every one subscribes to eventsRecorded from the
// cursor read before. A first event reaching all of them means everyone listens. Memory: the
// RSS of each instance before the clients connect and 2 s after that first event, divided by
// its subscribers (first selection only: after the first selection's clients leave, the heap
// they used is reused, so a second delta would be too low). Latency: EVENTS eventRecord
// mutations one at a time, recorded alternately on each instance; for each, the time from the
// mutation's start to each delivery (publish-to-deliver; with two instances, those delivered by
// the instance that did not record the event went through Redis) and to the last delivery.
// Throughput: a burst of EVENTS mutations at once.
//
// Environment: BENCH_PG_URL, REDIS_URL. The database floyo_bench_live is created and dropped.
// With many subscribers the client process needs a file descriptor per connection: raise the
// limit first (`ulimit -n 20000` covers 10,000 subscribers; this machine's hard limit is 20000).
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { type Client, createClient } from "graphql-ws";
import pg from "pg";
import WebSocket from "ws";
import { type ApiStart, apiArg, BENCH_DIR, migrate, prepareApiSource } from "./api-source.ts";

const { values: flags } = parseArgs({
  options: {
    api: { type: "string" },
    "api-dir": { type: "string" },
    start: { type: "string" },
    subscribers: { type: "string", default: "1000" },
    events: { type: "string", default: "50" },
    instances: { type: "string", default: "2" },
    "connect-batch": { type: "string", default: "250" },
    label: { type: "string", default: "live-fanout" },
    json: { type: "string" },
  },
});
const SUBSCRIBERS = Number(flags.subscribers);
const EVENTS = Number(flags.events);
const INSTANCES = Number(flags.instances);
const CONNECT_BATCH = Number(flags["connect-batch"]);
if (INSTANCES !== 1 && INSTANCES !== 2) throw new Error("--instances is 1 or 2");
const PG = (process.env.BENCH_PG_URL ?? "postgresql://postgres@127.0.0.1:5432").replace(/\/+$/, "");
const DB = "floyo_bench_live";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const EVENT_TIMEOUT_MS = 120_000;
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
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
};
/** Resident memory of a process, in bytes. */
const rss = (pid: number) => {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB/m);
  return Number(line?.[1] ?? 0) * 1024;
};

async function gql<T>(url: string, query: string, variables: object, token?: string): Promise<T> {
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await r.json()) as { data?: T; errors?: unknown };
  if (!body.data) throw new Error(`HTTP ${r.status}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const pct = (xs: number[], p: number) => {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] as number;
};
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "-");
const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "-");

interface Instance {
  url: string;
  graphql: string;
  ws: string;
  pid: number;
  output: string[];
}

async function main() {
  let apiDir: string;
  let start: ApiStart;
  let commit: string;
  if (flags["api-dir"]) {
    apiDir = flags["api-dir"];
    const args = flags.start ? (JSON.parse(flags.start) as string[]) : ["--import", "tsx", "src/main.ts"];
    start = { args, how: `\`node ${args.join(" ")}\``, compiled: args[0] === "dist/main.js" };
    commit = "(given by the runner)";
  } else {
    const source = prepareApiSource(flags.api ?? apiArg([]), log);
    apiDir = source.dir;
    start = source.start;
    commit = source.commit;
  }

  const admin = new pg.Client({ connectionString: `${PG}/postgres` });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DB}`);
  const databaseUrl = `${PG}/${DB}`;
  const migrated = migrate(apiDir, databaseUrl);
  log(`live: ${DB} created, migrated (${migrated})`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_OPTIONS: "",
    NODE_ENV: "production",
    LOG_LEVEL: "warn",
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    REDIS_KEY_PREFIX: `benchlive:${randomBytes(3).toString("hex")}:`,
    JWT_KEYS: `k1:${randomBytes(36).toString("base64url")}`,
    SECRETS_KEYS: `s1:${randomBytes(32).toString("base64")}`,
    SMTP_URL: "smtp://127.0.0.1:2525",
    CORS_ORIGINS: "http://localhost:3000",
    WS_MAX_CONNECTIONS_PER_USER: String(Math.min(100_000, SUBSCRIBERS * 2)),
    WS_MAX_CONNECTIONS_PER_IP: String(Math.min(100_000, SUBSCRIBERS * 2)),
    RATE_LIMIT_POINTS: "1000000000",
    RATE_LIMIT_ANONYMOUS_POINTS: "1000000000",
    RATE_LIMIT_ADDRESS_POINTS: "1000000000",
  };
  const servers: Instance[] = await Promise.all(
    Array.from({ length: INSTANCES }, async () => {
      const port = await freePort();
      const child = spawn(process.execPath, start.args, {
        cwd: apiDir,
        env: { ...env, HOST: "127.0.0.1", PORT: String(port) },
        stdio: ["ignore", "pipe", "pipe"],
      });
      children.push(child);
      const output: string[] = [];
      const keep = (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) {
          if (!line.trim()) continue;
          output.push(line);
          if (output.length > 40) output.shift();
        }
      };
      child.stdout?.on("data", keep);
      child.stderr?.on("data", keep);
      const url = `http://127.0.0.1:${port}`;
      for (let i = 0; ; i++) {
        if (i > 900 || child.exitCode !== null) throw new Error(`an instance did not start:\n${output.join("\n")}`);
        if ((await fetch(`${url}/health/readiness`).catch(() => null))?.ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      return { url, graphql: `${url}/graphql`, ws: `ws://127.0.0.1:${port}/graphql`, pid: child.pid as number, output };
    }),
  );
  log(`live: ${INSTANCES} instance(s) ready (${start.how})`);
  const a = servers[0] as Instance;
  const registered = await gql<{
    authRegister: { accessToken: string; user: { memberships: { organization: { id: string } }[] } };
  }>(
    a.graphql,
    "mutation($input: AuthRegisterInput!) { authRegister(input: $input) { accessToken user { memberships { organization { id } } } } }",
    { input: { email: `bench-${Date.now()}@bench.test`, password: "correct horse battery staple", fullName: "Bench" } },
  );
  const token = registered.authRegister.accessToken;
  const org = registered.authRegister.user.memberships[0]?.organization.id as string;

  const rows: string[] = [];
  const notes: string[] = [];
  let first = true;
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
    // Per subscriber: its instance, and the time it received the current event.
    const instanceOf: number[] = [];
    const failures = new Map<string, number>();
    const fail = (why: string) => failures.set(why, (failures.get(why) ?? 0) + 1);
    let current = "";
    let t0 = 0;
    let got = 0;
    // Subscribers connected (connection_ack) and whose subscription has not ended (an error, a
    // completion, or the socket closed): the ones every event must reach.
    let alive = 0;
    let disposing = false;
    let deliveries: { ms: number; instance: number }[] = [];
    let onAll: (() => void) | null = null;
    let burstLeft = 0;
    let onBurst: (() => void) | null = null;
    const received = new Map<string, number>();
    /** Whether the current event, or the whole burst, has reached every live subscriber. */
    const check = () => {
      if (burstLeft > 0) {
        if (received.size >= burstLeft && [...received.values()].every((n) => n >= alive)) onBurst?.();
      } else if (t0 !== 0 && got >= alive) {
        onAll?.();
      }
    };
    const retries = new Map<string, number>();
    const rssBefore = servers.map((s) => rss(s.pid));
    const clients: Client[] = [];
    const connectStarted = performance.now();
    let connected = 0;
    const connectedOn = servers.map(() => 0);
    for (let i = 0; i < SUBSCRIBERS; ) {
      const batch = CONNECT_BATCH > 0 ? Math.min(CONNECT_BATCH, SUBSCRIBERS - i) : SUBSCRIBERS;
      const settled: Promise<void>[] = [];
      for (let j = 0; j < batch; j++, i++) {
        const instance = i % INSTANCES;
        instanceOf.push(instance);
        let settle: () => void = () => {};
        settled.push(new Promise<void>((r) => (settle = r)));
        let ok = false;
        const client = createClient({
          url: (servers[instance] as Instance).ws,
          webSocketImpl: WebSocket,
          lazy: false,
          retryAttempts: 0,
          // Closes and errors are counted below; graphql-ws would print each one.
          onNonLazyError: () => undefined,
          connectionParams: { authorization: `Bearer ${token}` },
          on: {
            connected: () => {
              ok = true;
              connected++;
              alive++;
              connectedOn[instance] = (connectedOn[instance] as number) + 1;
              settle();
            },
            closed: (event) => {
              const e = event as { code?: number; reason?: string };
              if (!ok) fail(`connection closed ${e.code ?? "?"} ${e.reason ?? ""}`.trim());
              else if (!disposing)
                end(`connection closed ${e.code ?? "?"} ${e.reason ?? ""} after connection_ack`.trim());
              settle();
            },
            error: () => settle(),
          },
        });
        clients.push(client);
        const me = i;
        let ended = false;
        const end = (why: string) => {
          if (ended || !ok) return;
          ended = true;
          alive--;
          fail(why);
          check();
        };
        client.subscribe<{ eventsRecorded: { cursor: string } }>(
          {
            query: `subscription($org: ID!, $after: String) { eventsRecorded(organizationId: $org, after: $after) { ${selection} } }`,
            variables: { org, after },
          },
          {
            next: ({ data, errors }) => {
              if (errors) {
                const codes = errors.map(
                  (e) => (e.extensions as { code?: string } | undefined)?.code ?? e.message.slice(0, 60),
                );
                end(`subscription answered ${[...new Set(codes)].join(", ")}`);
                return;
              }
              const cursor = data?.eventsRecorded.cursor as string;
              if (burstLeft > 0) {
                const n = (received.get(cursor) ?? 0) + 1;
                received.set(cursor, n);
                check();
                return;
              }
              if (cursor !== current) {
                // The cursor of the event we wait for is unknown until its first delivery.
                if (current !== "" || t0 === 0) return;
                current = cursor;
              }
              deliveries.push({ ms: performance.now() - t0, instance: instanceOf[me] as number });
              got++;
              check();
            },
            error: (e) => {
              if (disposing) return;
              const code = (e as { code?: number })?.code;
              const why =
                code !== undefined
                  ? `closed ${code} ${(e as { reason?: string }).reason ?? ""}`.trim()
                  : String((e as Error)?.message ?? e).slice(0, 120);
              if (ok) end(`subscription ended: ${why}`);
            },
            complete: () => {
              if (!disposing) end("subscription completed by the server");
            },
          },
        );
      }
      await Promise.all(settled);
    }
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    log(
      `${name}: ${connected} of ${SUBSCRIBERS} subscribers connected in ${connectSeconds.toFixed(1)} s` +
        (failures.size ? ` (failures: ${[...failures].map(([k, v]) => `${v}x ${k}`).join("; ")})` : ""),
    );
    if (connected === 0) throw new Error("no subscriber connected");

    // A mutation answered 503 (SERVICE_UNAVAILABLE, retryable) is retried after 250-500 ms (the
    // jitter keeps a refused burst from coming back as one), as a client would, for up to about
    // a minute (longer than the database breaker's reset); the retries are counted and reported.
    const record = async (server: Instance, filePath: string) => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await gql<{ eventRecord: { id: string } }>(
            server.graphql,
            "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
            { input: { event: { kind: "FILE_OPENED", filePath } } },
            token,
          );
        } catch (err) {
          const message = (err as Error).message;
          if (!message.startsWith("HTTP 503") || attempt >= 160) throw err;
          const why = `eventRecord answered 503${message.includes("SERVICE_UNAVAILABLE") ? " SERVICE_UNAVAILABLE" : ""} (retried after 250-500 ms)`;
          retries.set(why, (retries.get(why) ?? 0) + 1);
          await new Promise((r) => setTimeout(r, 250 + Math.random() * 250));
        }
      }
    };
    /** Records one event on `server`, resolves when all subscribers have it (or times out). */
    const one = async (server: Instance, filePath: string) => {
      current = "";
      got = 0;
      deliveries = [];
      const all = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), EVENT_TIMEOUT_MS);
        onAll = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      t0 = performance.now();
      await record(server, filePath);
      if (!(await all)) {
        throw new Error(
          `an event reached ${got} of ${alive} subscribers in ${EVENT_TIMEOUT_MS / 1000} s` +
            (failures.size ? ` (failures: ${[...failures].map(([k, v]) => `${v}x ${k}`).join("; ")})` : ""),
        );
      }
      return performance.now() - t0;
    };
    // Everyone is listening once a first event reaches all of them.
    const firstMs = await one(a, "/bench/warmup.txt");
    const subscribed = alive;
    log(`${name}: ${subscribed} subscribers live (first event to all in ${firstMs.toFixed(0)} ms)`);
    await new Promise((r) => setTimeout(r, 2000));
    const rssAfter = servers.map((s) => rss(s.pid));
    const perInstance = connectedOn;
    const memory = rssAfter.map(
      (after, k) => (after - (rssBefore[k] as number)) / Math.max(1, perInstance[k] as number),
    );

    // Latency: one event at a time.
    const lastMs: number[] = [];
    const allDeliveries: number[] = [];
    const crossDeliveries: number[] = [];
    const cpuBefore = servers.map((s) => cpu(s.pid));
    const started = performance.now();
    for (let i = 0; i < EVENTS; i++) {
      const recordedOn = i % INSTANCES;
      lastMs.push(await one(servers[recordedOn] as Instance, `/bench/${i}.txt`));
      for (const d of deliveries) {
        allDeliveries.push(d.ms);
        if (d.instance !== recordedOn) crossDeliveries.push(d.ms);
      }
    }
    const elapsed = (performance.now() - started) / 1000;
    const cpuUsed = servers.reduce((sum, s, i) => sum + cpu(s.pid) - (cpuBefore[i] as number), 0);
    // Throughput: a burst of events back to back, until every subscriber has every one.
    received.clear();
    burstLeft = EVENTS;
    const burstStart = performance.now();
    // At least 1,000 deliveries a second, or the burst is cut short (and says so).
    const burstTimeoutMs = EVENT_TIMEOUT_MS + alive * EVENTS;
    const lastOfBurst = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), burstTimeoutMs);
      onBurst = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
    await Promise.all(
      Array.from({ length: EVENTS }, (_, i) => record(servers[i % INSTANCES] as Instance, `/bench/burst-${i}.txt`)),
    );
    const burstComplete = await lastOfBurst;
    const burstSeconds = (performance.now() - burstStart) / 1000;
    const burstDelivered = [...received.values()].reduce((x, y) => x + y, 0);
    if (!burstComplete) {
      const why = `the burst was cut short after ${f0(burstSeconds)} s: ${f0(burstDelivered)} of ${f0(alive * EVENTS)} deliveries`;
      log(`${name}: ${why}`);
      notes.push(`${name}: ${why}`);
    }
    burstLeft = 0;
    disposing = true;
    await Promise.all(clients.map((c) => c.dispose()));

    const memoryCell = first
      ? memory.map((m, k) => `${f1(m / 1024)} KB (${perInstance[k]} on ${k ? "B" : "A"})`).join(", ")
      : "-";
    rows.push(
      `| ${name} | ${connected} / ${SUBSCRIBERS} | ${subscribed} | ${connectSeconds.toFixed(1)} | ${memoryCell} | ${EVENTS} | ${f1(pct(allDeliveries, 50))} | ${f1(pct(allDeliveries, 99))} | ${INSTANCES === 2 ? f1(pct(crossDeliveries, 99)) : "-"} | ${f1(pct(lastMs, 50))} | ${f1(pct(lastMs, 99))} | ${f1(Math.max(...lastMs))} | ${f0(allDeliveries.length / elapsed)} | ${((cpuUsed * 1e6) / Math.max(1, allDeliveries.length)).toFixed(0)} | ${f0(burstDelivered / burstSeconds)}${burstComplete ? "" : " (cut short)"} |`,
    );
    log(rows.at(-1) as string);
    if (failures.size) notes.push(`${name}: ${[...failures].map(([k, v]) => `${v}x ${k}`).join("; ")}`);
    if (retries.size) {
      notes.push(`${name}: ${[...retries].map(([k, v]) => `${v}x ${k}`).join("; ")}`);
      log(`${name}: ${[...retries].map(([k, v]) => `${v}x ${k}`).join("; ")}`);
      // Why: the instances' own warnings (the breaker, the pool), as they logged them.
      const why = new Map<string, number>();
      for (const server of servers)
        for (const line of server.output) {
          const msg = /"msg":"([^"]*)"/.exec(line)?.[1];
          if (msg) why.set(msg, (why.get(msg) ?? 0) + 1);
        }
      if (why.size) {
        const said = [...why].map(([k, v]) => `${v}x "${k}"`).join("; ");
        notes.push(`${name}: the instances' last warnings: ${said}`);
        log(`${name}: the instances' last warnings: ${said}`);
      }
    }
    if (first) {
      notes.push(
        `memory: RSS before the clients connected ${rssBefore.map((b) => `${f1(b / 2 ** 20)} MB`).join(", ")}; 2 s after the first event reached all of them ${rssAfter.map((b) => `${f1(b / 2 ** 20)} MB`).join(", ")} (instance A${INSTANCES === 2 ? ", B" : ""})`,
      );
    }
    first = false;
  }
  await Promise.all(
    children.map(
      (c) => new Promise((resolve) => (c.exitCode !== null ? resolve(null) : c.once("exit", resolve).kill("SIGTERM"))),
    ),
  );
  await admin.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin.end();

  const command = `node --import tsx live.ts ${process.argv.slice(2).join(" ")}`;
  const setup =
    INSTANCES === 2
      ? "two API processes sharing PostgreSQL and Redis; subscribers alternate between them; events are recorded alternately on each"
      : "one API process (on PostgreSQL and Redis); every subscriber and every event on it";
  const markdown =
    `- ${SUBSCRIBERS} subscribers on ${INSTANCES} instance${INSTANCES === 2 ? "s" : ""} (${setup}), ${EVENTS} events; API started as ${start.how}, NODE_ENV=production; the client, the servers, PostgreSQL and Redis share the machine's cores.\n` +
    `- Connected: subscribers that got connection_ack, in batches of ${CONNECT_BATCH || "all at once"}; subscribed: of those, the ones whose subscription was still running when the first event had reached all of them (every later event must reach those still running); connect s: until every one had connected or failed. Memory per idle subscriber: (instance RSS 2 s after the first event reached everyone - RSS before any connected) / its subscribers, first selection only. ` +
    `Publish-to-deliver: from the eventRecord mutation's start to each delivery (p50, p99 over every delivery of the ${EVENTS} sequential events${INSTANCES === 2 ? "; cross-instance: deliveries by the instance that did not record the event, i.e. through Redis" : ""}); last delivery: to the event's last delivery. CPU: the API processes' user+system time per delivery. Burst: ${EVENTS} mutations at once, until every subscriber has every event.\n` +
    `- Targets (issue 14): 10,000 subscribers on one instance all connected, <= 30 KB per idle subscriber; publish-to-deliver p99 <= 100 ms across two instances through Redis.\n\n` +
    `| selection | connected | subscribed | connect s | memory per idle subscriber | events | deliver p50 ms | deliver p99 ms | cross-instance deliver p99 ms | last delivery p50 ms | last delivery p99 ms | last delivery max ms | deliveries/s (sequential) | API CPU µs/delivery | deliveries/s (burst) |\n` +
    `|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n${rows.join("\n")}\n` +
    (notes.length ? `\n${notes.map((n) => `- ${n}`).join("\n")}\n` : "");
  if (flags.json) {
    writeFileSync(flags.json, JSON.stringify({ markdown }));
  } else {
    const file = path.join(BENCH_DIR, "results", `${new Date().toISOString().slice(0, 10)}-${flags.label}.md`);
    writeFileSync(
      file,
      `# Live fan-out: ${SUBSCRIBERS} subscribers on ${INSTANCES} instance${INSTANCES === 2 ? "s" : ""}\n\n` +
        `- command: \`cd bench && ${command}\`\n` +
        `- commit: ${commit}; node ${process.version}; ${new Date().toISOString()}\n${markdown}`,
    );
    log(`wrote ${path.relative(path.resolve(BENCH_DIR, ".."), file)}`);
  }
  process.exit(0);
}

void main().catch((err) => {
  console.error(err);
  for (const c of children) c.kill("SIGKILL");
  process.exit(1);
});
