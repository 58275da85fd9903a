// Hostile use of connectors and runs (issue 11): inherited names as connector actions, services
// that echo credentials back, events made to look like someone else's, schedules deleted by
// members, and connector targets that reach inside by name, by port or by address.
import { randomUUID } from "node:crypto";
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { isInternal } from "../src/features/connectors/allowList.ts";
import { pinnedLookup } from "../src/features/connectors/connectorHttp.ts";
import { addMember, createOrg, errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { startFakeServices } from "./helpers/fakeServices.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { startServer, type TestServer, testEnv } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

/** Any port on 127.0.0.1, named by address: how the local stand-ins are allowed. */
const LOCAL = "127.0.0.1:*";

let fake: Awaited<ReturnType<typeof startFakeServices>>;
let mail: MailCatcher;
let server: TestServer;
let url: string;
// Runs must be executed by this suite's servers, with their allow-lists, never by another
// suite's server sharing the run's database: a database of its own in the services mode.
let isolated: Awaited<ReturnType<typeof isolatedServices>>;
beforeAll(async () => {
  fake = await startFakeServices();
  mail = await startMailCatcher();
  isolated = await isolatedServices("hostile_connectors");
  server = await startServer({
    ...isolated.env,
    SMTP_URL: mail.url,
    CONNECTOR_ALLOWED_HOSTS: `${LOCAL},localhost:${fake.port},*.amazonaws.com`,
    CONNECTOR_TIMEOUT_MS: "2000",
    EXECUTION_POLL_MS: "100",
  });
  url = server.graphqlUrl;
});
afterAll(async () => {
  await server.stop();
  await fake.close();
  await mail.close();
  await isolated.cleanup();
});

const SLACK_URL = `/slack/hook/T0001/B0002/${"slack-secret-".padEnd(30, "x")}`;
const HTTP_TOKEN = "tok-0123456789-abcdef";
const S3_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const S3_KEY_ID = "AKIAHOSTILE0001";
const GITHUB_TOKEN = "ghp_hostile0123456789";

async function integration(user: TestUser, connector: string, config: unknown, secrets: unknown, name = connector) {
  const r = await gql<{ integrationCreate: { id: string } }>(
    url,
    "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
    { token: user.token, variables: { input: { organizationId: user.org.id, connector, name, config, secrets } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.integrationCreate.id;
}

async function integrationTest(user: TestUser, id: string) {
  const r = await gql<{ integrationTest: { ok: boolean; code: string | null; message: string } }>(
    url,
    "mutation($id: ID!) { integrationTest(id: $id) { ok code message } }",
    { token: user.token, variables: { id } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.integrationTest;
}

function createWorkflow(user: TestUser, steps: unknown[], status = "DRAFT") {
  return gql<{ workflowCreate: { id: string } }>(
    url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { organizationId: user.org.id, name: "w", status, definition: { steps } } },
    },
  );
}

async function workflow(user: TestUser, steps: unknown[], status = "DRAFT") {
  const r = await createWorkflow(user, steps, status);
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

function updateWorkflow(user: TestUser, id: string, steps: unknown[]) {
  return gql<{ workflowUpdate: { currentVersion: number } }>(
    url,
    "mutation($input: WorkflowUpdateInput!) { workflowUpdate(input: $input) { currentVersion } }",
    { token: user.token, variables: { input: { id, definition: { steps } } } },
  );
}

interface Execution {
  id: string;
  status: string;
  trigger: string;
  error: string | null;
  version: { number: number } | null;
  steps: { key: string; status: string; output: unknown; logs: string[]; error: string | null }[];
}
const EXECUTION = "id status trigger error version { number } steps { key status output logs error }";
const DONE = ["SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"];

async function run(user: TestUser, workflowId: string) {
  const r = await gql<{ workflowRun: Execution }>(url, `mutation($id: ID!) { workflowRun(id: $id) { ${EXECUTION} } }`, {
    token: user.token,
    variables: { id: workflowId },
  });
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowRun;
}

async function read(user: TestUser, id: string) {
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

const finished = (user: TestUser, id: string) =>
  until(
    () => read(user, id),
    (e) => DONE.includes(e.status),
  );

async function executions(user: TestUser, workflowId: string) {
  const r = await gql<{ node: { executions: { edges: { node: Execution }[] } } }>(
    url,
    `query($id: ID!) { node(id: $id) { ... on Workflow { executions(first: 50) { edges { node { ${EXECUTION} } } } } } }`,
    { token: user.token, variables: { id: workflowId } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.executions.edges.map((e) => e.node);
}

async function schedule(user: TestUser, workflowId: string) {
  const r = await gql<{ scheduleCreate: { id: string } }>(
    url,
    "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }",
    { token: user.token, variables: { input: { workflowId, intervalSeconds: 1 } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.scheduleCreate.id;
}

const scheduleDelete = (user: TestUser, id: string) =>
  gql<{ scheduleDelete: string }>(url, "mutation($id: ID!) { scheduleDelete(id: $id) }", {
    token: user.token,
    variables: { id },
  });

/** The row id inside a global id (step outputs name rows by their own ids). */
const rawId = (globalId: string) => Buffer.from(globalId, "base64").toString().split(":").pop() as string;

/** Every spelling of the test's secrets that must not be readable anywhere in a run. */
function leaks(text: string): string[] {
  const secrets = [`${fake.url}${SLACK_URL}`, SLACK_URL, HTTP_TOKEN, S3_SECRET, S3_KEY_ID, GITHUB_TOKEN];
  const forms = secrets.flatMap((s) => [
    s,
    encodeURIComponent(s),
    Buffer.from(s).toString("base64"),
    Buffer.from(s).toString("base64url"),
  ]);
  return forms.filter((f) => text.includes(f));
}

/** An organization with a member, a viewer and one integration of each kind that holds a secret. */
async function team() {
  const founder = await createUser(url);
  const owner = { ...founder, org: await createOrg(url, founder.token, "Hostile Co") };
  const member = await addMember(url, mail, owner.token, owner.org.id, "MEMBER");
  const viewer = await addMember(url, mail, owner.token, owner.org.id, "VIEWER");
  const ids = {
    slack: await integration(owner, "slack", {}, { webhookUrl: `${fake.url}${SLACK_URL}` }),
    s3: await integration(
      owner,
      "s3",
      { endpoint: fake.url, region: "eu-west-1", bucket: "bucket-1" },
      { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
    ),
    http: await integration(owner, "http", { baseUrl: fake.url }, { authorization: `Bearer ${HTTP_TOKEN}` }),
    github: await integration(
      owner,
      "github",
      { baseUrl: fake.url, owner: "acme", repository: "reports" },
      { accessToken: GITHUB_TOKEN },
    ),
  };
  return { owner, member: { ...member, org: owner.org }, viewer: { ...viewer, org: owner.org }, ids };
}

describe("finding 1: secrets out of step outputs", () => {
  it("refuses inherited names as connector actions when a workflow is saved", async () => {
    const { member, ids } = await team();
    const hostile = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"];
    for (const [connector, id] of [
      ["slack", ids.slack],
      ["s3", ids.s3],
      ["http", ids.http],
    ] as const) {
      for (const action of hostile) {
        const step = { id: "leak", type: "connector", connector, integrationId: id, action, input: { x: 1 } };
        const r = await createWorkflow(member, [step]);
        expect(errorCode(r), `${connector}.${action}`).toBe("BAD_USER_INPUT");
        expect(fieldErrorPaths(r)).toContain("definition.steps.0.action");
      }
    }
    // What jsonb cannot hold, or nesting no definition needs, is a field error, not a 500.
    let tooDeep: unknown = {};
    for (let i = 0; i < 40; i++) tooDeep = { d: tooDeep };
    for (const template of [{ lone: "\ud800" }, { "\udc00": 1 }, { nul: "a\u0000b" }, tooDeep]) {
      const r = await createWorkflow(member, [{ id: "t", type: "transform", template }]);
      expect(errorCode(r), JSON.stringify(template).slice(0, 40)).toBe("BAD_USER_INPUT");
      expect(fieldErrorPaths(r)[0]).toMatch(/definition\.steps\.0\.template/);
    }
    // Another connector's action is no action of this one either.
    const wrong = await createWorkflow(member, [
      { id: "x", type: "connector", connector: "slack", integrationId: ids.slack, action: "putObject", input: {} },
    ]);
    expect(fieldErrorPaths(wrong)).toContain("definition.steps.0.action");
    // Editing a valid workflow into a leaking one is refused the same way.
    const ok = await workflow(member, [
      { id: "post", type: "connector", connector: "slack", integrationId: ids.slack, action: "postMessage", input: {} },
    ]);
    const edit = await updateWorkflow(member, ok, [
      { id: "post", type: "connector", connector: "slack", integrationId: ids.slack, action: "constructor", input: {} },
    ]);
    expect(errorCode(edit)).toBe("BAD_USER_INPUT");
  });

  it("refuses them again at run time, in a stored definition that skipped the check", async () => {
    const { owner, member, viewer, ids } = await team();
    const id = await workflow(
      member,
      [
        {
          id: "post",
          type: "connector",
          connector: "slack",
          integrationId: ids.slack,
          action: "postMessage",
          input: {},
        },
      ],
      "ACTIVE",
    );
    // As if written before the check existed: straight into the stored workflow and version.
    const prisma = server.app.runtime.db.prisma;
    const raw = rawId(id);
    const row = await prisma.workflow.findUniqueOrThrow({ where: { id: raw } });
    const definition = JSON.parse(JSON.stringify(row.definition).replace('"postMessage"', '"constructor"'));
    await prisma.workflow.update({ where: { id: raw }, data: { definition } });
    await prisma.workflowVersion.updateMany({ where: { workflowId: raw }, data: { definition } });
    // Run now checks the definition first.
    const now = await gql(url, "mutation($id: ID!) { workflowRun(id: $id) { id } }", {
      token: member.token,
      variables: { id },
    });
    expect(errorCode(now)).toBe("BAD_USER_INPUT");
    // A schedule enqueues without that check: the step itself refuses.
    const scheduleId = await schedule(member, id);
    const [first] = await until(
      () => executions(viewer, id),
      (runs) => runs.some((r) => DONE.includes(r.status)),
    );
    await scheduleDelete(owner, scheduleId);
    const done = await finished(viewer, (first as Execution).id);
    expect(done.status).toBe("FAILED");
    expect(done.steps[0]?.output).toBeNull();
    expect(done.steps[0]?.error).toMatch(/no action "constructor"/);
    expect(leaks(JSON.stringify(done))).toEqual([]);
  });

  it("scrubs secrets and echoed credentials from outputs, logs and errors before they are stored", async () => {
    const { owner, member, viewer, ids } = await team();
    const big = `${"x".repeat(100_000)}${HTTP_TOKEN}`;
    let deep: unknown = { token: GITHUB_TOKEN };
    for (let i = 0; i < 20; i++) deep = { d: deep };
    const id = await workflow(member, [
      // The http integration's Authorization header, reflected as JSON and as text.
      { id: "json", type: "webhook", integrationId: ids.http, path: "/echo", body: { hello: "world" } },
      { id: "text", type: "webhook", integrationId: ids.http, path: "/echo-text", body: {} },
      // Credential-shaped headers of the step's own, reflected: not integration secrets, still credentials.
      {
        id: "headers",
        type: "http_request",
        method: "GET",
        url: `${fake.url}/echo`,
        headers: { "x-api-key": "k-live-998877", cookie: "session=abc123def", "proxy-authorization": "Basic Zm9v" },
      },
      // Any integration's secret, in any step, in the spellings a service might use.
      {
        id: "forms",
        type: "transform",
        template: {
          raw: `s3 ${S3_SECRET} gh ${GITHUB_TOKEN}`,
          base64: Buffer.from(S3_SECRET).toString("base64"),
          basic: Buffer.from(`user:${GITHUB_TOKEN}`).toString("base64"),
          url: encodeURIComponent(`${fake.url}${SLACK_URL}`),
          path: SLACK_URL,
          [GITHUB_TOKEN]: "as a key",
          big,
          deep,
        },
      },
      // A later step sees the scrubbed output, never the secret.
      { id: "later", type: "transform", template: { seen: "{{steps.json.output.body.headers.authorization}}" } },
      // And a failing call whose error body echoes the header.
      { id: "fail", type: "webhook", integrationId: ids.http, path: "/echo?status=401", body: {} },
    ]);
    const done = await finished(viewer, (await run(member, id)).id);
    expect(done.steps.map((s) => s.status)).toEqual([
      "SUCCEEDED",
      "SUCCEEDED",
      "SUCCEEDED",
      "SUCCEEDED",
      "SUCCEEDED",
      "FAILED",
    ]);
    const text = JSON.stringify(done);
    expect(leaks(text)).toEqual([]);
    for (const credential of ["k-live-998877", "session=abc123def", "Basic Zm9v"])
      expect(text).not.toContain(credential);
    const [json, , headers, forms, later, fail] = done.steps;
    expect(json?.output).toMatchObject({ status: 200, body: { headers: { authorization: "[redacted]" } } });
    expect(headers?.output).toMatchObject({ body: { headers: { "x-api-key": "[redacted]", cookie: "[redacted]" } } });
    expect(forms?.output).toMatchObject({ raw: "s3 [redacted] gh [redacted]", url: "[redacted]", path: "[redacted]" });
    expect(later?.output).toEqual({ seen: "[redacted]" });
    expect(fail?.error).toMatch(/answered 401/);
    expect(done.error).not.toContain(HTTP_TOKEN);
    // A service answering what jsonb refuses: stored as U+FFFD, not a run that crashed on its write.
    const odd = await workflow(member, [
      { id: "odd", type: "http_request", method: "GET", url: `${fake.url}/unstorable` },
      // Placeholders reach own properties only: no Object members through a template.
      {
        id: "proto",
        type: "transform",
        template: {
          a: "{{steps.constructor}}",
          b: "x{{steps.odd.output.constructor.name}}y",
          c: "{{steps.__proto__.toString}}",
          d: "{{steps.odd.output.body.lone}}",
        },
      },
    ]);
    const oddRun = await finished(viewer, (await run(member, odd)).id);
    expect(oddRun.steps[0]?.output).toEqual({ status: 200, body: { lone: "\ufffd", nul: "a\ufffdb" } });
    expect(oddRun.steps[1]?.output).toEqual({ a: null, b: "xy", c: null, d: "\ufffd" });
    // What an integration test records is scrubbed the same way.
    const echo = await integration(
      owner,
      "http",
      { baseUrl: fake.url, testPath: "/echo?status=401" },
      { authorization: `Bearer ${HTTP_TOKEN}` },
      "echo",
    );
    const tested = await integrationTest(owner, echo);
    expect(tested).toMatchObject({ ok: false, code: "CONNECTOR_HTTP_ERROR" });
    expect(tested.message).toContain("[redacted]");
    expect(leaks(tested.message)).toEqual([]);
  });
});

describe("finding 5: whose events a run records, and who deletes schedules", () => {
  const emit = [{ id: "emit", type: "emit_event", event: { kind: "CUSTOM", customType: "report_sent" } }];

  async function eventUser(user: TestUser, eventId: string) {
    const r = await gql<{ node: { user: { id: string } | null; details: Record<string, unknown> } | null }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Event { user { id } details } } }",
      { token: user.token, variables: { id: Buffer.from(`Event:${eventId}`).toString("base64") } },
    );
    return r.data?.node;
  }

  it("records a scheduled run's event as the version's author, not the workflow's owner", async () => {
    const { owner, member } = await team();
    const id = await workflow(owner, [{ id: "t", type: "transform", template: { ok: true } }], "ACTIVE");
    const scheduleId = await schedule(owner, id);
    // The member rewrites the owner's scheduled workflow to record events.
    expect((await updateWorkflow(member, id, emit)).data?.workflowUpdate.currentVersion).toBe(2);
    const runs = await until(
      () => executions(owner, id),
      (rs) => rs.some((r) => r.version?.number === 2 && DONE.includes(r.status)),
    );
    const scheduled = runs.find((r) => r.version?.number === 2 && DONE.includes(r.status)) as Execution;
    expect(scheduled).toMatchObject({ trigger: "SCHEDULE", status: "SUCCEEDED" });
    const output = scheduled.steps[0]?.output as { eventId: string; userId: string; recordedAs: string };
    expect(output).toMatchObject({ userId: rawId(member.user.id), recordedAs: "AUTHORED_THE_VERSION" });
    const event = await eventUser(owner, output.eventId);
    expect(event?.user?.id).toBe(member.user.id);
    expect(event?.details.workflowRun).toMatchObject({ version: 2, trigger: "SCHEDULE" });

    // A manual run's events are the person who started it.
    const manual = await finished(owner, (await run(owner, id)).id);
    const mine = manual.steps[0]?.output as { eventId: string; recordedAs: string };
    expect(mine.recordedAs).toBe("STARTED_THE_RUN");
    expect((await eventUser(owner, mine.eventId))?.user?.id).toBe(owner.user.id);

    // The author removed: the schedule's events are nobody's, never the owner's.
    const removed = await gql(url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(removed.errors).toBeUndefined();
    const after = await until(
      () => executions(owner, id),
      (rs) => rs.some((r) => r.trigger === "SCHEDULE" && r.status === "FAILED"),
    );
    const refused = after.find((r) => r.trigger === "SCHEDULE" && r.status === "FAILED") as Execution;
    expect(refused.steps[0]?.error).toMatch(/may not record events/);
    expect((await scheduleDelete(owner, scheduleId)).errors).toBeUndefined();
  });

  it("lets owners and admins delete schedules, not members, viewers or other organizations", async () => {
    const { owner, member, viewer } = await team();
    const admin = await addMember(url, mail, owner.token, owner.org.id, "ADMIN");
    const outsider = await createUser(url);
    const id = await workflow(owner, [{ id: "t", type: "transform", template: {} }]);
    const scheduleId = await schedule(member, id);
    expect(errorCode(await scheduleDelete(member, scheduleId))).toBe("FORBIDDEN");
    expect(errorCode(await scheduleDelete(viewer, scheduleId))).toBe("FORBIDDEN");
    expect(errorCode(await scheduleDelete(outsider, scheduleId))).toBe("NOT_FOUND");
    // A member may still pause it.
    const paused = await gql(
      url,
      "mutation($input: ScheduleUpdateInput!) { scheduleUpdate(input: $input) { isPaused } }",
      {
        token: member.token,
        variables: { input: { id: scheduleId, isPaused: true } },
      },
    );
    expect(paused.errors).toBeUndefined();
    expect((await scheduleDelete(admin, scheduleId)).data?.scheduleDelete).toBe(scheduleId);
    expect(errorCode(await scheduleDelete(owner, scheduleId))).toBe("NOT_FOUND");
  });
});

describe("finding 9: connector targets by address and port", () => {
  it("refuses a name that resolves inside, even one the allow-list names", async () => {
    const owner = await createUser(url);
    const byName = await integration(
      owner,
      "http",
      { baseUrl: `http://localhost:${fake.port}`, testPath: "/ping" },
      {},
    );
    expect(await integrationTest(owner, byName)).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
    // Another spelling of an internal address that no entry names.
    for (const host of ["[::1]", "0.0.0.0", "[::ffff:a00:1]", "169.254.169.254"]) {
      const id = await integration(
        owner,
        "http",
        { baseUrl: `http://${host}:${fake.port}`, testPath: "/ping" },
        {},
        host,
      );
      expect(await integrationTest(owner, id), host).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
    }
    // The address the allow-list names is reached, in any of its spellings.
    for (const host of ["127.0.0.1", "2130706433", "[::ffff:127.0.0.1]"]) {
      const id = await integration(
        owner,
        "http",
        { baseUrl: `http://${host}:${fake.port}`, testPath: "/ping" },
        {},
        `ok ${host}`,
      );
      expect(await integrationTest(owner, id), host).toMatchObject({ ok: true });
    }
  });

  it("allows only the usual ports for an entry without one (S3 and SMTP included)", async () => {
    const owner = await createUser(url);
    const s3 = await integration(
      owner,
      "s3",
      { endpoint: "https://bucket-1.s3.amazonaws.com:6379", region: "eu-west-1", bucket: "bucket-1" },
      { accessKeyId: "a", secretAccessKey: "b" },
    );
    expect(await integrationTest(owner, s3)).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
    const smtp = await integration(
      owner,
      "smtp",
      { host: "email-smtp.eu-west-1.amazonaws.com", port: 6379, fromEmail: "floyo@example.test" },
      {},
    );
    expect(await integrationTest(owner, smtp)).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
    const wf = await workflow(owner, [
      { id: "r", type: "http_request", method: "GET", url: "https://x.s3.amazonaws.com:22/" },
    ]);
    const done = await finished(owner, (await run(owner, wf)).id);
    expect(done.steps[0]?.error).toMatch(/not in CONNECTOR_ALLOWED_HOSTS/);
  });

  it("refuses malformed allow-list entries at start, without echoing them", () => {
    for (const bad of ["http://x.example", "*", "host:99999", "a b", "user:pw@host"]) {
      expect(() => loadConfig(testEnv({ CONNECTOR_ALLOWED_HOSTS: `api.github.com,${bad}` })), bad).toThrowError(
        /CONNECTOR_ALLOWED_HOSTS: entry 2 is not/,
      );
    }
  });
});

describe("finding 9: an entry without a port", () => {
  let own: TestServer;
  let ownServices: Awaited<ReturnType<typeof isolatedServices>>;
  beforeAll(async () => {
    ownServices = await isolatedServices("hostile_connectors_port");
    own = await startServer({ ...ownServices.env, CONNECTOR_ALLOWED_HOSTS: "127.0.0.1", CONNECTOR_TIMEOUT_MS: "2000" });
  });
  afterAll(async () => {
    await own.stop();
    await ownServices.cleanup();
  });

  it("allows 80 and 443 only, not any port", async () => {
    const owner = await createUser(own.graphqlUrl);
    const r = await gql<{ integrationCreate: { id: string } }>(
      own.graphqlUrl,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
      {
        token: owner.token,
        variables: {
          input: {
            organizationId: owner.org.id,
            connector: "http",
            name: "h",
            config: { baseUrl: fake.url, testPath: "/ping" },
          },
        },
      },
    );
    const t = await gql<{ integrationTest: { ok: boolean; code: string } }>(
      own.graphqlUrl,
      "mutation($id: ID!) { integrationTest(id: $id) { ok code } }",
      { token: owner.token, variables: { id: r.data?.integrationCreate.id } },
    );
    expect(t.data?.integrationTest).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
  });
});

describe("finding 12: service text is scrubbed whole, then cut", () => {
  // Base64-ish on purpose: "/", "+" and "=" are what URL and JSON spellings change.
  const SECRET = "Bearer Zq7/wK+9pL2mN4xR8tV1yB3cD5fG6hJ0==";
  const TOKEN = SECRET.slice("Bearer ".length);

  /** Every piece of the secret, 4 characters or longer, that text holds. */
  function fragments(text: string): string[] {
    const found = new Set<string>();
    for (let i = 0; i + 4 <= SECRET.length; i++) {
      for (let end = i + 4; end <= SECRET.length; end++) {
        const piece = SECRET.slice(i, end);
        if (text.includes(piece)) found.add(piece);
      }
    }
    return [...found];
  }

  async function leakyTeam() {
    const t = await team();
    const leaky = await integration(
      t.owner,
      "http",
      { baseUrl: fake.url, testPath: "/" },
      { authorization: SECRET },
      "leaky",
    );
    return { ...t, leaky };
  }

  /** One run per path of a failing webhook step, queued one by one; each read back as a viewer. */
  async function failedRuns(t: Awaited<ReturnType<typeof leakyTeam>>, paths: string[]) {
    const started: string[] = [];
    for (const path of paths) {
      const id = await workflow(t.member, [{ id: "call", type: "webhook", integrationId: t.leaky, path, body: {} }]);
      started.push((await run(t.member, id)).id);
    }
    return Promise.all(started.map((id) => finished(t.viewer, id)));
  }

  /** The leaky integration tested against testPath: what the owner is told, and what a viewer reads after. */
  async function testAt(t: Awaited<ReturnType<typeof leakyTeam>>, testPath: string) {
    const updated = await gql(
      url,
      "mutation($input: IntegrationUpdateInput!) { integrationUpdate(input: $input) { id } }",
      { token: t.owner.token, variables: { input: { id: t.leaky, config: { baseUrl: fake.url, testPath } } } },
    );
    expect(updated.errors).toBeUndefined();
    const tested = await integrationTest(t.owner, t.leaky);
    const r = await gql<{ node: { lastError: string | null } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Integration { lastError } } }",
      { token: t.viewer.token, variables: { id: t.leaky } },
    );
    return { tested, stored: r.data?.node.lastError ?? "" };
  }

  it("leaves no piece of a reflected secret in a failed run, whatever the padding before it", async () => {
    const t = await leakyTeam();
    // The secret starts about 50 characters into the header list: with 100 to 160 characters of
    // padding before it, the old 200-character cut fell at every offset inside it. Every 10th
    // pad elsewhere, up to 250.
    const pads = Array.from({ length: 251 }, (_, n) => n).filter((n) => n % 10 === 0 || (n >= 100 && n <= 160));
    const runs = await failedRuns(
      t,
      pads.map((n) => `/err/${n}`),
    );
    for (const [n, done] of runs.entries()) {
      expect(done.status, `pad ${n}`).toBe("FAILED");
      expect(done.steps[0]?.error, `pad ${n}`).toMatch(/answered 400/);
      expect(fragments(JSON.stringify(done)), `pad ${n}`).toEqual([]);
    }
    expect(runs[0]?.steps[0]?.error).toContain('"authorization","[redacted]"');
  });

  it("leaves none in what an integration test records either", async () => {
    const t = await leakyTeam();
    for (let n = 0; n <= 250; n++) {
      const { tested, stored } = await testAt(t, `/err/${n}`);
      expect(tested.code, `pad ${n}`).toBe("CONNECTOR_HTTP_ERROR");
      expect(stored, `pad ${n}`).toMatch(/answered 400/);
      expect(fragments(`${tested.message}\n${stored}`), `pad ${n}`).toEqual([]);
    }
  });

  it("never ends a cut in the start of a secret, even one the service cut off itself", async () => {
    const t = await leakyTeam();
    const head = `127.0.0.1:${fake.port} answered 400: `;
    // The fragment ends past the cut and keeps j of its characters before it (the cut leaves
    // room for an ellipsis): for the 500 characters an integration test keeps, and the 2000 of a
    // step's error (a log line, 2000 too, cuts elsewhere in the same text).
    const around = (limit: number) =>
      Array.from(
        { length: SECRET.length - 1 },
        (_, j) => `/err/${limit - 1 - head.length - j}?prefix=${SECRET.length - 1}`,
      );
    for (const path of around(500)) {
      const { tested, stored } = await testAt(t, path);
      expect(tested.message.length, path).toBeLessThanOrEqual(500);
      expect(fragments(`${tested.message}\n${stored}`), path).toEqual([]);
    }
    for (const done of await failedRuns(t, around(2000))) {
      expect(done.steps[0]?.error?.length).toBeLessThanOrEqual(2000);
      expect(fragments(JSON.stringify(done))).toEqual([]);
    }
  });

  it("redacts a secret re-encoded by the service, and credential headers in list layouts", async () => {
    const t = await leakyTeam();
    const own = { "x-api-key": "k-live-998877", cookie: "session=abc123def", authorization: "Basic b3duOnBhc3M=" };
    const id = await workflow(t.member, [
      { id: "json", type: "webhook", integrationId: t.leaky, path: "/forms", body: {} },
      { id: "text", type: "webhook", integrationId: t.leaky, path: "/forms?as=text", body: {} },
      // Credentials of the step's own (no integration's secret): only their layout gives them away.
      { id: "own-json", type: "http_request", method: "GET", url: `${fake.url}/forms`, headers: own },
      { id: "own-text", type: "http_request", method: "GET", url: `${fake.url}/forms?as=text`, headers: own },
    ]);
    const done = await finished(t.viewer, (await run(t.member, id)).id);
    expect(done.steps.map((s) => [s.status, s.error])).toEqual(Array(4).fill(["SUCCEEDED", null]));
    const text = JSON.stringify(done);
    const spellings = [
      SECRET.toUpperCase(),
      encodeURIComponent(SECRET).toLowerCase(),
      encodeURIComponent(SECRET).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      encodeURIComponent(TOKEN),
      Buffer.from(SECRET).toString("hex"),
      Buffer.from(SECRET).toString("hex").toUpperCase(),
      Buffer.from(TOKEN).toString("hex"),
      Buffer.from(TOKEN).toString("base64"),
      Buffer.from(TOKEN).toString("base64url"),
    ];
    expect(spellings.filter((s) => text.toLowerCase().includes(s.toLowerCase()))).toEqual([]);
    expect(fragments(text)).toEqual([]);
    expect(Object.values(own).filter((v) => text.includes(v))).toEqual([]);
    const [json, , ownJson] = done.steps;
    expect(json?.output).toMatchObject({ status: 200, body: { upper: "[redacted]", tokenBase64url: "[redacted]" } });
    const { body } = (ownJson as Execution["steps"][number]).output as {
      body: { rawHeaders: string[]; har: { name: string; value: string }[] };
    };
    const at = body.rawHeaders.indexOf("x-api-key");
    expect(body.rawHeaders.slice(at, at + 2)).toEqual(["x-api-key", "[redacted]"]);
    expect(body.har.find((h) => h.name === "cookie")).toEqual({ name: "cookie", value: "[redacted]" });
    // What is not a credential is kept.
    expect(body.har.find((h) => h.name === "host")?.value).toBe(`127.0.0.1:${fake.port}`);
  });
});

describe("review: what a run stores when secrets change under it", () => {
  const update = (user: TestUser, input: unknown) =>
    gql(url, "mutation($input: IntegrationUpdateInput!) { integrationUpdate(input: $input) { id } }", {
      token: user.token,
      variables: { input },
    });
  const remove = (user: TestUser, id: string) =>
    gql(url, "mutation($id: ID!) { integrationDelete(id: $id) }", { token: user.token, variables: { id } });

  /** A step whose call is held by the service while `meanwhile` runs; the finished run, as a viewer reads it. */
  async function heldRun(change: (t: Awaited<ReturnType<typeof team>>, id: string) => Promise<unknown>) {
    const t = await team();
    const secret = `Bearer old-${randomUUID()}`;
    const id = await integration(t.owner, "http", { baseUrl: fake.url }, { authorization: secret }, "rotating");
    const path = `/held/${randomUUID()}`;
    const wf = await workflow(t.member, [{ id: "call", type: "webhook", integrationId: id, path, body: {} }]);
    const started = await run(t.member, wf);
    // The service has the request (and the old secret): the step is in flight.
    await fake.received((r) => r.path === path);
    await change(t, id);
    fake.release(path);
    return { secret, done: await finished(t.viewer, started.id) };
  }

  it("redacts a secret rotated while the step that sent it was in flight", async () => {
    const { secret, done } = await heldRun(async (t, id) => {
      const r = await update(t.owner, { id, secrets: { authorization: `Bearer new-${randomUUID()}` } });
      expect(r.errors).toBeUndefined();
    });
    expect(done.steps[0]?.status).toBe("SUCCEEDED");
    expect(done.steps[0]?.output).toMatchObject({ status: 200, body: { sent: "[redacted]" } });
    expect(JSON.stringify(done)).not.toContain(secret.slice("Bearer ".length));
  });

  it("and one deleted with its integration meanwhile", async () => {
    const { secret, done } = await heldRun(async (t, id) => {
      expect((await remove(t.owner, id)).errors).toBeUndefined();
    });
    expect(done.steps[0]?.output).toMatchObject({ body: { sent: "[redacted]" } });
    expect(JSON.stringify(done)).not.toContain(secret.slice("Bearer ".length));
  });

  it("keeps the ordinary words of a webhook URL, and never merges two keys into one", async () => {
    const { owner, member, viewer } = await team();
    const token = "XXXXXXXXXXXXXXXXXXXXXXXX";
    const hook = `${fake.url}/services/T0000/B0000/${token}`;
    await integration(owner, "slack", {}, { webhookUrl: hook }, "real slack");
    const wf = await workflow(member, [
      {
        id: "t",
        type: "transform",
        template: {
          services: "services and hooks",
          note: `posted to ${hook}`,
          token: `only ${token}`,
          // Two secrets as keys, and a key already spelled like a redaction: three values kept.
          [GITHUB_TOKEN]: "a",
          [HTTP_TOKEN]: "b",
          "[redacted]": "c",
          // The names the audit trail calls secret, now the scrubber's too.
          clientToken: "ct-1",
          passphrase: "pp-1",
        },
      },
    ]);
    const done = await finished(viewer, (await run(member, wf)).id);
    const output = done.steps[0]?.output as Record<string, unknown>;
    expect(output.services).toBe("services and hooks");
    expect(output.note).toBe("posted to [redacted]");
    expect(output.token).toBe("[redacted]");
    expect(output.clientToken).toBe("[redacted]");
    expect(output.passphrase).toBe("[redacted]");
    const kept = Object.entries(output).filter(([k]) => k.startsWith("[redacted]"));
    expect(kept.map(([, v]) => v).sort()).toEqual(["a", "b", "c"]);
    expect(JSON.stringify(done)).not.toContain(token);
  });
});

describe("review: connector connections", () => {
  it("gives every checked address to the connection, so it falls back when one does not answer", async () => {
    // 127.0.0.2 has no fake service: the connection must go on to 127.0.0.1.
    const lookup = pinnedLookup([
      { address: "127.0.0.2", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ]);
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http
        .get({ host: "fake.test", port: fake.port, path: "/ping", lookup }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on("error", reject);
    });
    expect(status).toBe(200);
  });

  it("reuses one kept-alive connection for the calls of a run", async () => {
    const owner = await createUser(url);
    const from = fake.requests.length;
    const path = `/echo?run=${randomUUID()}`;
    const wf = await workflow(owner, [
      { id: "a", type: "http_request", method: "GET", url: `${fake.url}${path}` },
      { id: "b", type: "http_request", method: "GET", url: `${fake.url}${path}` },
      { id: "c", type: "http_request", method: "GET", url: `${fake.url}${path}` },
    ]);
    const done = await finished(owner, (await run(owner, wf)).id);
    expect(done.status).toBe("SUCCEEDED");
    const mine = fake.since(from).filter((r) => r.path === path);
    expect(mine).toHaveLength(3);
    expect(new Set(mine.map((r) => r.remotePort)).size).toBe(1);
  });

  it("counts IPv4-compatible, NAT64, Teredo, site-local and 6to4-relay addresses as internal", async () => {
    const internal = [
      "::7f00:1",
      "::10.0.0.1",
      "64:ff9b::7f00:1",
      "64:ff9b::169.254.169.254",
      "64:ff9b:1::808:808",
      "2001::1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      "fec0::1",
      "192.88.99.1",
    ];
    expect(internal.filter((a) => !isInternal(a))).toEqual([]);
    // NAT64 of a public address reaches that address: not internal (IPv6-only networks need it).
    expect(["64:ff9b::808:808", "64:ff9b::8.8.8.8", "2606:4700::1111"].filter(isInternal)).toEqual([]);
    // And through the public path: an integration aimed at one of them is refused.
    const owner = await createUser(url);
    for (const host of ["[::7f00:1]", "[64:ff9b::7f00:1]", "[2001::1]", "[fec0::1]", "192.88.99.1"]) {
      const id = await integration(
        owner,
        "http",
        { baseUrl: `http://${host}:${fake.port}`, testPath: "/ping" },
        {},
        host,
      );
      expect(await integrationTest(owner, id), host).toMatchObject({ ok: false, code: "HOST_NOT_ALLOWED" });
    }
  });
});
