// Failover: a SIGKILLed scheduler leader is replaced within a few seconds (the lease's TTL)
// and no occurrence is recorded twice; a step in flight on a killed instance is delivered
// again by the survivor with the same Idempotency-Key, and a step whose answer was lost is
// retried with it too, so services can do the work once (GitHub: no second commit; Drive:
// no second file; SMTP: the same Message-ID).
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import net, { type AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";
import { describe, expect, it, onTestFinished } from "vitest";
import { decodeId } from "../src/schema/globalId.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { leaders, schedulerHealth } from "./helpers/leaders.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { services, startServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

interface Delivery {
  method: string;
  path: string;
  key: string | undefined;
  body: string;
}

/**
 * A service on a local port: `route` answers each request (or leaves it unanswered, in
 * flight); every request is recorded with the Idempotency-Key it carried.
 */
async function stub(route: (d: Delivery, res: ServerResponse, req: IncomingMessage) => void) {
  const deliveries: Delivery[] = [];
  const waiting: { count: number; resolve: () => void }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const key = req.headers["idempotency-key"];
      const d = { method: req.method ?? "", path: req.url ?? "", key: typeof key === "string" ? key : undefined, body };
      deliveries.push(d);
      for (const w of waiting.filter((w) => deliveries.length >= w.count)) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve();
      }
      route(d, res, req);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    /** Resolves once `count` requests have arrived. */
    received: (count: number) =>
      new Promise<void>((resolve) => {
        if (deliveries.length >= count) resolve();
        else waiting.push({ count, resolve });
      }),
  };
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

async function integration(url: string, user: TestUser, connector: string, config: unknown, secrets: unknown = {}) {
  const r = await gql<{ integrationCreate: { id: string } }>(
    url,
    "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { organizationId: user.org.id, connector, name: connector, config, secrets } },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.integrationCreate.id;
}

async function workflow(url: string, user: TestUser, steps: unknown[], status?: string) {
  const r = await gql<{ workflowCreate: { id: string } }>(
    url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { organizationId: user.org.id, name: "w", status, definition: { steps } } },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

interface Run {
  id: string;
  status: string;
  attempt: number;
  scheduledFor: string | null;
  steps: { key: string; status: string; attempts: number; output: unknown; error: string | null }[];
}
const RUN = "id status attempt scheduledFor steps { key status attempts output error }";

async function run(url: string, user: TestUser, workflowId: string) {
  const r = await gql<{ workflowRun: Run }>(url, `mutation($id: ID!) { workflowRun(id: $id) { ${RUN} } }`, {
    token: user.token,
    variables: { id: workflowId },
  });
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowRun;
}

async function runsOf(url: string, user: TestUser, workflowId: string) {
  const r = await gql<{ node: { executions: { edges: { node: Run }[] } } }>(
    url,
    `query($id: ID!) { node(id: $id) { ... on Workflow { executions(first: 100) { edges { node { ${RUN} } } } } } }`,
    { token: user.token, variables: { id: workflowId } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.executions.edges.map((e) => e.node).reverse();
}

const DONE = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];

/** The key a step of a run sends, as the README documents it. */
const keyOf = (executionId: string, stepId: string) =>
  createHash("sha256")
    .update(`floyo:step:${decodeId(executionId).id}:${stepId}`)
    .digest("hex");

describe.runIf(services)("failover", () => {
  it("replaces a SIGKILLed leader within the lease, and records no occurrence twice", async () => {
    const own = await isolatedServices("failover");
    onTestFinished(() => own.cleanup());
    // The default lease (SCHEDULER_LOCK_TTL_MS unset): the takeover time measured is a deployment's.
    const env = { ...own.env, EXECUTION_POLL_MS: "100" };
    const instances: ServerProcess[] = await Promise.all([spawnServer(env), spawnServer(env)]);
    for (const p of instances) onTestFinished(() => p.kill("SIGKILL").then(() => undefined));
    const [leader] = await until(
      () => leaders(instances),
      (l) => l.length === 1,
    );
    const survivor = instances.find((p) => p !== leader) as ServerProcess;

    const user = await createUser(survivor.graphqlUrl);
    const workflowId = await workflow(
      survivor.graphqlUrl,
      user,
      [{ id: "t", type: "transform", template: { ok: true } }],
      "ACTIVE",
    );
    const created = await gql<{ scheduleCreate: { id: string } }>(
      survivor.graphqlUrl,
      "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }",
      { token: user.token, variables: { input: { workflowId, intervalSeconds: 1, catchUp: "ALL" } } },
    );
    await until(
      () => runsOf(survivor.graphqlUrl, user, workflowId),
      (r) => r.length >= 2,
    );

    const killedAt = Date.now();
    expect(await leader?.kill("SIGKILL")).toBe(null);
    const state = await until(
      () => schedulerHealth(survivor.url),
      (s) => s.isLeader,
    );
    const takeoverMs = Date.parse(state.leaderSince ?? "") - killedAt;
    console.log(`failover: the survivor leads ${takeoverMs} ms after the leader's SIGKILL (default lease)`);
    expect(state.leaderSince).not.toBeNull();

    // The survivor catches up what fell due while no one led (ALL), then goes on.
    const atTakeover = (await runsOf(survivor.graphqlUrl, user, workflowId)).length;
    await until(
      () => runsOf(survivor.graphqlUrl, user, workflowId),
      (r) => r.length >= atTakeover + 2,
    );
    await gql(survivor.graphqlUrl, "mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { id } }", {
      token: user.token,
      variables: { input: { id: created.data?.scheduleCreate.id, isPaused: true } },
    });
    const times = (await runsOf(survivor.graphqlUrl, user, workflowId)).map((r) => Date.parse(r.scheduledFor ?? ""));
    // Each occurrence once (no schedule+time twice), and none missed across the takeover.
    expect(new Set(times).size).toBe(times.length);
    for (let i = 1; i < times.length; i++) expect((times[i] as number) - (times[i - 1] as number)).toBe(1000);
    expect(await survivor.kill("SIGTERM")).toBe(0);
  });

  it("delivers a step in flight on a killed instance again, with the same Idempotency-Key", async () => {
    const own = await isolatedServices("failover_step");
    onTestFinished(() => own.cleanup());
    // The first delivery of each key is left in flight (its instance dies holding it); a
    // repeat is answered, as a service that dedupes would, with what it did the first time.
    const service = await stub((d, res) => {
      if (d.key && service.deliveries.filter((x) => x.key === d.key).length > 1) json(res, 200, { repeat: d.key });
    });
    const env = {
      ...own.env,
      CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*",
      // The held deliveries stay in flight until the kill, however long the survivor takes to start.
      CONNECTOR_TIMEOUT_MS: "120000",
      EXECUTION_HEARTBEAT_MS: "100",
      EXECUTION_POLL_MS: "100",
      EXECUTION_STALE_MS: "1000",
    };
    const victim = await spawnServer(env);
    onTestFinished(() => victim.kill("SIGKILL").then(() => undefined));
    const user = await createUser(victim.graphqlUrl);
    const hook = await integration(victim.graphqlUrl, user, "http", { baseUrl: service.url });
    const workflowId = await workflow(victim.graphqlUrl, user, [
      { id: "deliver", type: "webhook", integrationId: hook, path: "/orders", body: { order: 42 }, timeoutMs: 120_000 },
    ]);
    const runs = [];
    for (let i = 0; i < 3; i++) runs.push(await run(victim.graphqlUrl, user, workflowId));
    await service.received(3);

    // Started only now, so the three runs are the victim's.
    const survivor = await spawnServer(env);
    onTestFinished(() => survivor.kill("SIGKILL").then(() => undefined));
    expect(await victim.kill("SIGKILL")).toBe(null);
    const done = await until(
      () => runsOf(survivor.graphqlUrl, user, workflowId),
      (r) => r.length === 3 && r.every((e) => DONE.includes(e.status)),
    );
    for (const e of done) expect(e).toMatchObject({ status: "SUCCEEDED", attempt: 2 });

    const keys = service.deliveries.map((d) => d.key);
    expect(service.deliveries).toHaveLength(6);
    expect(new Set(keys).size).toBe(runs.length);
    for (const r of runs) {
      const key = keyOf(r.id, "deliver");
      expect(keys.filter((k) => k === key)).toHaveLength(2);
      expect(done.find((e) => e.id === r.id)?.steps[0]?.output).toMatchObject({ body: { repeat: key } });
    }
    expect(await survivor.kill("SIGTERM")).toBe(0);
  });
});

/** The first log line of a spawned server with this message, once it is written. */
function logLine(p: ServerProcess, msg: string): Promise<{ time: string; [k: string]: unknown }> {
  const find = () =>
    p
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { time: string; msg?: string })
      .find((l) => l.msg === msg);
  return new Promise((resolve) => {
    const found = find();
    if (found) return resolve(found);
    const look = () => {
      const line = find();
      if (!line) return;
      p.child.stdout.off("data", look);
      resolve(line);
    };
    p.child.stdout.on("data", look);
  });
}

/** A TCP relay to Redis that can stall: connections stay open, nothing goes through any more. */
async function stallingRelay(target: URL) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Like a network that drops packets: a command sent now gets no answer, and no error. */
    stall() {
      for (const s of sockets) s.pause();
    },
  };
}

describe.runIf(services)("a leader whose Redis stalls", () => {
  it("steps down while its renewal is still pending, before a successor can lead", async () => {
    const own = await isolatedServices("failover_stall");
    onTestFinished(() => own.cleanup());
    const relay = await stallingRelay(new URL(services?.redisUrl ?? ""));
    const env = { ...own.env, SCHEDULER_LOCK_TTL_MS: "2000" };
    const leader = await spawnServer({ ...env, REDIS_URL: relay.url });
    onTestFinished(() => leader.kill("SIGKILL").then(() => undefined));
    await logLine(leader, "scheduler: leading");
    const follower = await spawnServer(env);
    onTestFinished(() => follower.kill("SIGKILL").then(() => undefined));

    const stalledAt = Date.now();
    relay.stall();
    const [down, up] = await Promise.all([
      logLine(leader, "scheduler: no longer the leader"),
      logLine(follower, "scheduler: leading"),
    ]);
    const [downAt, upAt] = [Date.parse(down.time), Date.parse(up.time)];
    console.log(
      `failover: Redis stalled; the leader stepped down after ${downAt - stalledAt} ms, its successor led after ${upAt - stalledAt} ms (lease 2000 ms)`,
    );
    expect(down.why).toMatch(/before the lease could lapse/);
    // Never two leaders: the old one could act no later than the instant the new one took over
    // (compared by the instant each acted on, not by when its log line was written).
    expect(Date.parse(String(down.heldUntil))).toBeLessThan(upAt);
  });
});

describe("a step whose answer was lost", () => {
  it("is retried with the same key, and each connector makes the repeat harmless", async () => {
    const own = await isolatedServices("failover_retry");
    onTestFinished(() => own.cleanup());
    const server = await startServer({ ...own.env, CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*", EXECUTION_POLL_MS: "100" });
    onTestFinished(() => server.stop());
    const blobSha = (text: string) =>
      createHash("sha1")
        .update(`blob ${Buffer.byteLength(text)}\0${text}`)
        .digest("hex");
    // Each service does the work, then loses its first answer (502): the step is retried.
    const files = new Map<string, string>();
    let commits = 0;
    const drive: { name: string; key: string | undefined }[] = [];
    const answered = new Set<string>();
    const lose = (what: string, res: ServerResponse) => {
      if (answered.has(what)) return false;
      answered.add(what);
      res.writeHead(502).end("lost");
      return true;
    };
    const service = await stub((d, res) => {
      const url = new URL(d.path, "http://x");
      const file = /^\/repos\/acme\/notes\/contents\/(.+)$/.exec(url.pathname)?.[1];
      if (file && d.method === "GET") {
        const content = files.get(file);
        if (content === undefined) json(res, 404, { message: "Not Found" });
        else json(res, 200, { type: "file", sha: blobSha(content) });
      } else if (file && d.method === "PUT") {
        const { content, sha } = JSON.parse(d.body) as { content: string; sha?: string };
        const existing = files.get(file);
        if (existing !== undefined && sha !== blobSha(existing)) return json(res, 409, { message: "sha mismatch" });
        files.set(file, Buffer.from(content, "base64").toString());
        commits++;
        if (!lose("commit", res)) json(res, 201, { content: { sha: blobSha(files.get(file) ?? "") } });
      } else if (url.pathname === "/drive/v3/files" && d.method === "GET") {
        const key = /value='([0-9a-f]+)'/.exec(url.searchParams.get("q") ?? "")?.[1];
        json(res, 200, { files: drive.filter((f) => f.key === key).map((f, i) => ({ id: `f${i}`, name: f.name })) });
      } else if (url.pathname === "/upload/drive/v3/files") {
        const meta = JSON.parse(/\r\n\r\n(\{.*\})\r\n/.exec(d.body)?.[1] ?? "{}") as {
          name: string;
          appProperties?: Record<string, string>;
        };
        drive.push({ name: meta.name, key: meta.appProperties?.floyoIdempotencyKey });
        if (!lose("upload", res)) json(res, 200, { id: "f0", name: meta.name });
      } else if (url.pathname === "/hook") {
        if (!lose("hook", res)) json(res, 200, { received: d.body });
      } else json(res, 404, { message: "no route" });
    });
    const mail = await smtpCatcher();

    const user = await createUser(server.graphqlUrl);
    const github = await integration(
      server.graphqlUrl,
      user,
      "github",
      { baseUrl: service.url, owner: "acme", repository: "notes" },
      { accessToken: "gh-1" },
    );
    const folder = await integration(
      server.graphqlUrl,
      user,
      "google_drive",
      { baseUrl: service.url, folderId: "F1" },
      { accessToken: "gd-1" },
    );
    const smtp = await integration(server.graphqlUrl, user, "smtp", {
      host: "127.0.0.1",
      port: mail.port,
      fromEmail: "floyo@example.test",
    });
    const retry = { maxAttempts: 3, backoffMs: 0 };
    const workflowId = await workflow(server.graphqlUrl, user, [
      {
        id: "commit",
        type: "connector",
        connector: "github",
        integrationId: github,
        action: "putFile",
        input: { path: "today.md", content: "# Today" },
        retry,
      },
      {
        id: "upload",
        type: "connector",
        connector: "google_drive",
        integrationId: folder,
        action: "uploadFile",
        input: { name: "today.md", content: "# Today" },
        retry,
      },
      // The key in the step's own template too, for services that want it in the body.
      {
        id: "hook",
        type: "http_request",
        method: "POST",
        url: `${service.url}/hook`,
        body: { key: "{{step.idempotencyKey}}" },
        retry,
      },
      // A key the step sets itself is sent as it is.
      {
        id: "own",
        type: "http_request",
        method: "PUT",
        url: `${service.url}/hook`,
        headers: { "Idempotency-Key": "mine-1" },
      },
      { id: "mail", type: "email", integrationId: smtp, to: ["boss@example.test"], subject: "Today", text: "Done." },
    ]);
    const started = await run(server.graphqlUrl, user, workflowId);
    const done = await until(
      () => runsOf(server.graphqlUrl, user, workflowId),
      (r) => DONE.includes(r[0]?.status ?? ""),
    );
    const result = done[0] as Run;
    expect(result.status, JSON.stringify(result.steps.map((s) => s.error))).toBe("SUCCEEDED");
    expect(result.steps.map((s) => s.attempts)).toEqual([2, 2, 2, 1, 1]);

    // GitHub: the retry found the content committed (same blob sha): one commit, not two.
    expect(commits).toBe(1);
    expect(result.steps[0]?.output).toMatchObject({ unchanged: true, commit: null });
    // Drive: the retry found the file carrying the step's key: one file.
    expect(drive).toEqual([{ name: "today.md", key: keyOf(started.id, "upload") }]);
    expect(result.steps[1]?.output).toMatchObject({ unchanged: true });
    // HTTP: both deliveries with one key, also in the template.
    const hooks = service.deliveries.filter((d) => d.path === "/hook");
    expect(hooks.map((d) => d.key)).toEqual([keyOf(started.id, "hook"), keyOf(started.id, "hook"), "mine-1"]);
    expect(JSON.parse(hooks[0]?.body ?? "")).toEqual({ key: keyOf(started.id, "hook") });
    // GETs (the GitHub and Drive look-ups) carry none: they change nothing.
    expect(service.deliveries.filter((d) => d.method === "GET").every((d) => d.key === undefined)).toBe(true);
    // SMTP: the key as Message-ID, so a repeat is the same message.
    expect(await mail.messageId).toBe(`<${keyOf(started.id, "mail")}@example.test>`);
  });
});

/** An SMTP server that hands over the first message's Message-ID. */
async function smtpCatcher() {
  let resolve: (id: string) => void = () => undefined;
  const messageId = new Promise<string>((r) => {
    resolve = r;
  });
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    onData(stream, _session, callback) {
      simpleParser(stream).then((parsed) => {
        resolve(parsed.messageId ?? "");
        callback();
      }, callback);
    },
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.server.address() as AddressInfo).port, messageId };
}
