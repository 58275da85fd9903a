import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { addMember, createOrg, errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { recordBatch } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { type MailCatcher, startMailCatcher } from "./helpers/mail.ts";
import { cacheCounts, modes } from "./helpers/responseCache.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

const ORG = `query($id: ID!) { node(id: $id) { ... on Organization {
  name viewerRole workflows(first: 5) { edges { node { name } } }
} } }`;
type Org = { node: { name: string; viewerRole: string; workflows: { edges: { node: { name: string } }[] } } | null };

/** How many queries the instance answered from its cache. */
const hits = async (server: TestServer) => (await cacheCounts(server)).hit;

async function createWorkflow(url: string, user: TestUser, organizationId: string, name: string) {
  const r = await gql(url, "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
    token: user.token,
    variables: { input: { organizationId, name, definition: { steps: [{ id: "pause", type: "delay", ms: 5 }] } } },
  });
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}

describe.each(modes)("the response cache ($mode)", ({ env }) => {
  let server: TestServer;
  let mail: MailCatcher;
  let url: string;
  beforeAll(async () => {
    mail = await startMailCatcher();
    server = await startServer({ SMTP_URL: mail.url, ...env() });
    url = server.graphqlUrl;
  });
  afterAll(async () => {
    await server?.stop();
    await mail?.close();
  });

  it("answers a repeated query from the cache, and never one caller's answer to another", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const viewer = "{ viewer { email } }";
    expect((await gql(url, viewer, { token: alice.token })).data).toEqual({ viewer: { email: alice.email } });
    const before = await hits(server);
    expect((await gql(url, viewer, { token: alice.token })).data).toEqual({ viewer: { email: alice.email } });
    expect(await hits(server)).toBe(before + 1);
    // The same document and variables, another caller: their own answer.
    expect((await gql(url, viewer, { token: bob.token })).data).toEqual({ viewer: { email: bob.email } });
  });

  it("keeps tenants apart: the organization header is part of the answer's key", async () => {
    const alice = await createUser(url);
    const other = await createOrg(url, alice.token, "Second");
    const active = "{ activeOrganization { id } }";
    const personal = await gql(url, active, { token: alice.token });
    const named = await gql(url, active, { token: alice.token, headers: { "x-organization-id": other.id } });
    expect(personal.data).toEqual({ activeOrganization: { id: alice.org.id } });
    expect(named.data).toEqual({ activeOrganization: { id: other.id } });
    // Another tenant's organization stays invisible, however often it is asked for.
    const mallory = await createUser(url);
    for (let i = 0; i < 2; i++)
      expect((await gql<Org>(url, ORG, { token: mallory.token, variables: { id: other.id } })).data?.node).toBeNull();
  });

  it("never outlives a revoked session or API key", async () => {
    const alice = await createUser(url);
    const viewer = "{ viewer { email } }";
    await gql(url, viewer, { token: alice.token });
    await gql(url, viewer, { token: alice.token });
    const logout = await gql(url, "mutation { authLogout }", { token: alice.token });
    expect(logout.errors).toBeUndefined();
    expect(errorCode(await gql(url, viewer, { token: alice.token }))).toBe("SESSION_REVOKED");

    const bob = await createUser(url);
    const key = await gql<{ apiKeyCreate: { secret: string; apiKey: { id: string } } }>(
      url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { id } } }",
      { token: bob.token, variables: { input: { organizationId: bob.org.id, name: "agent", role: "MEMBER" } } },
    );
    const created = key.data?.apiKeyCreate;
    if (!created) throw new Error(JSON.stringify(key.errors));
    const active = "{ activeOrganization { id } }";
    const headers = { "x-api-key": created.secret };
    expect((await gql(url, active, { headers })).data).toEqual({ activeOrganization: { id: bob.org.id } });
    const before = await hits(server);
    expect((await gql(url, active, { headers })).data).toEqual({ activeOrganization: { id: bob.org.id } });
    expect(await hits(server)).toBe(before + 1);
    const revoked = await gql(url, "mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", {
      token: bob.token,
      variables: { id: created.apiKey.id },
    });
    expect(revoked.errors).toBeUndefined();
    expect(errorCode(await gql(url, active, { headers }))).toBe("API_KEY_REVOKED");
  });

  it("forgets a member's answers when they are removed or their role changes", async () => {
    const owner = await createUser(url);
    const org = await createOrg(url, owner.token, "Team");
    await createWorkflow(url, owner, org.id, "nightly");
    const member = await addMember(url, mail, owner.token, org.id, "ADMIN");
    const read = () => gql<Org>(url, ORG, { token: member.token, variables: { id: org.id } });
    expect((await read()).data?.node?.viewerRole).toBe("ADMIN");
    expect((await read()).data?.node?.viewerRole).toBe("ADMIN");
    const demoted = await gql(url, "mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { role } }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(demoted.errors).toBeUndefined();
    expect((await read()).data?.node?.viewerRole).toBe("VIEWER");
    expect((await read()).data?.node?.workflows.edges).toEqual([{ node: { name: "nightly" } }]);
    const removed = await gql(url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(removed.errors).toBeUndefined();
    expect((await read()).data?.node).toBeNull();
  });

  it("shows a mutation's change at once, to every member", async () => {
    const owner = await createUser(url);
    const org = await createOrg(url, owner.token, "Shared");
    const member = await addMember(url, mail, owner.token, org.id, "MEMBER");
    const names = async (who: TestUser) =>
      (await gql<Org>(url, ORG, { token: who.token, variables: { id: org.id } })).data?.node?.workflows.edges.map(
        (e) => e.node.name,
      );
    expect(await names(member)).toEqual([]);
    expect(await names(member)).toEqual([]);
    await createWorkflow(url, owner, org.id, "made by the owner");
    expect(await names(member)).toEqual(["made by the owner"]);
    const renamed = await gql(
      url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { name } }",
      {
        token: owner.token,
        variables: { input: { id: org.id, name: "Renamed" } },
      },
    );
    expect(renamed.errors).toBeUndefined();
    expect((await gql<Org>(url, ORG, { token: member.token, variables: { id: org.id } })).data?.node?.name).toBe(
      "Renamed",
    );
  });

  it("shows what background work changed: events analysed into patterns after the answer was kept", async () => {
    const alice = await createUser(url);
    const patterns = `query($id: ID!) { node(id: $id) { ... on Organization { patterns(first: 10) { edges { node { fileExtension } } } } } }`;
    type Patterns = { node: { patterns: { edges: { node: { fileExtension: string } }[] } } };
    const read = async () =>
      (await gql<Patterns>(url, patterns, { token: alice.token, variables: { id: alice.org.id } })).data?.node.patterns
        .edges ?? [];
    expect(await read()).toEqual([]);
    expect(await read()).toEqual([]);
    await recordBatch(url, alice, [
      { kind: "FILE_OPENED", filePath: "/work/a.py", tool: "vim" },
      { kind: "FILE_OPENED", filePath: "/work/b.py", tool: "vim" },
    ]);
    // The analysis runs in the background; its commit is what must reach the cached answer.
    const seen = await until(read, (edges) => edges.length > 0);
    expect(seen.map((e) => e.node.fileExtension)).toContain(".py");
  });
});

describe.runIf(services)("the response cache across two instances", () => {
  let a: TestServer;
  let b: TestServer;
  let mail: MailCatcher;
  beforeAll(async () => {
    mail = await startMailCatcher();
    [a, b] = await Promise.all([startServer({ SMTP_URL: mail.url }), startServer({ SMTP_URL: mail.url })]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await mail?.close();
  });

  it("forgets on A what a mutation on B changed: a new workflow, a role, a membership", async () => {
    const owner = await createUser(a.graphqlUrl);
    const org = await createOrg(a.graphqlUrl, owner.token, "Two");
    const member = await addMember(a.graphqlUrl, mail, owner.token, org.id, "ADMIN");
    const readOnA = () => gql<Org>(a.graphqlUrl, ORG, { token: member.token, variables: { id: org.id } });
    expect((await readOnA()).data?.node?.workflows.edges).toEqual([]);
    const before = await hits(a);
    expect((await readOnA()).data?.node?.workflows.edges).toEqual([]);
    expect(await hits(a)).toBe(before + 1);
    await createWorkflow(b.graphqlUrl, owner, org.id, "from B");
    expect((await readOnA()).data?.node?.workflows.edges).toEqual([{ node: { name: "from B" } }]);
    await gql(b.graphqlUrl, "mutation($id: ID!) { membershipUpdateRole(id: $id, role: MEMBER) { role } }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect((await readOnA()).data?.node?.viewerRole).toBe("MEMBER");
    await gql(b.graphqlUrl, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect((await readOnA()).data?.node).toBeNull();
  });
});

describe.runIf(services)("the response cache while Redis is away", () => {
  it("answers from the database, and serves nothing stale once Redis is back", async () => {
    const target = new URL(services!.redisUrl);
    const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 6379) });
    onTestFinished(() => proxy.close());
    target.host = `127.0.0.1:${proxy.port}`;
    const mail = await startMailCatcher();
    onTestFinished(() => mail.close());
    const server = await startServer({ SMTP_URL: mail.url, REDIS_URL: target.toString() });
    onTestFinished(() => server.stop());
    const url = server.graphqlUrl;
    const owner = await createUser(url);
    const names = async () =>
      (
        await gql<Org>(url, ORG, { token: owner.token, variables: { id: owner.org.id } })
      ).data?.node?.workflows.edges.map((e) => e.node.name);
    expect(await names()).toEqual([]);
    const before = await hits(server);
    expect(await names()).toEqual([]);
    expect(await hits(server)).toBe(before + 1);

    await proxy.cut();
    // Redis away: the query runs, and a change made meanwhile is shown.
    expect(await names()).toEqual([]);
    const made = await gql(url, "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
      token: owner.token,
      variables: {
        input: {
          organizationId: owner.org.id,
          name: "while away",
          definition: { steps: [{ id: "p", type: "delay", ms: 5 }] },
        },
      },
    });
    expect(made.errors).toBeUndefined();
    expect(await names()).toEqual(["while away"]);
    await proxy.restore();
    // The answer kept before the cut is still in Redis: it must never be served again.
    const after = await hits(server);
    const seen = await until(
      async () => ({ names: await names(), hits: await hits(server) }),
      (r) => r.hits > after + 1 || r.names?.length !== 1,
    );
    expect(seen.names).toEqual(["while away"]);
  });
});
