// Throughput of the Floyo API against PostGraphile 5 on the same PostgreSQL database.
//
//   cd bench && npm install && npm run bench        (= npx tsx run.ts)
//
// Prepares the API source to measure (by default a snapshot of the HEAD commit; see
// api-source.ts), starts both servers on free loopback ports against floyo_bench (seeding it
// first when it is missing, seeded for other migrations, or when --seed is given), checks each workload's response once against the
// database, warms each server up, then runs autocannon against the two servers in turn (the
// order flips every round), and checks the responses again. Prints a markdown table and
// writes it to results/<YYYY-MM-DD>-<label>.md. Both servers are stopped at the end; the
// database is left for re-runs.
//
// Options (flags or environment):
//   --api HEAD|<ref>|worktree  which API code (BENCH_API, default HEAD; see api-source.ts)
//   --seed                  re-create floyo_bench first (BENCH_SEED=1)
//   --rounds N              timed rounds (BENCH_ROUNDS, default 2)
//   --duration S            seconds per timed run (BENCH_DURATION, default 8)
//   --connections N         autocannon connections (BENCH_CONNECTIONS, default 20)
//   --warmup S              seconds of warm-up per server and workload (BENCH_WARMUP, default 3)
//   --label NAME            results file suffix (BENCH_LABEL, default "baseline")
//   --quiet-below PCT       before each timed run, wait while the rest of the machine uses more
//                           than PCT% of one core (BENCH_QUIET_BELOW, default 40) ...
//   --quiet-wait S          ... but at most S seconds per run (BENCH_QUIET_WAIT, default 20; 0: never wait)
//   BENCH_PG_URL, BENCH_DB, REDIS_URL   where PostgreSQL, the database and Redis are
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import autocannon from "autocannon";
import jwt from "jsonwebtoken";
import pg from "pg";
import { type ApiSource, apiArg, BENCH_DIR, migrationNames, prepareApiSource, REPO_DIR } from "./api-source.ts";
import { BENCH_DB, BENCH_DB_URL, BENCH_USER_EMAIL, BENCH_USER_MEMBERSHIPS, PG_SERVER_URL, seed } from "./seed.ts";

// ─────────────────────────────── options ───────────────────────────────

const { values: flags } = parseArgs({
  options: {
    api: { type: "string" },
    seed: { type: "boolean", default: false },
    rounds: { type: "string" },
    duration: { type: "string" },
    connections: { type: "string" },
    warmup: { type: "string" },
    label: { type: "string" },
    "quiet-below": { type: "string" },
    "quiet-wait": { type: "string" },
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
const LABEL = flags.label ?? process.env.BENCH_LABEL ?? "baseline";
const FORCE_SEED = flags.seed || process.env.BENCH_SEED === "1";
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const POOL_SIZE = 10; // both servers: the API's DATABASE_POOL_SIZE default and pg's default

const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

// ─────────────────────────────── servers ───────────────────────────────

type ServerName = "ours" | "postgraphile";
const LABELS: Record<ServerName, string> = { ours: "Floyo API", postgraphile: "PostGraphile 5" };

interface Server {
  name: ServerName;
  url: string;
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

function startProcess(name: ServerName, args: string[], cwd: string, env: NodeJS.ProcessEnv): Server {
  const proc = spawn(process.execPath, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
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
  return { name, url: "", proc, output };
}

async function waitReady(server: Server, url: string, timeoutMs = 90_000): Promise<void> {
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
      const res = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      // Any HTTP answer means it listens; whether the answer is right is verify()'s job.
      await res.arrayBuffer();
      server.url = url;
      return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `${LABELS[server.name]} was not ready within ${timeoutMs / 1000} s (${lastError}):\n${server.output.join("\n")}`,
  );
}

async function startOurs(apiDir: string, jwtKeys: string): Promise<Server> {
  const port = await freePort();
  // `node --import tsx src/main.ts` rather than the tsx CLI: one process, whose CPU we can read.
  const server = startProcess("ours", ["--import", "tsx", "src/main.ts"], apiDir, {
    ...process.env,
    NODE_OPTIONS: "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: String(port),
    DATABASE_URL: BENCH_DB_URL,
    DATABASE_POOL_SIZE: String(POOL_SIZE),
    REDIS_URL,
    REDIS_KEY_PREFIX: "bench:",
    JWT_KEYS: jwtKeys,
    // Required in production since integrations exist; the benchmark stores no secrets.
    SECRETS_KEYS: `bench:${Buffer.alloc(32, 1).toString("base64")}`,
    CORS_ORIGINS: "http://localhost",
    // Production requires an SMTP server since ced5313; the benchmark sends no mail, and
    // nodemailer connects only when one is sent. Nothing listens on port 1.
    SMTP_URL: "smtp://127.0.0.1:1",
    LOG_LEVEL: "warn",
    SHUTDOWN_TIMEOUT_MS: "2000",
  });
  await waitReady(server, `http://127.0.0.1:${port}/graphql`);
  return server;
}

async function startPostGraphile(): Promise<Server> {
  const port = await freePort();
  const server = startProcess("postgraphile", ["postgraphile-server.mjs"], BENCH_DIR, {
    ...process.env,
    NODE_OPTIONS: "",
    NODE_ENV: "production",
    PORT: String(port),
    DATABASE_URL: BENCH_DB_URL,
    PG_POOL_SIZE: String(POOL_SIZE),
  });
  await waitReady(server, `http://127.0.0.1:${port}/graphql`);
  return server;
}

async function stopServer(server: Server | undefined): Promise<void> {
  if (!server) return;
  const { proc } = server;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  proc.kill("SIGTERM");
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
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

interface Workload {
  key: string;
  title: string;
  request(server: ServerName): { query: string; headers: Record<string, string> };
  /** Returns the problem with a response body, or null when it is right. */
  check(server: ServerName, body: unknown): string | null;
}

interface BenchUser {
  id: string;
  token: string;
  /** "ROLE slug name" for each membership, sorted: what both servers must return. */
  expected: string[];
}

function workloads(user: BenchUser): Workload[] {
  const json = { "content-type": "application/json" };
  const membershipKey = (m: { role?: unknown; organization?: { name?: unknown; slug?: unknown } | null }) =>
    `${m.role} ${m.organization?.slug} ${m.organization?.name}`;
  const sameMemberships = (got: string[]) => {
    const sorted = [...got].sort();
    if (sorted.length !== user.expected.length) {
      return `expected ${user.expected.length} memberships, got ${sorted.length}`;
    }
    const diff = sorted.findIndex((m, i) => m !== user.expected[i]);
    return diff === -1
      ? null
      : `membership differs from the database: got "${sorted[diff]}", want "${user.expected[diff]}"`;
  };
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
  const errorsOf = (body: any) => (body?.errors ? `errors: ${JSON.stringify(body.errors).slice(0, 500)}` : null);
  return [
    {
      key: "typename",
      title: "`{ __typename }`",
      request: () => ({ query: "{ __typename }", headers: json }),
      // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
      check: (_server, body: any) =>
        errorsOf(body) ?? (body?.data?.__typename === "Query" ? null : `unexpected data ${JSON.stringify(body)}`),
    },
    {
      key: "nested",
      title: `nested read: user -> ${BENCH_USER_MEMBERSHIPS} memberships -> organization`,
      request: (server) =>
        server === "ours"
          ? {
              query: "{ viewer { memberships { role organization { name slug } } } }",
              headers: { ...json, authorization: `Bearer ${user.token}` },
            }
          : {
              // Amber preset without simplify-inflection: the uuid column `id` is exposed as
              // `rowId` (`id` is the global node id), so the lookup is userByRowId.
              query: `query { userByRowId(rowId: "${user.id}") { organizationMembersByUserId { nodes { role organizationByOrganizationId { name slug } } } } }`,
              headers: json,
            },
      // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
      check: (server, body: any) => {
        const errors = errorsOf(body);
        if (errors) return errors;
        const list =
          server === "ours"
            ? body?.data?.viewer?.memberships
            : body?.data?.userByRowId?.organizationMembersByUserId?.nodes?.map(
                // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by hand
                (n: any) => ({ role: n?.role, organization: n?.organizationByOrganizationId }),
              );
        if (!Array.isArray(list)) return `no membership list in ${JSON.stringify(body).slice(0, 500)}`;
        return sameMemberships(list.map(membershipKey));
      },
    },
  ];
}

async function verify(server: Server, workload: Workload, when: string): Promise<number> {
  const { query, headers } = workload.request(server.name);
  const res = await fetch(server.url, { method: "POST", headers, body: JSON.stringify({ query }) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const problem = res.ok ? workload.check(server.name, body) : `HTTP ${res.status}`;
  if (problem) {
    throw new Error(
      `VERIFICATION FAILED (${when}) for ${LABELS[server.name]}, workload ${workload.key}: ${problem}\n` +
        `response: ${text.slice(0, 1000)}\n` +
        `last lines the server printed:\n${server.output.slice(-30).join("\n")}`,
    );
  }
  return Buffer.byteLength(text);
}

// ─────────────────────────────── CPU accounting ───────────────────────────────

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of one process, in seconds; null when it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return null;
  }
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
  serverCpu: number; // % of one core
  postgresCpu: number; // % of one core
  loadgenCpu: number; // % of one core
  otherCpu: number; // % of one core: everything else on the machine (other users' processes)
  loadavg: number; // 1-minute load average at the start
  waited: number; // seconds spent waiting for the rest of the machine to quieten
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

async function load(server: Server, workload: Workload, seconds: number, round: number, waited = 0): Promise<Run> {
  const { query, headers } = workload.request(server.name);
  const pid = server.proc.pid as number;
  const serverBefore = cpuSeconds(pid) ?? 0;
  const pgBefore = postgresCpu();
  const machineBefore = machineBusy();
  const loadavg = os.loadavg()[0];
  const selfBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await autocannon({
    url: server.url,
    method: "POST",
    headers,
    body: JSON.stringify({ query }),
    connections: CONNECTIONS,
    duration: seconds,
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const self = process.cpuUsage(selfBefore);
  const machine = machineBusy() - machineBefore;
  const serverS = (cpuSeconds(pid) ?? serverBefore) - serverBefore;
  const postgresS = postgresDelta(pgBefore, postgresCpu());
  const loadgenS = (self.user + self.system) / 1e6;
  const pct = (s: number) => (100 * s) / wall;
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
    serverCpu: pct(serverS),
    postgresCpu: pct(postgresS),
    loadgenCpu: pct(loadgenS),
    otherCpu: pct(Math.max(0, machine - serverS - postgresS - loadgenS)),
    loadavg,
    waited,
  };
}

// ─────────────────────────────── setup ───────────────────────────────

/** Seeded, with exactly the migrations of the source to measure. */
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
       WHERE u.email = $1 AND s.device = 'bench' AND s.revoked_at IS NULL AND s.expires_at > now() + interval '1 day'`,
      [BENCH_USER_EMAIL],
    );
    return Boolean(sessions);
  } catch {
    return false;
  } finally {
    await db.end();
  }
}

async function benchUser(secret: string): Promise<BenchUser & { pgVersion: string; counts: string }> {
  const db = new pg.Client({ connectionString: BENCH_DB_URL });
  await db.connect();
  try {
    const { rows: users } = await db.query<{ id: string }>("SELECT id FROM users WHERE email = $1", [BENCH_USER_EMAIL]);
    const id = users[0]?.id;
    if (!id) throw new Error(`no user ${BENCH_USER_EMAIL} in ${BENCH_DB}`);
    const { rows: sessions } = await db.query<{ id: string }>(
      "SELECT id FROM user_sessions WHERE user_id = $1 AND device = 'bench' AND revoked_at IS NULL AND expires_at > now()",
      [id],
    );
    const sid = sessions[0]?.id;
    if (!sid) throw new Error(`no live bench session for ${BENCH_USER_EMAIL} in ${BENCH_DB}: run with --seed`);
    const { rows } = await db.query<{ m: string }>(
      `SELECT m.role || ' ' || o.slug || ' ' || o.name AS m
       FROM organization_members m JOIN organizations o ON o.id = m.organization_id
       WHERE m.user_id = $1`,
      [id],
    );
    const { rows: v } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    const { rows: c } = await db.query<{ users: number; orgs: number; members: number }>(
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM organizations) AS orgs,
              (SELECT count(*)::int FROM organization_members) AS members`,
    );
    const token = jwt.sign({ sid }, secret, {
      algorithm: "HS256",
      keyid: "bench",
      subject: id,
      issuer: "floyo",
      audience: "floyo-api",
      expiresIn: "6h",
    });
    return {
      id,
      token,
      expected: rows.map((r) => r.m).sort(),
      pgVersion: v[0].v,
      counts: `${c[0].users} users, ${c[0].orgs} organizations, ${c[0].members} memberships`,
    };
  } finally {
    await db.end();
  }
}

function versionOf(dir: string, pkg: string): string {
  try {
    return JSON.parse(readFileSync(path.join(dir, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}

// ─────────────────────────────── report ───────────────────────────────

const f0 = (n: number) => Math.round(n).toLocaleString("en-US");
const f1 = (n: number) => n.toFixed(1);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function report(runs: Run[], wls: Workload[]): string {
  const lines = [
    "| round | workload | ours req/s | PostGraphile req/s | ratio (ours / PostGraphile) | ours p99 (ms) | PostGraphile p99 (ms) |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  const rounds = [...new Set(runs.map((r) => r.round))];
  const find = (round: number, wl: string, server: ServerName) =>
    runs.find((r) => r.round === round && r.workload === wl && r.server === server) as Run;
  for (const wl of wls) {
    for (const round of rounds) {
      const o = find(round, wl.key, "ours");
      const p = find(round, wl.key, "postgraphile");
      lines.push(
        `| ${round} | ${wl.title} | ${f0(o.rps)} | ${f0(p.rps)} | ${(o.rps / p.rps).toFixed(2)}x | ${o.p99} | ${p.p99} |`,
      );
    }
    const os_ = runs.filter((r) => r.workload === wl.key && r.server === "ours");
    const ps = runs.filter((r) => r.workload === wl.key && r.server === "postgraphile");
    const orps = mean(os_.map((r) => r.rps));
    const prps = mean(ps.map((r) => r.rps));
    lines.push(
      `| **mean** | ${wl.title} | **${f0(orps)}** | **${f0(prps)}** | **${(orps / prps).toFixed(2)}x** | ${f1(
        mean(os_.map((r) => r.p99)),
      )} | ${f1(mean(ps.map((r) => r.p99)))} |`,
    );
  }
  return lines.join("\n");
}

/** CPU milliseconds per request: less sensitive to a busy machine than req/s. */
function costReport(runs: Run[], wls: Workload[]): string {
  const lines = [
    "| workload | ours server CPU ms/request | PostGraphile server CPU ms/request | ratio (PostGraphile / ours) | ours postgres CPU ms/request | PostGraphile postgres CPU ms/request |",
    "|---|---:|---:|---:|---:|---:|",
  ];
  // % of a core for `wall` seconds over rps * wall requests: cpu% * 10 / rps ms per request.
  const perRequest = (rs: Run[], cpu: (r: Run) => number) => mean(rs.map((r) => (cpu(r) * 10) / r.rps));
  for (const wl of wls) {
    const o = runs.filter((r) => r.workload === wl.key && r.server === "ours");
    const p = runs.filter((r) => r.workload === wl.key && r.server === "postgraphile");
    const os_ = perRequest(o, (r) => r.serverCpu);
    const ps = perRequest(p, (r) => r.serverCpu);
    lines.push(
      `| ${wl.title} | ${os_.toFixed(3)} | ${ps.toFixed(3)} | ${(ps / os_).toFixed(2)}x | ${perRequest(o, (r) => r.postgresCpu).toFixed(3)} | ${perRequest(p, (r) => r.postgresCpu).toFixed(3)} |`,
    );
  }
  return lines.join("\n");
}

function cpuReport(runs: Run[], wls: Workload[]): string {
  const lines = [
    "| round | workload | server | req/s | p50 (ms) | requests | server CPU | postgres CPU (all backends) | autocannon CPU | rest of the machine | load avg (1 min) | waited for quiet (s) | non-2xx / errors / timeouts |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of runs) {
    const wl = wls.find((w) => w.key === r.workload) as Workload;
    lines.push(
      `| ${r.round} | ${wl.key} | ${LABELS[r.server]} | ${f0(r.rps)} | ${r.p50} | ${f0(r.total)} | ${f0(r.serverCpu)}% | ${f0(
        r.postgresCpu,
      )}% | ${f0(r.loadgenCpu)}% | ${f0(r.otherCpu)}% | ${r.loadavg.toFixed(1)} | ${f0(r.waited)} | ${r.non2xx} / ${r.errors} / ${r.timeouts} |`,
    );
  }
  return lines.join("\n");
}

// ─────────────────────────────── main ───────────────────────────────

async function main() {
  const startedAt = new Date();
  const source: ApiSource = prepareApiSource(flags.api ?? apiArg([]), log);
  log(`api: ${source.description}`);
  if (FORCE_SEED || !(await databaseReady(source.dir))) {
    log(FORCE_SEED ? "seeding (--seed)" : `${BENCH_DB} is missing, not seeded, or has other migrations: seeding`);
    await seed(source.dir, log);
  } else {
    log(`using the existing ${BENCH_DB} (pass --seed to re-create it)`);
  }

  const secret = randomBytes(36).toString("base64url"); // 48 characters
  const user = await benchUser(secret);
  const wls = workloads(user);

  let ours: Server | undefined;
  let theirs: Server | undefined;
  const runs: Run[] = [];
  try {
    log("starting the Floyo API (node --import tsx src/main.ts, NODE_ENV=production)");
    ours = await startOurs(source.dir, `bench:${secret}`);
    log(`  ${ours.url} (pid ${ours.proc.pid})`);
    log("starting PostGraphile 5 (postgraphile-server.mjs, NODE_ENV=production)");
    theirs = await startPostGraphile();
    log(`  ${theirs.url} (pid ${theirs.proc.pid})`);
    const servers = [ours, theirs];

    for (const wl of wls) {
      for (const s of servers) {
        const bytes = await verify(s, wl, "before the run");
        log(`verified ${wl.key} on ${LABELS[s.name]} (${bytes} bytes)`);
      }
    }

    if (WARMUP > 0) {
      for (const wl of wls) {
        for (const s of servers) {
          log(`warm-up ${WARMUP} s: ${wl.key} on ${LABELS[s.name]}`);
          await load(s, wl, WARMUP, 0);
        }
      }
    }

    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate: ours first in odd rounds, PostGraphile first in even ones.
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      for (const wl of wls) {
        for (const s of order) {
          const waited = await waitForQuiet(servers.map((x) => x.proc.pid as number));
          const run = await load(s, wl, DURATION, round, waited);
          runs.push(run);
          log(
            `round ${round} ${wl.key} ${LABELS[s.name]}: ${f0(run.rps)} req/s, p99 ${run.p99} ms, ` +
              `server CPU ${f0(run.serverCpu)}%, postgres ${f0(run.postgresCpu)}%, autocannon ${f0(run.loadgenCpu)}%, ` +
              `rest of the machine ${f0(run.otherCpu)}%` +
              (run.non2xx || run.errors || run.timeouts
                ? `, non-2xx ${run.non2xx}, errors ${run.errors}, timeouts ${run.timeouts}`
                : ""),
          );
        }
      }
    }

    for (const wl of wls) for (const s of servers) await verify(s, wl, "after the run");
    log("verified every workload again after the run");
  } finally {
    log("stopping both servers");
    await Promise.all([stopServer(ours), stopServer(theirs)]);
  }

  const bad = runs.filter((r) => r.non2xx || r.errors || r.timeouts);

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
  const table = report(runs, wls);
  const md = `# Floyo API vs PostGraphile 5: ${LABEL} (${date})

- date: ${startedAt.toISOString()}
- command: \`${envOverrides ? `${envOverrides} ` : ""}${command}\`
- API commit: ${source.commit}; measured: ${source.description}
- node ${process.version}; ${cpu.length} cores (${cpu[0]?.model.trim()}), ${f0(os.totalmem() / 2 ** 30)} GiB; PostgreSQL ${user.pgVersion}
- ours: graphql-yoga ${versionOf(source.dir, "graphql-yoga")}, @pothos/core ${versionOf(source.dir, "@pothos/core")}, @prisma/client ${versionOf(source.dir, "@prisma/client")}, graphql ${versionOf(source.dir, "graphql")}; \`node --import tsx src/main.ts\`, NODE_ENV=production, LOG_LEVEL=warn, pool ${POOL_SIZE}
- peer: postgraphile ${versionOf(BENCH_DIR, "postgraphile")} (amber preset, no simplify-inflection, grafserv on node:http), NODE_ENV=production, pool ${POOL_SIZE}
- load: autocannon ${versionOf(BENCH_DIR, "autocannon")} (programmatic, in the runner's process), ${CONNECTIONS} connections, ${DURATION} s per run, ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}, ${WARMUP} s warm-up per server and workload; servers alternated, order flipped every round; before each timed run, waited up to ${QUIET_WAIT} s for the rest of the machine to use under ${QUIET_BELOW}% of a core
- data: ${BENCH_DB}: ${user.counts}; the bench user has ${BENCH_USER_MEMBERSHIPS} memberships
- every workload's response was checked against the database on both servers before and after the timed runs

## Throughput

${table}

req/s is autocannon's mean of per-second samples; ratio > 1 means ours is faster.

CPU cost per request, mean over the rounds (server process and all of PostgreSQL; ratio > 1 means
ours is cheaper). On a busy machine this moves less than req/s does:

${costReport(runs, wls)}
${bad.length ? `\n**WARNING: ${bad.length} run(s) had non-2xx responses, errors or timeouts; see below.**\n` : ""}
## CPU during each run

CPU is the share of one core over the run's wall time (the machine has ${cpu.length}, so ${cpu.length * 100}% is all of
it): the server process, every \`postgres\` process together, the runner process (autocannon), and the rest of
the machine (busy CPU in /proc/stat minus those three: other people's processes on a shared machine). A
server well under 100% while the rest of the machine is busy was starved of CPU, not idle.

${cpuReport(runs, wls)}

## Queries

- \`{ __typename }\`: the same on both, no credentials.
- nested read, ours (with \`Authorization: Bearer <HS256 access token for the bench user>\`):
  \`{ viewer { memberships { role organization { name slug } } } }\`
- nested read, PostGraphile (no credentials; the uuid column \`id\` is exposed as \`rowId\`):
  \`query { userByRowId(rowId: "<bench user uuid>") { organizationMembersByUserId { nodes { role organizationByOrganizationId { name slug } } } } }\`
`;

  console.log(`\n${table}\n\n${costReport(runs, wls)}\n`);
  mkdirSync(path.join(BENCH_DIR, "results"), { recursive: true });
  const file = path.join(BENCH_DIR, "results", `${date}-${LABEL}.md`);
  writeFileSync(file, md);
  log(`wrote ${path.relative(REPO_DIR, file)}`);
  if (bad.length) {
    throw new Error(`${bad.length} timed run(s) had non-2xx responses, errors or timeouts (see ${file})`);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
