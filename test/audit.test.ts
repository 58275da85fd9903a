// The audit trail: every mutation, allowed or not, leaves an entry with its actor, resource,
// request id, IP and user agent, and no secret.
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { redact, TRUNCATED } from "../src/features/audit/entry.ts";
import { encodeId } from "../src/schema/globalId.ts";
import { addMember, createOrg, errorCode } from "./helpers/api.ts";
import { gql, wsClient, wsRequest } from "./helpers/client.ts";
import { createUser, PASSWORD } from "./helpers/factories.ts";
import { useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail();

interface Entry {
  action: string;
  outcome: string;
  actor: { id: string } | null;
  resourceType: string | null;
  resourceId: string | null;
  details: Record<string, unknown>;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}
const FIELDS = "action outcome actor { id } resourceType resourceId details ip userAgent requestId";

async function orgLog(token: string, orgId: string, filter: Record<string, unknown> = {}) {
  const r = await gql<{ node: { auditLogs: { edges: { node: Entry }[] } } }>(
    suite.url,
    `query($id: ID!, $filter: AuditFilter) { node(id: $id) { ... on Organization { auditLogs(first: 50, filter: $filter) { edges { node { ${FIELDS} } } } } } }`,
    { token, variables: { id: orgId, filter } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.auditLogs.edges.map((e) => e.node);
}

describe("audit trail", () => {
  it("records an allowed mutation with actor, resource, request id, IP and user agent", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Audited");
    const update = await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }",
      {
        token: alice.token,
        variables: { input: { id: org.id, description: "now audited" } },
        headers: { "user-agent": "floyo-test/1.0", "x-request-id": "audit-check-1" },
      },
    );
    expect(update.errors).toBeUndefined();
    const [entry] = await orgLog(alice.token, org.id, { action: "organizationUpdate" });
    expect(entry).toMatchObject({
      action: "organizationUpdate",
      outcome: "ALLOWED",
      actor: { id: alice.user.id },
      resourceType: "Organization",
      requestId: "audit-check-1",
      userAgent: "floyo-test/1.0",
      details: { input: { input: { id: org.id, description: "now audited" } } },
    });
    expect(entry?.ip).toMatch(/127\.0\.0\.1/);
  });

  it("records a denied mutation in the organization's log, and filters by outcome and actor", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Watched");
    const viewer = await addMember(suite.url, suite.mail, alice.token, org.id, "VIEWER");
    const denied = await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }",
      {
        token: viewer.token,
        variables: { input: { id: org.id, name: "hijacked" } },
      },
    );
    expect(errorCode(denied)).toBe("FORBIDDEN");
    const entries = await orgLog(alice.token, org.id, { outcome: "DENIED" });
    expect(entries).toEqual([
      expect.objectContaining({
        action: "organizationUpdate",
        outcome: "DENIED",
        actor: { id: viewer.user.id },
        details: expect.objectContaining({ error: "FORBIDDEN" }),
      }),
    ]);
    const byActor = await orgLog(alice.token, org.id, { actorId: viewer.user.id });
    expect(byActor.map((e) => e.action).sort()).toEqual(["organizationInviteAccept", "organizationUpdate"]);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(await orgLog(alice.token, org.id, { since: future })).toEqual([]);
    const all = await orgLog(alice.token, org.id, { until: future });
    expect(all.map((e) => e.action)).toEqual(
      expect.arrayContaining([
        "organizationCreate",
        "organizationInvite",
        "organizationInviteAccept",
        "organizationUpdate",
      ]),
    );
    expect(await orgLog(alice.token, org.id, { resourceType: "Invite" })).toEqual([
      expect.objectContaining({ action: "organizationInvite" }),
    ]);
  });

  it("redacts secrets, and shows me my own entries, including those outside any organization", async () => {
    const alice = await createUser(suite.url);
    await gql(
      suite.url,
      "mutation($c: String!, $n: String!) { passwordChange(currentPassword: $c, newPassword: $n) }",
      {
        token: alice.token,
        variables: { c: PASSWORD, n: "a different long passphrase 9" },
      },
    );
    const mine = await gql<{ viewer: { auditLogs: { edges: { node: Entry }[] } } }>(
      suite.url,
      `{ viewer { auditLogs(first: 10) { edges { node { ${FIELDS} } } } } }`,
      { token: alice.token },
    );
    const entries = mine.data!.viewer.auditLogs.edges.map((e) => e.node);
    expect(entries.map((e) => e.action)).toEqual(["passwordChange", "authRegister"]);
    const text = JSON.stringify(entries);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain("a different long passphrase 9");
    expect(entries[1]?.details).toMatchObject({ input: { input: { password: "[redacted]", email: alice.email } } });
  });

  it("records failed sign-ins as denied, with no password", async () => {
    const alice = await createUser(suite.url);
    await gql(
      suite.url,
      "mutation($e: String!, $p: String!) { authLogin(input: { email: $e, password: $p }) { accessToken } }",
      {
        variables: { e: alice.email, p: "guessing wrong 123" },
      },
    );
    const rows = await suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { action: "authLogin", outcome: "DENIED" },
      orderBy: { createdAt: "desc" },
      take: 20,
    });
    const row = rows.find((r) => JSON.stringify(r.details).includes(alice.email));
    expect(row?.details).toMatchObject({ error: "INVALID_CREDENTIALS", input: { input: { password: "[redacted]" } } });
  });

  it("is readable by owners and admins only", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Private log");
    const member = await addMember(suite.url, suite.mail, alice.token, org.id, "MEMBER");
    const r = await gql(
      suite.url,
      `{ node(id: "${org.id}") { ... on Organization { auditLogs(first: 1) { edges { node { action } } } } } }`,
      { token: member.token },
    );
    expect(errorCode(r)).toBe("FORBIDDEN");
  });
});

describe("audit trail edge cases", () => {
  const update = (id: string, description: string) =>
    `organizationUpdate(input: { id: "${id}", description: "${description}" }) { id }`;

  it("records root fields reached through fragments, and none that @skip left out", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Fragments");
    const r = await gql(
      suite.url,
      `mutation { ... on Mutation { a: ${update(org.id, "via fragment")} } ...More ... @skip(if: true) { b: ${update(org.id, "skipped")} } }
       fragment More on Mutation { c: ${update(org.id, "via named fragment")} }`,
      { token: alice.token },
    );
    expect(r.errors).toBeUndefined();
    const entries = await orgLog(alice.token, org.id, { action: "organizationUpdate" });
    expect(
      entries.map((e) => (e.details.input as { input: { description: string } }).input.description).sort(),
    ).toEqual(["via fragment", "via named fragment"]);
  });

  it("records an organization's deletion, and what was sent with it", async () => {
    const alice = await createUser(suite.url);
    const doomed = await createOrg(suite.url, alice.token, "Doomed");
    const kept = await createOrg(suite.url, alice.token, "Kept");
    const r = await gql(
      suite.url,
      `mutation { organizationDelete(id: "${doomed.id}") k: ${update(kept.id, "same request")} }`,
      { token: alice.token },
    );
    expect(r.errors).toBeUndefined();
    const mine = await gql<{ viewer: { auditLogs: { edges: { node: Entry }[] } } }>(
      suite.url,
      `{ viewer { auditLogs(first: 5, filter: { action: "organizationDelete" }) { edges { node { ${FIELDS} } } } } }`,
      { token: alice.token },
    );
    expect(mine.data?.viewer.auditLogs.edges.map((e) => e.node.outcome)).toEqual(["ALLOWED"]);
    expect(await orgLog(alice.token, kept.id, { action: "organizationUpdate" })).toHaveLength(1);
  });

  it("writes one entry per root field when another fails, and none says ALLOWED for a field that never ran", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Mixed");
    const r = await gql(
      suite.url,
      `mutation {
        a: ${update(org.id, "kept")}
        b: apiKeyRevoke(id: "${encodeId("ApiKey", randomUUID())}") { id }
        c: workflowCreate(input: { organizationId: "${org.id}", name: "w", definition: { steps: [] } }) { id }
      }`,
      { token: alice.token },
    );
    // The failed key revocation nulls `data`: graphql-js runs no root field after it.
    expect(r.data).toBeNull();
    const rows = await suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { requestId: r.headers.get("x-request-id") },
      orderBy: { action: "asc" },
    });
    expect(rows.map((e) => [e.action, e.outcome])).toEqual([
      ["apiKeyRevoke", "DENIED"],
      ["organizationUpdate", "ALLOWED"],
      ["workflowCreate", "FAILED"],
    ]);
    expect(rows[2]?.details).toMatchObject({ error: "NOT_EXECUTED" });
  });

  it("keeps an entry of a huge input, cut short with a marker", async () => {
    const alice = await createUser(suite.url);
    // 20,000 values: within what the API takes, more than an entry keeps.
    const template = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`list${i}`, Array(1000).fill(i)]));
    const r = await gql(suite.url, "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
      token: alice.token,
      variables: {
        input: {
          organizationId: alice.org.id,
          name: "huge",
          definition: { steps: [{ id: "shape", type: "transform", template }] },
        },
      },
    });
    expect(r.errors).toBeUndefined();
    const [row] = await suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { requestId: r.headers.get("x-request-id") },
    });
    expect(row?.outcome).toBe("ALLOWED");
    const text = JSON.stringify(row?.details);
    expect(text).toContain(TRUNCATED);
    expect(text.length).toBeLessThan(JSON.stringify(template).length);
  });

  it("copies any value into an entry without recursion, capped, keeping inherited names as data", () => {
    // The input guard refuses such input first; what resolvers note goes through here too.
    let deep: unknown = "leaf";
    for (let i = 0; i < 50_000; i++) deep = [{ a: deep }];
    const copied = JSON.stringify(redact({ deep }));
    expect(copied).toContain(TRUNCATED);
    expect(copied).not.toContain("leaf");
    const proto = redact(JSON.parse('{"__proto__":{"polluted":1},"token":"t","name":"\ud800"}')) as object;
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(["__proto__", "token", "name"]);
    expect(JSON.stringify(proto)).toBe('{"__proto__":{"polluted":1},"token":"[redacted]","name":"\uFFFD"}');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("keeps a mutation ALLOWED when only a nested field of its payload is refused", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Nested refusal");
    const viewer = await addMember(suite.url, suite.mail, alice.token, org.id, "VIEWER");
    // A viewer may update their own profile but not list the organization's API keys.
    const r = await gql(
      suite.url,
      `mutation { viewerUpdate(input: { fullName: "V" }) { memberships { organization { apiKeys(first: 1) { edges { node { id } } } } } } }`,
      { token: viewer.token },
    );
    expect(errorCode(r)).toBe("FORBIDDEN");
    const rows = await suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { action: "viewerUpdate", requestId: r.headers.get("x-request-id") },
    });
    expect(rows.map((e) => e.outcome)).toEqual(["ALLOWED"]);
  });

  it("records a mutation refused for bad credentials as DENIED", async () => {
    const r = await gql(suite.url, `mutation { organizationCreate(input: { name: "nope" }) { id } }`, {
      token: "not-a-jwt",
    });
    expect(errorCode(r)).toBe("TOKEN_MALFORMED");
    const rows = await suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { requestId: r.headers.get("x-request-id") },
    });
    expect(rows).toEqual([
      expect.objectContaining({
        action: "organizationCreate",
        outcome: "DENIED",
        details: expect.objectContaining({ error: "TOKEN_MALFORMED" }),
      }),
    ]);
  });
});

describe("audit of mutations refused on every HTTP shape", () => {
  // The JSON fast path audits its own refusals; these shapes go through Yoga's pipeline.
  const shapes: [string, Record<string, string>, (query: string) => string][] = [
    ["application/graphql+json", { "content-type": "application/graphql+json" }, (q) => JSON.stringify({ query: q })],
    ["application/graphql", { "content-type": "application/graphql" }, (q) => q],
    ["SSE", { "content-type": "application/json", accept: "text/event-stream" }, (q) => JSON.stringify({ query: q })],
  ];
  async function rowsOf(response: Response) {
    await response.text();
    return suite.server.app.runtime.db.prisma.auditLog.findMany({
      where: { requestId: response.headers.get("x-request-id") },
    });
  }

  it.each(shapes)(
    "records bad credentials (DENIED) and an invalid document (FAILED) over %s",
    async (_n, headers, body) => {
      const denied = await fetch(suite.server.graphqlUrl, {
        method: "POST",
        headers: { ...headers, authorization: "Bearer not-a-jwt" },
        body: body(`mutation { viewerUpdate(input: { fullName: "zz" }) { id } }`),
      });
      expect(await rowsOf(denied)).toEqual([
        expect.objectContaining({
          action: "viewerUpdate",
          outcome: "DENIED",
          details: expect.objectContaining({ error: "TOKEN_MALFORMED" }),
        }),
      ]);
      const alice = await createUser(suite.url);
      const invalid = await fetch(suite.server.graphqlUrl, {
        method: "POST",
        headers: { ...headers, authorization: `Bearer ${alice.token}` },
        body: body(`mutation { viewerUpdate(input: { fullName: 1 }) { id } }`),
      });
      expect(await rowsOf(invalid)).toEqual([expect.objectContaining({ action: "viewerUpdate", outcome: "FAILED" })]);
    },
  );

  it("records a mutation that ran over application/graphql+json once, not twice", async () => {
    const alice = await createUser(suite.url);
    const ran = await fetch(suite.server.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/graphql+json", authorization: `Bearer ${alice.token}` },
      body: JSON.stringify({ query: `mutation { viewerUpdate(input: { fullName: "Al" }) { id } }` }),
    });
    expect(await rowsOf(ran)).toEqual([expect.objectContaining({ action: "viewerUpdate", outcome: "ALLOWED" })]);
  });
});

describe("audit over WebSocket", () => {
  it("records a mutation refused before it ran, as over HTTP", async () => {
    const alice = await createUser(suite.url);
    const client = wsClient(suite.server.wsUrl, { authorization: `Bearer ${alice.token}` });
    try {
      const refused = await wsRequest(client, `mutation { organizationCreate(input: { name: "x" }) { noSuchField } }`);
      const requestId = refused.errors?.[0]?.extensions?.requestId as string;
      expect(refused.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
      const rows = await suite.server.app.runtime.db.prisma.auditLog.findMany({ where: { requestId } });
      expect(rows).toEqual([expect.objectContaining({ action: "organizationCreate", outcome: "FAILED" })]);
    } finally {
      await client.dispose();
    }
  });
});
