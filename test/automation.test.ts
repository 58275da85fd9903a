// From a suggestion to scheduled runs: apply, connect an integration, activate, schedule,
// watch it run; the scheduler's other duties (retention); and the worker as its own process.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { gql } from "./helpers/client.ts";
import { recordBatch, scenario, suggestionsGenerate } from "./helpers/events.ts";
import { createUser, PASSWORD, type TestUser } from "./helpers/factories.ts";
import { startFakeServices } from "./helpers/fakeServices.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { spawnServer } from "./helpers/process.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

let fake: Awaited<ReturnType<typeof startFakeServices>>;
let mail: MailCatcher;
beforeAll(async () => {
  fake = await startFakeServices();
  mail = await startMailCatcher();
});
afterAll(async () => {
  await fake.close();
  await mail.close();
});

/** An integration of each kind, pointed at the local stand-ins. */
function integrationFor(connector: string): { config: Record<string, unknown>; secrets: Record<string, unknown> } {
  const port = Number(new URL(mail.url).port);
  const all: Record<string, { config: Record<string, unknown>; secrets: Record<string, unknown> }> = {
    github: { config: { baseUrl: fake.url, owner: "acme", repository: "reports" }, secrets: { accessToken: "t" } },
    slack: { config: {}, secrets: { webhookUrl: `${fake.url}/slack/hook` } },
    google_drive: { config: { baseUrl: fake.url, folderId: "F1" }, secrets: { accessToken: "t" } },
    dropbox: { config: { apiBaseUrl: fake.url, contentBaseUrl: fake.url }, secrets: { accessToken: "t" } },
    s3: {
      config: { endpoint: fake.url, region: "eu-west-1", bucket: "bucket-1" },
      secrets: { accessKeyId: "a", secretAccessKey: "b" },
    },
    smtp: { config: { host: "127.0.0.1", port, fromEmail: "floyo@example.test" }, secrets: {} },
    http: { config: { baseUrl: `${fake.url}/hook` }, secrets: {} },
  };
  return all[connector] as { config: Record<string, unknown>; secrets: Record<string, unknown> };
}

async function runsOf(url: string, user: TestUser, workflowId: string) {
  const r = await gql<{ node: { executions: { edges: { node: { status: string; scheduledFor: string | null } }[] } } }>(
    url,
    "query($id: ID!) { node(id: $id) { ... on Workflow { executions(first: 50) { edges { node { status scheduledFor } } } } } }",
    { token: user.token, variables: { id: workflowId } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.executions.edges.map((e) => e.node);
}

describe("from a suggestion to scheduled runs", () => {
  let server: TestServer;
  let isolated: Awaited<ReturnType<typeof isolatedServices>>;
  beforeAll(async () => {
    isolated = await isolatedServices("automation");
    server = await startServer({
      ...isolated.env,
      CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*",
      EXECUTION_POLL_MS: "100",
      RETENTION_CRON: "* * * * * *",
    });
  });
  afterAll(async () => {
    await server.stop();
    await isolated.cleanup();
  });

  it("applies a suggestion, connects its integration, schedules it and runs it", async () => {
    const url = server.graphqlUrl;
    const user = await createUser(url);
    await recordBatch(url, user, scenario("auto"));
    const [suggestion] = await suggestionsGenerate(url, user);
    if (!suggestion) throw new Error("no suggestion");
    const applied = await gql<{
      suggestionApply: { workflow: { id: string; definition: { steps: Record<string, unknown>[] } } };
    }>(url, "mutation($id: ID!) { suggestionApply(id: $id) { workflow { id definition } } }", {
      token: user.token,
      variables: { id: suggestion.id },
    });
    const workflow = applied.data?.suggestionApply.workflow;
    if (!workflow) throw new Error(JSON.stringify(applied.errors));

    // A draft cannot run until its step has an integration.
    const early = await gql(url, "mutation($id: ID!) { workflowRun(id: $id) { id } }", {
      token: user.token,
      variables: { id: workflow.id },
    });
    expect(early.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");

    const connector = suggestion.suggestedIntegration;
    const integration = await gql<{ integrationCreate: { id: string } }>(
      url,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
      {
        token: user.token,
        variables: { input: { organizationId: user.org.id, connector, name: connector, ...integrationFor(connector) } },
      },
    );
    const [step] = workflow.definition.steps;
    const input = connector === "smtp" ? { ...(step?.input as object), to: ["ops@example.test"] } : step?.input;
    const activated = await gql<{ workflowUpdate: { status: string; currentVersion: number } }>(
      url,
      "mutation($input: WorkflowUpdateInput!) { workflowUpdate(input: $input) { status currentVersion } }",
      {
        token: user.token,
        variables: {
          input: {
            id: workflow.id,
            status: "ACTIVE",
            definition: { steps: [{ ...step, input, integrationId: integration.data?.integrationCreate.id }] },
            changeSummary: `Connected ${connector}`,
          },
        },
      },
    );
    expect(activated.data?.workflowUpdate).toEqual({ status: "ACTIVE", currentVersion: 2 });

    await gql(url, "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }", {
      token: user.token,
      variables: { input: { workflowId: workflow.id, intervalSeconds: 1, catchUp: "ALL" } },
    });
    const runs = await until(
      () => runsOf(url, user, workflow.id),
      (r) => r.filter((e) => e.status === "SUCCEEDED").length >= 2,
    );
    const occurrences = runs.map((r) => r.scheduledFor).filter(Boolean);
    expect(new Set(occurrences).size).toBe(occurrences.length);
    expect(runs.filter((r) => r.status === "FAILED")).toEqual([]);
  });

  it("runs retention cleanup on the scheduler", async () => {
    const url = server.graphqlUrl;
    const user = await createUser(url);
    await recordBatch(url, user, [
      { kind: "FILE_OPENED", filePath: "/old.md", occurredAt: new Date(Date.now() - 10 * 86_400_000).toISOString() },
      { kind: "FILE_OPENED", filePath: "/new.md" },
    ]);
    await gql(url, "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
      token: user.token,
      variables: { input: { id: user.org.id, eventRetentionDays: 7 } },
    });
    // RETENTION_CRON runs every second here; nobody asks for a cleanup.
    const left = await until(
      async () =>
        (
          await gql<{ node: { events: { edges: { node: { filePath: string } }[] } } }>(
            url,
            "query($id: ID!) { node(id: $id) { ... on Organization { events(first: 5) { edges { node { filePath } } } } } }",
            { token: user.token, variables: { id: user.org.id } },
          )
        ).data?.node.events.edges.map((e) => e.node.filePath) ?? [],
      (paths) => paths.length === 1,
    );
    expect(left).toEqual(["/new.md"]);
  });
});

describe.runIf(services)("the worker as its own process", () => {
  it("runs the schedules while the API instance runs no jobs, and operators see who leads", async () => {
    const own = await isolatedServices("worker");
    onTestFinished(() => own.cleanup());
    const api = await spawnServer({ ...own.env, JOBS_ENABLED: "false" });
    onTestFinished(() => api.kill("SIGKILL").then(() => undefined));
    const worker = await spawnServer({ ...own.env, EXECUTION_POLL_MS: "100" }, { worker: true });
    onTestFinished(() => worker.kill("SIGKILL").then(() => undefined));
    const health = (await (await fetch(`${api.url}/health`)).json()) as { scheduler: unknown };
    expect(health.scheduler).toEqual({ jobs: "disabled" });

    const user = await createUser(api.graphqlUrl);
    const created = await gql<{ workflowCreate: { id: string } }>(
      api.graphqlUrl,
      "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
      {
        token: user.token,
        variables: {
          input: {
            organizationId: user.org.id,
            name: "w",
            status: "ACTIVE",
            definition: { steps: [{ id: "t", type: "transform", template: {} }] },
          },
        },
      },
    );
    const workflowId = created.data?.workflowCreate.id as string;
    await gql(api.graphqlUrl, "mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }", {
      token: user.token,
      variables: { input: { workflowId, intervalSeconds: 1 } },
    });
    await until(
      () => runsOf(api.graphqlUrl, user, workflowId),
      (r) => r.some((e) => e.status === "SUCCEEDED"),
    );

    // An operator: made superuser in the database, then signed in again.
    const db = new pg.Client({ connectionString: own.env.DATABASE_URL });
    await db.connect();
    await db.query("UPDATE users SET is_superuser = true WHERE email = $1", [user.email]);
    await db.end();
    const login = await gql<{ authLogin: { accessToken: string } }>(
      api.graphqlUrl,
      "mutation($input: AuthLoginInput!) { authLogin(input: $input) { accessToken } }",
      { variables: { input: { email: user.email, password: PASSWORD } } },
    );
    const status = await gql<{ schedulerStatus: { instance: unknown; lastHolderId: string } }>(
      api.graphqlUrl,
      "{ schedulerStatus { instance { isLeader } lastHolderId lastFencingToken lastRecordedAt } }",
      { token: login.data?.authLogin.accessToken },
    );
    expect(status.data?.schedulerStatus.instance).toBeNull();
    expect(status.data?.schedulerStatus.lastHolderId).toContain(`:${worker.child.pid}:`);
    const denied = await gql(api.graphqlUrl, "{ schedulerStatus { lastHolderId } }", { token: user.token });
    expect(denied.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(await worker.kill("SIGTERM")).toBe(0);
  });
});
