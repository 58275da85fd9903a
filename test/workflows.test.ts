// Workflows: typed steps validated field by field; every change an immutable version;
// rollback as a new version; comparing two versions.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let url: string;
beforeAll(async () => {
  server = await startServer({ CONNECTOR_ALLOWED_HOSTS: "127.0.0.1:*" });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const WORKFLOW = "id name status currentVersion definition";

async function createWorkflow(user: TestUser, definition: unknown, name = "Nightly report", status?: string) {
  return gql<{ workflowCreate: { id: string; currentVersion: number; definition: { steps: unknown[] } } }>(
    url,
    `mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { ${WORKFLOW} } }`,
    { token: user.token, variables: { input: { organizationId: user.org.id, name, definition, status } } },
  );
}

async function update(user: TestUser, input: Record<string, unknown>) {
  return gql<{ workflowUpdate: { currentVersion: number; name: string } }>(
    url,
    `mutation($input: WorkflowUpdateInput!) { workflowUpdate(input: $input) { ${WORKFLOW} } }`,
    { token: user.token, variables: { input } },
  );
}

const steps = [
  { id: "wait", type: "delay", ms: 10 },
  { id: "shape", type: "transform", template: { greeting: "hello" } },
];

describe("workflows", () => {
  it("refuses invalid definitions with field-level errors", async () => {
    const user = await createUser(url);
    const other = await createUser(url);
    const slack = await gql<{ integrationCreate: { id: string } }>(
      url,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
      {
        token: other.token,
        variables: {
          input: {
            organizationId: other.org.id,
            connector: "slack",
            name: "s",
            config: {},
            secrets: { webhookUrl: "http://127.0.0.1:9/x" },
          },
        },
      },
    );
    const r = await createWorkflow(user, {
      steps: [
        { id: "a", type: "delay", ms: -1 },
        { id: "a", type: "http_request", method: "FETCH", url: "ftp://x" },
        { id: "Bad Id", type: "teleport" },
        { id: "c", type: "email", integrationId: "x", to: ["not-an-email"], subject: "", text: "" },
      ],
    });
    expect(errorCode(r)).toBe("BAD_USER_INPUT");
    expect(fieldErrorPaths(r)).toEqual(
      expect.arrayContaining([
        "definition.steps.0.ms",
        "definition.steps.1.method",
        "definition.steps.1.url",
        "definition.steps.2.type",
        "definition.steps.3.to.0",
        "definition.steps.3.subject",
      ]),
    );
    // Another organization's integration does not exist here.
    const foreign = await createWorkflow(user, {
      steps: [{ id: "tell", type: "slack_message", integrationId: slack.data?.integrationCreate.id, text: "hi" }],
    });
    expect(fieldErrorPaths(foreign)).toEqual(["definition.steps.0.integrationId"]);
  });

  it("versions every change, rolls back as a new version, and compares versions", async () => {
    const user = await createUser(url);
    const created = await createWorkflow(user, { steps });
    expect(created.errors).toBeUndefined();
    const id = created.data?.workflowCreate.id as string;
    expect(created.data?.workflowCreate.currentVersion).toBe(1);

    expect((await update(user, { id, name: "Nightly digest" })).data?.workflowUpdate).toMatchObject({
      currentVersion: 2,
      name: "Nightly digest",
    });
    const v3 = await update(user, {
      id,
      definition: {
        steps: [steps[0], { ...steps[1], template: { greeting: "bonjour" } }, { id: "pause", type: "delay", ms: 5 }],
      },
      changeSummary: "French, and a pause",
    });
    expect(v3.data?.workflowUpdate.currentVersion).toBe(3);

    const rolled = await gql<{ workflowRollback: { currentVersion: number; name: string; definition: unknown } }>(
      url,
      `mutation($id: ID!) { workflowRollback(id: $id, version: 1) { ${WORKFLOW} } }`,
      { token: user.token, variables: { id } },
    );
    expect(rolled.data?.workflowRollback).toMatchObject({ currentVersion: 4, name: "Nightly report" });
    expect(rolled.data?.workflowRollback.definition).toEqual(created.data?.workflowCreate.definition);

    const history = await gql<{
      node: {
        versions: {
          edges: {
            node: { number: number; changeSummary: string; restoredFrom: number | null; author: { id: string } };
          }[];
        };
        compare: { path: string; change: string; before: unknown; after: unknown }[];
      };
    }>(
      url,
      `query($id: ID!) { node(id: $id) { ... on Workflow {
        versions(first: 10) { edges { node { number changeSummary restoredFrom author { id } } } }
        compare(from: 2, to: 3) { path change before after }
      } } }`,
      { token: user.token, variables: { id } },
    );
    expect(history.data?.node.versions.edges.map((e) => e.node)).toEqual([
      { number: 4, changeSummary: "Rolled back to version 1", restoredFrom: 1, author: { id: user.user.id } },
      { number: 3, changeSummary: "French, and a pause", restoredFrom: null, author: { id: user.user.id } },
      { number: 2, changeSummary: "Changed name", restoredFrom: null, author: { id: user.user.id } },
      { number: 1, changeSummary: "Created", restoredFrom: null, author: { id: user.user.id } },
    ]);
    expect(history.data?.node.compare).toEqual([
      { path: "definition.steps[shape].template.greeting", change: "CHANGED", before: "hello", after: "bonjour" },
      { path: "definition.steps[pause]", change: "ADDED", before: null, after: { id: "pause", type: "delay", ms: 5 } },
    ]);
    const missing = await gql(url, "mutation($id: ID!) { workflowRollback(id: $id, version: 99) { id } }", {
      token: user.token,
      variables: { id },
    });
    expect(errorCode(missing)).toBe("NOT_FOUND");
  });

  it("archives, lists with filters, deletes; another organization sees nothing", async () => {
    const user = await createUser(url);
    const mallory = await createUser(url);
    const id = (await createWorkflow(user, { steps }, "Keep")).data?.workflowCreate.id as string;
    await createWorkflow(user, { steps }, "Other");
    const archived = await gql<{ workflowArchive: { status: string; currentVersion: number } }>(
      url,
      `mutation($id: ID!) { workflowArchive(id: $id) { ${WORKFLOW} } }`,
      { token: user.token, variables: { id } },
    );
    expect(archived.data?.workflowArchive).toMatchObject({ status: "ARCHIVED", currentVersion: 2 });
    const list = await gql<{ node: { workflows: { totalCount: number; edges: { node: { name: string } }[] } } }>(
      url,
      `query($id: ID!) { node(id: $id) { ... on Organization { workflows(filter: { statuses: [ARCHIVED] }) { totalCount edges { node { name } } } } } }`,
      { token: user.token, variables: { id: user.org.id } },
    );
    expect(list.data?.node.workflows.edges.map((e) => e.node.name)).toEqual(["Keep"]);
    for (const m of [
      `mutation { workflowUpdate(input: { id: "${id}", name: "x" }) { id } }`,
      `mutation { workflowRollback(id: "${id}", version: 1) { id } }`,
      `mutation { workflowDelete(id: "${id}") }`,
    ]) {
      expect(errorCode(await gql(url, m, { token: mallory.token })), m).toBe("NOT_FOUND");
    }
    expect((await gql(url, `mutation { workflowDelete(id: "${id}") }`, { token: user.token })).errors).toBeUndefined();
  });
});
