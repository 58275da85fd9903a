// Executions: run now, per-step status, output, logs and timing; retries with backoff;
// failures, timeouts and cancels; a concurrency limit per organization; and a run whose
// worker was killed is taken up again, never left running.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { startFakeServices } from "./helpers/fakeServices.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { startMailCatcher } from "./helpers/mail.ts";
import { spawnServer } from "./helpers/process.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

let server: TestServer;
let fake: Awaited<ReturnType<typeof startFakeServices>>;
let isolated: Awaited<ReturnType<typeof isolatedServices>>;
beforeAll(async () => {
  fake = await startFakeServices();
  isolated = await isolatedServices("executions");
  server = await startServer({
    ...isolated.env,
    CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*",
    EXECUTION_HEARTBEAT_MS: "100",
    EXECUTION_POLL_MS: "100",
  });
});
afterAll(async () => {
  await server.stop();
  await fake.close();
  await isolated.cleanup();
});

interface Execution {
  id: string;
  status: string;
  attempt: number;
  error: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  steps: {
    key: string;
    status: string;
    attempts: number;
    output: unknown;
    logs: string[];
    error: string | null;
    durationMs: number | null;
  }[];
}
const EXECUTION =
  "id status attempt error startedAt finishedAt steps { key status attempts output logs error durationMs }";
const DONE = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];

async function workflow(url: string, user: TestUser, steps: unknown[], extra: Record<string, unknown> = {}) {
  const r = await gql<{ workflowCreate: { id: string } }>(
    url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { organizationId: user.org.id, name: "w", definition: { steps, ...extra } } },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

async function run(url: string, user: TestUser, workflowId: string) {
  const r = await gql<{ workflowRun: Execution }>(url, `mutation($id: ID!) { workflowRun(id: $id) { ${EXECUTION} } }`, {
    token: user.token,
    variables: { id: workflowId },
  });
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowRun;
}

async function read(url: string, user: TestUser, id: string) {
  const r = await gql<{ node: Execution }>(
    url,
    `query($id: ID!) { node(id: $id) { ... on Execution { ${EXECUTION} } } }`,
    {
      token: user.token,
      variables: { id },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node;
}

const finished = (url: string, user: TestUser, id: string) =>
  until(
    () => read(url, user, id),
    (e) => DONE.includes(e.status),
  );

describe("executions", () => {
  it("runs steps in order off the request path, passing outputs along", async () => {
    const user = await createUser(server.graphqlUrl);
    const hook = await gql<{ integrationCreate: { id: string } }>(
      server.graphqlUrl,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
      {
        token: user.token,
        variables: {
          input: {
            organizationId: user.org.id,
            connector: "http",
            name: "hook",
            config: { baseUrl: fake.url },
            secrets: {},
          },
        },
      },
    );
    const id = await workflow(server.graphqlUrl, user, [
      { id: "fetch", type: "http_request", method: "GET", url: `${fake.url}/ping` },
      { id: "check", type: "condition", path: "steps.fetch.output.body.pong", operator: "eq", value: true },
      { id: "shape", type: "transform", template: { message: "pong was {{steps.fetch.output.body.pong}}" } },
      {
        id: "send",
        type: "webhook",
        integrationId: hook.data?.integrationCreate.id,
        path: "/hook",
        body: "{{steps.shape.output}}",
      },
    ]);
    const queued = await run(server.graphqlUrl, user, id);
    expect(["QUEUED", "RUNNING"]).toContain(queued.status);
    const from = fake.requests.length;
    const done = await finished(server.graphqlUrl, user, queued.id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.steps.map((s) => [s.key, s.status, s.attempts])).toEqual([
      ["fetch", "SUCCEEDED", 1],
      ["check", "SUCCEEDED", 1],
      ["shape", "SUCCEEDED", 1],
      ["send", "SUCCEEDED", 1],
    ]);
    expect(done.steps[2]?.output).toEqual({ message: "pong was true" });
    expect(done.steps.every((s) => typeof s.durationMs === "number")).toBe(true);
    const sent = fake.since(from).find((r) => r.path === "/hook");
    expect(JSON.parse(sent?.body ?? "")).toEqual({ message: "pong was true" });
  });

  it("skips the rest after a false condition, and the run succeeds", async () => {
    const user = await createUser(server.graphqlUrl);
    const id = await workflow(server.graphqlUrl, user, [
      { id: "shape", type: "transform", template: { n: 3 } },
      { id: "big", type: "condition", path: "steps.shape.output.n", operator: "gt", value: 5 },
      { id: "never", type: "http_request", method: "GET", url: `${fake.url}/ping` },
    ]);
    const done = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, id)).id);
    expect(done.status).toBe("SUCCEEDED");
    expect(done.steps.map((s) => s.status)).toEqual(["SUCCEEDED", "SUCCEEDED", "SKIPPED"]);
  });

  it("retries a step with backoff, and fails a run whose step keeps failing", async () => {
    const user = await createUser(server.graphqlUrl);
    const key = `k${Date.now()}`;
    const flaky = await workflow(server.graphqlUrl, user, [
      {
        id: "flaky",
        type: "http_request",
        method: "GET",
        url: `${fake.url}/flaky/${key}`,
        retry: { maxAttempts: 3, backoffMs: 10 },
      },
    ]);
    const ok = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, flaky)).id);
    expect(ok.status).toBe("SUCCEEDED");
    expect(ok.steps[0]).toMatchObject({ attempts: 3, output: { status: 200, body: { ok: true, attempt: 3 } } });
    expect(ok.steps[0]?.logs.filter((l) => l.includes("retrying"))).toEqual([
      "[attempt 1] retrying in 10 ms",
      "[attempt 2] retrying in 20 ms",
    ]);

    const broken = await workflow(server.graphqlUrl, user, [
      {
        id: "missing",
        type: "http_request",
        method: "GET",
        url: `${fake.url}/nowhere`,
        retry: { maxAttempts: 2, backoffMs: 5 },
      },
      { id: "after", type: "delay", ms: 1 },
    ]);
    const failed = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, broken)).id);
    expect(failed.status).toBe("FAILED");
    expect(failed.error).toMatch(/Step "missing" failed: 127\.0\.0\.1:\d+ answered 404/);
    expect(failed.steps.map((s) => [s.status, s.attempts])).toEqual([
      ["FAILED", 2],
      ["SKIPPED", 0],
    ]);
  });

  it("times out a step, and a whole run", async () => {
    const user = await createUser(server.graphqlUrl);
    const slowStep = await workflow(server.graphqlUrl, user, [
      { id: "slow", type: "delay", ms: 60_000, timeoutMs: 200 },
    ]);
    const a = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, slowStep)).id);
    expect(a.status).toBe("FAILED");
    expect(a.steps[0]?.logs.join("\n")).toContain("STEP_TIMEOUT");
    const slowRun = await workflow(server.graphqlUrl, user, [{ id: "slow", type: "delay", ms: 60_000 }], {
      timeoutMs: 1_000,
    });
    const b = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, slowRun)).id);
    expect(b.status).toBe("TIMED_OUT");
    expect(b.steps[0]?.status).toBe("TIMED_OUT");
  });

  it("cancels a running run, and runs one at a time within the organization's limit", async () => {
    const user = await createUser(server.graphqlUrl);
    const limited = await gql(
      server.graphqlUrl,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { maxConcurrentExecutions } }",
      { token: user.token, variables: { input: { id: user.org.id, maxConcurrentExecutions: 1 } } },
    );
    expect(limited.data).toEqual({ organizationUpdate: { maxConcurrentExecutions: 1 } });
    const long = await workflow(server.graphqlUrl, user, [{ id: "long", type: "delay", ms: 60_000 }]);
    const first = await run(server.graphqlUrl, user, long);
    const second = await run(server.graphqlUrl, user, long);
    await until(
      () => read(server.graphqlUrl, user, first.id),
      (e) => e.status === "RUNNING",
    );
    // The limit is one: the second waits while the first runs.
    expect((await read(server.graphqlUrl, user, second.id)).status).toBe("QUEUED");
    const cancel = (id: string) =>
      gql<{ executionCancel: { id: string } }>(
        server.graphqlUrl,
        "mutation($id: ID!) { executionCancel(id: $id) { id } }",
        {
          token: user.token,
          variables: { id },
        },
      );
    await cancel(first.id);
    const a = await finished(server.graphqlUrl, user, first.id);
    expect(a.status).toBe("CANCELLED");
    const b = await until(
      () => read(server.graphqlUrl, user, second.id),
      (e) => e.status === "RUNNING",
    );
    expect(Date.parse(b.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(a.finishedAt ?? ""));
    await cancel(second.id);
    expect((await finished(server.graphqlUrl, user, second.id)).status).toBe("CANCELLED");
    expect(errorCode(await cancel(second.id))).toBe("EXECUTION_FINISHED");
    const mallory = await createUser(server.graphqlUrl);
    const theirs = await gql(server.graphqlUrl, "mutation($id: ID!) { workflowRun(id: $id) { id } }", {
      token: mallory.token,
      variables: { id: long },
    });
    expect(errorCode(theirs)).toBe("NOT_FOUND");
  });
});

describe("a worker killed mid-run", () => {
  it("leaves no execution running: another instance runs it again", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-worker-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    // Its own database: only these two processes may take up the run.
    const own = await isolatedServices("killed");
    onTestFinished(() => own.cleanup());
    const env = {
      ...own.env,
      DATA_DIR: dataDir,
      EXECUTION_HEARTBEAT_MS: "100",
      EXECUTION_POLL_MS: "100",
      EXECUTION_STALE_MS: "1000",
    };
    const first = await spawnServer(env);
    onTestFinished(() => first.kill("SIGKILL").then(() => undefined));
    const user = await createUser(first.graphqlUrl);
    const id = await workflow(first.graphqlUrl, user, [{ id: "work", type: "delay", ms: 1_500 }]);
    const execution = await run(first.graphqlUrl, user, id);
    await until(
      () => read(first.graphqlUrl, user, execution.id),
      (e) => e.status === "RUNNING",
    );
    expect(await first.kill("SIGKILL")).toBe(null);

    const second = await spawnServer(env);
    onTestFinished(() => second.kill("SIGKILL").then(() => undefined));
    const done = await finished(second.graphqlUrl, user, execution.id);
    expect(done).toMatchObject({ status: "SUCCEEDED", attempt: 2 });
    expect(await second.kill("SIGTERM")).toBe(0);
  });
});

describe("connector steps", () => {
  it("calls each service's real API from a run: method, path, auth header and body", async () => {
    const mail = await startMailCatcher();
    onTestFinished(() => mail.close());
    const user = await createUser(server.graphqlUrl);
    const integration = async (connector: string, config: unknown, secrets: unknown) => {
      const r = await gql<{ integrationCreate: { id: string } }>(
        server.graphqlUrl,
        "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
        {
          token: user.token,
          variables: { input: { organizationId: user.org.id, connector, name: connector, config, secrets } },
        },
      );
      if (!r.data) throw new Error(JSON.stringify(r.errors));
      return r.data.integrationCreate.id;
    };
    const github = await integration(
      "github",
      { baseUrl: fake.url, owner: "acme", repository: "reports" },
      { accessToken: "gh-1" },
    );
    const drive = await integration("google_drive", { baseUrl: fake.url, folderId: "F1" }, { accessToken: "gd-1" });
    const dropbox = await integration(
      "dropbox",
      { apiBaseUrl: fake.url, contentBaseUrl: fake.url },
      { accessToken: "db-1" },
    );
    const s3 = await integration(
      "s3",
      { endpoint: fake.url, region: "eu-west-1", bucket: "bucket-1" },
      { accessKeyId: "AK", secretAccessKey: "SK" },
    );
    const slack = await integration("slack", {}, { webhookUrl: `${fake.url}/slack/hook` });
    const smtp = await integration(
      "smtp",
      { host: "127.0.0.1", port: Number(new URL(mail.url).port), fromEmail: "floyo@example.test" },
      {},
    );
    const id = await workflow(server.graphqlUrl, user, [
      {
        id: "commit",
        type: "connector",
        connector: "github",
        integrationId: github,
        action: "putFile",
        input: { path: "daily/report.md", content: "# Report", message: "Daily report" },
      },
      {
        id: "drive",
        type: "connector",
        connector: "google_drive",
        integrationId: drive,
        action: "uploadFile",
        input: { name: "report.md", content: "# Report", mimeType: "text/markdown" },
      },
      {
        id: "box",
        type: "connector",
        connector: "dropbox",
        integrationId: dropbox,
        action: "uploadFile",
        input: { name: "report.md", content: "# Report" },
      },
      {
        id: "archive",
        type: "s3_put",
        integrationId: s3,
        key: "reports/today.md",
        body: "# Report",
        contentType: "text/markdown",
      },
      { id: "tell", type: "slack_message", integrationId: slack, text: "Report is out" },
      {
        id: "mail",
        type: "email",
        integrationId: smtp,
        to: ["boss@example.test"],
        subject: "Daily report",
        text: "Attached in spirit.",
      },
    ]);
    const from = fake.requests.length;
    const result = await finished(server.graphqlUrl, user, (await run(server.graphqlUrl, user, id)).id);
    expect(result.status, JSON.stringify(result.steps.map((s) => s.error))).toBe("SUCCEEDED");
    const sent = fake.since(from);
    const find = (method: string, path: string | RegExp) =>
      sent.find((r) => r.method === method && (typeof path === "string" ? r.path === path : path.test(r.path)));

    const put = find("PUT", "/repos/acme/reports/contents/daily/report.md");
    expect(put?.headers.authorization).toBe("Bearer gh-1");
    expect(JSON.parse(put?.body ?? "")).toEqual({
      message: "Daily report",
      content: Buffer.from("# Report").toString("base64"),
    });

    const upload = find("POST", "/upload/drive/v3/files?uploadType=multipart");
    expect(upload?.headers.authorization).toBe("Bearer gd-1");
    expect(upload?.headers["content-type"]).toMatch(/^multipart\/related; boundary=/);
    expect(upload?.body).toContain('"name":"report.md","parents":["F1"]');
    expect(upload?.body).toContain("# Report");

    const box = find("POST", "/2/files/upload");
    expect(box?.headers.authorization).toBe("Bearer db-1");
    expect(JSON.parse(String(box?.headers["dropbox-api-arg"]))).toEqual({
      path: "/Floyo/report.md",
      mode: "overwrite",
      autorename: false,
    });
    expect(box?.body).toBe("# Report");

    const object = find("PUT", "/bucket-1/reports/today.md");
    expect(object?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AK\/\d{8}\/eu-west-1\/s3\/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    expect(object?.body).toBe("# Report");

    expect(JSON.parse(find("POST", "/slack/hook")?.body ?? "")).toEqual({ text: "Report is out" });
    const message = await mail.next("boss@example.test", /Daily report/);
    expect(message.text.trim()).toBe("Attached in spirit.");
  });
});
