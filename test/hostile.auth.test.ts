// Credentials that were good once, or that are signed but lie: an API key past its expiry while
// its principal is cached, a token whose subject is not its session's user, claims of the wrong
// shape, and what a member removed from an organization can still take out of it (the export).
import { createHmac } from "node:crypto";
import { setImmediate } from "node:timers/promises";
import { strFromU8, unzipSync } from "fflate";
import jwt from "jsonwebtoken";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { addMember, createOrg, errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { rawSocket } from "./helpers/live.ts";
import { services, startServer, TEST_JWT_KEYS, type TestServer, useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail();

const [kid, secret] = TEST_JWT_KEYS.split(/:(.*)/s) as [string, string];
const WORKFLOW_CREATE = "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }";
const KEY_CREATE =
  "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { id prefix } } }";

/** A token signed with the test server's key: a valid signature over whatever claims we choose. */
function forge(payload: Record<string, unknown>, options: jwt.SignOptions = {}) {
  return jwt.sign(payload, secret, {
    algorithm: "HS256",
    keyid: kid,
    issuer: "floyo",
    audience: "floyo-api",
    expiresIn: 300,
    ...options,
  });
}

/** Signed by hand: claims jsonwebtoken itself would refuse to sign. */
function raw(payload: unknown) {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const body = `${part({ alg: "HS256", typ: "JWT", kid })}.${part(
    Array.isArray(payload)
      ? payload
      : { iss: "floyo", aud: "floyo-api", iat: Math.floor(Date.now() / 1000), ...(payload as object) },
  )}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

const claimsOf = (user: TestUser) => jwt.decode(user.token) as { sub: string; sid: string };

async function apiKey(owner: TestUser, organizationId: string, role = "ADMIN", ttlMs = 3600_000) {
  const soon = new Date(Date.now() + ttlMs).toISOString();
  const r = await gql<{ apiKeyCreate: { secret: string; apiKey: { id: string; prefix: string } } }>(
    suite.url,
    KEY_CREATE,
    { token: owner.token, variables: { input: { organizationId, name: "k", role, expiresAt: soon } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.apiKeyCreate;
}

const createWorkflow = (organizationId: string, auth: { token?: string; headers?: Record<string, string> }) =>
  gql<{ workflowCreate: { id: string } }>(suite.url, WORKFLOW_CREATE, {
    ...auth,
    variables: {
      input: { organizationId, name: "w", definition: { steps: [{ id: "t", type: "transform", template: {} }] } },
    },
  });

describe("an API key past its expiry, while its principal is cached", () => {
  // The clock moves, nothing else: the server runs in this process, so faking Date moves its
  // clock too (timers stay real). The key's row is untouched: only the clock says it expired.
  afterEach(() => {
    vi.useRealTimers();
  });

  it("is refused with API_KEY_EXPIRED for a query and for a mutation", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Expiring key");
    const key = await apiKey(alice, org.id, "ADMIN", 10_000);
    const headers = { "x-api-key": key.secret };
    // Used once: its principal is now cached.
    const first = await gql(suite.url, "{ activeOrganization { id } }", { headers });
    expect(first.data).toEqual({ activeOrganization: { id: org.id } });

    // Past the key's expiry, well inside the cache's 30 s: the cached record must be refused.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 11_000);
    const query = await gql(suite.url, "{ activeOrganization { id } }", { headers });
    expect({ status: query.status, code: errorCode(query), data: query.data ?? null }).toEqual({
      status: 401,
      code: "API_KEY_EXPIRED",
      data: null,
    });
    const mutation = await createWorkflow(org.id, { headers });
    expect({ status: mutation.status, code: errorCode(mutation) }).toEqual({ status: 401, code: "API_KEY_EXPIRED" });
    // Nothing was written by the refused mutation.
    expect(await suite.server.app.runtime.db.prisma.workflow.count({ where: { organizationId: decode(org.id) } })).toBe(
      0,
    );
  });

  it("is refused once revoked, and once its organization is deleted, though cached", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Doomed");
    const key = await apiKey(alice, org.id);
    const headers = { "x-api-key": key.secret };
    expect((await gql(suite.url, "{ activeOrganization { id } }", { headers })).errors).toBeUndefined();
    const deleted = await gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
      token: alice.token,
      variables: { id: org.id },
    });
    expect(deleted.errors).toBeUndefined();
    const query = await gql(suite.url, "{ activeOrganization { id } }", { headers });
    expect({ status: query.status, code: errorCode(query) }).toEqual({ status: 401, code: "API_KEY_INVALID" });
    const mutation = await createWorkflow(org.id, { headers });
    expect({ status: mutation.status, code: errorCode(mutation) }).toEqual({ status: 401, code: "API_KEY_INVALID" });

    const other = await createOrg(suite.url, alice.token, "Revoking");
    const revokedKey = await apiKey(alice, other.id);
    const revokedHeaders = { "x-api-key": revokedKey.secret };
    expect((await gql(suite.url, "{ activeOrganization { id } }", { headers: revokedHeaders })).errors).toBeUndefined();
    const revoke = await gql(suite.url, "mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", {
      token: alice.token,
      variables: { id: revokedKey.apiKey.id },
    });
    expect(revoke.errors).toBeUndefined();
    expect(errorCode(await createWorkflow(other.id, { headers: revokedHeaders }))).toBe("API_KEY_REVOKED");
  });
});

describe("a token whose claims do not match the session it names", () => {
  it("refuses a subject that is not the session's user, while that session is cached", async () => {
    const alice = await createUser(suite.url);
    const bob = await createUser(suite.url);
    // Alice's session is now cached.
    expect((await gql(suite.url, "{ viewer { id } }", { token: alice.token })).data).toEqual({
      viewer: { id: alice.user.id },
    });
    const lying = forge({ sid: claimsOf(alice).sid }, { subject: claimsOf(bob).sub });
    const asBob = await gql(suite.url, "{ viewer { id email } }", { token: lying });
    expect({ status: asBob.status, code: errorCode(asBob), data: asBob.data ?? null }).toEqual({
      status: 401,
      code: "TOKEN_INVALID",
      data: null,
    });
    // A mutation too (had it passed, it would have signed Alice out).
    const mutation = await gql(suite.url, "mutation { authLogout }", { token: lying });
    expect(errorCode(mutation)).toBe("TOKEN_INVALID");
    // Alice's own token still works: the lie ended nothing of hers.
    expect((await gql(suite.url, "{ viewer { id } }", { token: alice.token })).errors).toBeUndefined();

    // The same lie in a download link: no export of either user.
    const link = forge(
      { sid: claimsOf(alice).sid, purpose: "export" },
      { subject: claimsOf(bob).sub, audience: "floyo-api:download" },
    );
    const download = await fetch(`${suite.server.url}/downloads/export?token=${link}`);
    expect(download.status).toBe(401);
    expect(await download.json()).toMatchObject({ errors: [{ extensions: { code: "TOKEN_INVALID" } }] });

    // And over a WebSocket.
    const socket = rawSocket(suite.server.wsUrl);
    await socket.opened;
    socket.send({ type: "connection_init", payload: { authorization: `Bearer ${lying}` } });
    expect(await socket.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^TOKEN_INVALID/) });
  });
});

describe("a validly signed token with malformed claims", () => {
  const shapes: [string, () => string, RegExp?][] = [
    ["a non-UUID sid", () => forge({ sid: "not-a-uuid" }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["a numeric sid", () => forge({ sid: 42 }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["an object sid", () => forge({ sid: { id: "x" } }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["sid __proto__", () => forge({ sid: "__proto__" }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["sid constructor", () => forge({ sid: "constructor" }, { subject: "constructor" })],
    ["sid '*' (the revoke-all id)", () => forge({ sid: "*" }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["a sid naming an API key's cache entry", () => forge({ sid: `key:${"0".repeat(64)}` }, { subject: "x" })],
    ["a lone surrogate sid", () => forge({ sid: "\ud800" }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["a huge sid", () => forge({ sid: "a".repeat(6_000) }, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["a non-UUID sub", () => forge({ sid: "0190b6a0-0000-7000-8000-000000000001" }, { subject: "toString" })],
    ["a numeric sub", () => raw({ sid: "0190b6a0-0000-7000-8000-000000000001", sub: 7, exp: 9999999999 })],
    ["no sub", () => forge({ sid: "0190b6a0-0000-7000-8000-000000000001" })],
    ["no sid", () => forge({}, { subject: "0190b6a0-0000-7000-8000-000000000001" })],
    ["no exp", () => raw({ sid: "0190b6a0-0000-7000-8000-000000000001", sub: "0190b6a0-0000-7000-8000-000000000001" })],
    [
      "a string exp",
      () =>
        raw({
          sid: "0190b6a0-0000-7000-8000-000000000001",
          sub: "0190b6a0-0000-7000-8000-000000000001",
          exp: "9999999999",
        }),
    ],
    // Refused before its claims are read (it names no audience): any token code will do.
    ["an array payload", () => raw([1, 2, 3]), /^TOKEN_/],
  ];

  it.each(shapes)("answers %s with 401 TOKEN_INVALID, not 500, over HTTP", async (_name, make, code) => {
    const r = await gql(suite.url, "{ viewer { id } }", { token: make() });
    expect({ status: r.status, code: errorCode(r) }).toEqual({
      status: 401,
      code: code ? expect.stringMatching(code) : "TOKEN_INVALID",
    });
  });

  it("refuses a non-UUID sid with a real user's sub, in a mutation, a download link and a WebSocket", async () => {
    const alice = await createUser(suite.url);
    const token = forge({ sid: "not-a-uuid" }, { subject: claimsOf(alice).sub });
    const mutation = await gql(suite.url, "mutation { authLogout }", { token });
    expect({ status: mutation.status, code: errorCode(mutation) }).toEqual({ status: 401, code: "TOKEN_INVALID" });

    const link = forge(
      { sid: "not-a-uuid", purpose: "export" },
      { subject: claimsOf(alice).sub, audience: "floyo-api:download" },
    );
    const download = await fetch(`${suite.server.url}/downloads/export?token=${link}`);
    expect(download.status).toBe(401);
    expect(await download.json()).toMatchObject({ errors: [{ extensions: { code: "TOKEN_INVALID" } }] });
    const header = await fetch(`${suite.server.url}/downloads/export`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(header.status).toBe(401);

    const socket = rawSocket(suite.server.wsUrl);
    await socket.opened;
    socket.send({ type: "connection_init", payload: { authorization: `Bearer ${token}` } });
    expect(await socket.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^TOKEN_INVALID/) });
  });
});

describe("a member removed from an organization, then exporting their data", () => {
  async function exportOf(user: TestUser, url?: string) {
    const link =
      url ??
      (await gql<{ viewerDataExport: { url: string } }>(suite.url, "mutation { viewerDataExport { url } }", {
        token: user.token,
      }))!.data!.viewerDataExport.url;
    const response = await fetch(new URL(link, suite.server.url));
    expect(response.status).toBe(200);
    const files = unzipSync(new Uint8Array(await response.arrayBuffer()));
    return Object.fromEntries(Object.entries(files).map(([name, bytes]) => [name, strFromU8(bytes)]));
  }

  async function memberWithData(role: "MEMBER" | "ADMIN" = "MEMBER") {
    const owner = await createUser(suite.url);
    const org = await createOrg(suite.url, owner.token, "Secrets Inc");
    const member = await addMember(suite.url, suite.mail, owner.token, org.id, role);
    const workflow = await createWorkflow(org.id, { token: member.token });
    if (!workflow.data) throw new Error(JSON.stringify(workflow.errors));
    const event = await gql(suite.url, "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }", {
      token: member.token,
      variables: { input: { organizationId: org.id, event: { kind: "TOOL_USED", tool: "git" } } },
    });
    if (event.errors) throw new Error(JSON.stringify(event.errors));
    return { owner, org, member, workflowId: workflow.data.workflowCreate.id };
  }

  const orgDataIn = (files: Record<string, string>, orgId: string) =>
    Object.entries(files)
      .filter(([, text]) => text.includes(decode(orgId)))
      .map(([name]) => name);

  it("carries no data of that organization, nor edits made after the removal", async () => {
    const { owner, org, member, workflowId } = await memberWithData();
    // While a member, the export has the workflow and the event.
    const before = await exportOf(member);
    expect(before["workflows.json"]).toContain(decode(workflowId));
    expect(orgDataIn(before, org.id)).toEqual(expect.arrayContaining(["workflows.json", "events.json"]));
    // A link issued now, followed after the removal.
    const issuedBefore = (
      await gql<{ viewerDataExport: { url: string } }>(suite.url, "mutation { viewerDataExport { url } }", {
        token: member.token,
      })
    ).data!.viewerDataExport.url;

    const removed = await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(removed.errors).toBeUndefined();
    const edited = await gql(
      suite.url,
      "mutation($input: WorkflowUpdateInput!) { workflowUpdate(input: $input) { id } }",
      { token: owner.token, variables: { input: { id: workflowId, name: "edited after the removal" } } },
    );
    expect(edited.errors).toBeUndefined();

    for (const files of [await exportOf(member), await exportOf(member, issuedBefore)]) {
      expect(orgDataIn(files, org.id)).toEqual([]);
      expect(files["workflows.json"]).not.toContain(decode(workflowId));
      expect(Object.values(files).join("")).not.toContain("edited after the removal");
      // Their own account data is still there.
      expect(JSON.parse(files["profile.json"]!)).toEqual([expect.objectContaining({ email: member.email })]);
      expect(JSON.parse(files["memberships.json"]!)).toHaveLength(1);
    }
  });

  it("carries no data of an organization the member left, or that was deleted", async () => {
    const left = await memberWithData();
    expect(
      (
        await gql(suite.url, "mutation($id: ID!) { organizationLeave(id: $id) }", {
          token: left.member.token,
          variables: { id: left.org.id },
        })
      ).errors,
    ).toBeUndefined();
    expect(orgDataIn(await exportOf(left.member), left.org.id)).toEqual([]);

    const gone = await memberWithData("ADMIN");
    expect(
      (
        await gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
          token: gone.owner.token,
          variables: { id: gone.org.id },
        })
      ).errors,
    ).toBeUndefined();
    expect(orgDataIn(await exportOf(gone.member), gone.org.id)).toEqual([]);
  });

  it("carries only the member's own rows of an organization they still belong to", async () => {
    const { owner, org, member } = await memberWithData();
    const ownerWorkflow = await createWorkflow(org.id, { token: owner.token });
    const files = await exportOf(member);
    expect(files["workflows.json"]).not.toContain(decode(ownerWorkflow.data!.workflowCreate.id));
    for (const row of JSON.parse(files["events.json"]!) as { userId: string }[]) {
      expect(row.userId).toBe(claimsOf(member).sub);
    }
  });
});

describe.runIf(services)("revocations across instances", () => {
  let other: TestServer;
  beforeAll(async () => {
    other = await startServer();
  });
  afterAll(() => other.stop());

  async function heardOn(server: TestServer, act: () => Promise<unknown>) {
    const heard = server.app.runtime.pubsub.subscribe("auth:revoked", "all");
    const revocation = heard.next();
    await act();
    await revocation;
    await heard.return?.();
    // One turn of its event loop for its cache to drop the entry.
    await setImmediate();
  }

  it("ends a key cached on another instance when it is revoked, its creator removed, or its organization deleted", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Two instances");
    const key = await apiKey(alice, org.id);
    const headers = { "x-api-key": key.secret };
    const otherUrl = other.graphqlUrl;
    expect((await gql(otherUrl, "{ activeOrganization { id } }", { headers })).errors).toBeUndefined();
    await heardOn(other, () =>
      gql(suite.url, "mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", {
        token: alice.token,
        variables: { id: key.apiKey.id },
      }),
    );
    expect(errorCode(await gql(otherUrl, "{ activeOrganization { id } }", { headers }))).toBe("API_KEY_REVOKED");

    const admin = await addMember(suite.url, suite.mail, alice.token, org.id, "ADMIN");
    const adminKey = await apiKey(admin, org.id);
    const adminHeaders = { "x-api-key": adminKey.secret };
    expect((await gql(otherUrl, "{ activeOrganization { id } }", { headers: adminHeaders })).errors).toBeUndefined();
    await heardOn(other, () =>
      gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
        token: alice.token,
        variables: { id: admin.membershipId },
      }),
    );
    expect(errorCode(await gql(otherUrl, "{ activeOrganization { id } }", { headers: adminHeaders }))).toBe(
      "API_KEY_REVOKED",
    );

    const doomed = await createOrg(suite.url, alice.token, "Deleted on one instance");
    const doomedKey = await apiKey(alice, doomed.id);
    const doomedHeaders = { "x-api-key": doomedKey.secret };
    expect((await gql(otherUrl, "{ activeOrganization { id } }", { headers: doomedHeaders })).errors).toBeUndefined();
    await heardOn(other, () =>
      gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
        token: alice.token,
        variables: { id: doomed.id },
      }),
    );
    expect(errorCode(await gql(otherUrl, "{ activeOrganization { id } }", { headers: doomedHeaders }))).toBe(
      "API_KEY_INVALID",
    );
  });
});

/** A global id's database id. */
function decode(globalId: string) {
  return Buffer.from(globalId, "base64").toString().split(":").slice(1).join(":");
}
