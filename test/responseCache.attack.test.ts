// The response cache, attacked: every way a client can shape a request (whitespace, aliases,
// fragments, operation names, variables' key order, GET, persisted hashes, graphql-ws, another
// tenant's X-Organization-Id, ids of two tenants at once, huge or malformed variables), every
// change that should end a cached answer (leaving, deleting an organization, accepting an
// invitation, revoking a session, a profile change, a workflow archived or rolled back, a
// suggestion dismissed or applied, an integration tested, aliased and half-failing mutation
// batches), and Redis going away while a membership ends.
//
// "Stale" is measured against the same document under another operation name (its own cache
// key, so it runs): a cached answer must equal what the query returns when it runs.
import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { addMember, createOrg, errorCode, verifyEmail } from "./helpers/api.ts";
import { gql, wsClient, wsRequest } from "./helpers/client.ts";
import { recordBatch, scenario, suggestionsGenerate } from "./helpers/events.ts";
import { createUser, PASSWORD, type TestUser, uniqueEmail } from "./helpers/factories.ts";
import { type MailCatcher, startMailCatcher, tokenFrom } from "./helpers/mail.ts";
import { cacheCounts, modes } from "./helpers/responseCache.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";
import { until } from "./helpers/wait.ts";

type Json = Record<string, unknown>;

const hits = async (server: TestServer) => (await cacheCounts(server)).hit;

let freshCounter = 0;
/** A name no request used before: the document under it has a cache key of its own, so it runs. */
const freshName = () => `Fresh${Date.now().toString(36)}${freshCounter++}`;

/** `body` is everything after the operation name: `($id: ID!) { ... }` or `{ ... }`. */
function named(name: string, body: string) {
  return `query ${name}${body}`;
}

async function apiKey(url: string, user: TestUser, organizationId: string, role = "MEMBER") {
  const r = await gql<{ apiKeyCreate: { secret: string; apiKey: { id: string } } }>(
    url,
    "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { id } } }",
    { token: user.token, variables: { input: { organizationId, name: `key-${randomUUID()}`, role } } },
  );
  const created = r.data?.apiKeyCreate;
  if (!created) throw new Error(JSON.stringify(r.errors));
  return { id: created.apiKey.id, headers: { "x-api-key": created.secret } };
}

async function createWorkflow(url: string, user: TestUser, organizationId: string, name: string) {
  const r = await gql<{ workflowCreate: { id: string } }>(
    url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    {
      token: user.token,
      variables: { input: { organizationId, name, definition: { steps: [{ id: "pause", type: "delay", ms: 5 }] } } },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

async function login(url: string, email: string) {
  const r = await gql<{ authLogin: { accessToken: string } }>(
    url,
    "mutation($input: AuthLoginInput!) { authLogin(input: $input) { accessToken } }",
    { variables: { input: { email, password: PASSWORD } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.authLogin.accessToken;
}

function mustSucceed(r: { errors?: unknown[] }) {
  expect(r.errors).toBeUndefined();
}

describe.each(modes)("attacking the response cache ($mode)", ({ env }) => {
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

  /**
   * Reads `body` under a fixed operation name twice (the second from the cache: checked), and
   * returns a reader that asks it again and, beside it, the same document freshly run.
   */
  async function cachedRead<T = Json>(
    body: string,
    options: { token?: string; headers?: Record<string, string>; variables?: Json },
  ) {
    const name = freshName();
    const ask = async (operation: string) => {
      const r = await gql<T>(url, named(operation, body), options);
      expect(r.errors).toBeUndefined();
      return r.data;
    };
    const first = await ask(name);
    const before = await hits(server);
    expect(await ask(name)).toEqual(first);
    expect(await hits(server)).toBe(before + 1);
    return {
      first,
      again: async () => ({ cached: await ask(name), fresh: await ask(freshName()) }),
    };
  }

  // --- Keys: one caller's answer is never another's -------------------------------------

  it("document variants (whitespace, aliases, fragments, operation names) never cross callers", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const variants: { query: string; operationName?: string; pick: (d: Json) => unknown }[] = [
      { query: "{ viewer { email } }", pick: (d) => (d.viewer as Json).email },
      { query: "{\n  viewer\t{ email }\n}\n# comment", pick: (d) => (d.viewer as Json).email },
      { query: "{ v: viewer { e: email } }", pick: (d) => (d.v as Json).e },
      { query: "{ ...F } fragment F on Query { viewer { email } }", pick: (d) => (d.viewer as Json).email },
      { query: "{ viewer { ... on User { email } } }", pick: (d) => (d.viewer as Json).email },
      { query: "query Who { viewer { email } }", pick: (d) => (d.viewer as Json).email },
      {
        query: "query A { viewer { email } } query B { viewer { email } }",
        operationName: "B",
        pick: (d) => (d.viewer as Json).email,
      },
      {
        query: "query A { viewer { email } } query B { viewer { email } }",
        operationName: "A",
        pick: (d) => (d.viewer as Json).email,
      },
    ];
    const ask = async (who: TestUser, v: (typeof variants)[number]) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${who.token}` },
        body: JSON.stringify({ query: v.query, operationName: v.operationName }),
      });
      const body = (await response.json()) as { data?: Json; errors?: unknown };
      expect(body.errors).toBeUndefined();
      return v.pick(body.data as Json);
    };
    for (const v of variants) {
      expect(await ask(alice, v)).toBe(alice.email);
      expect(await ask(alice, v)).toBe(alice.email);
      expect(await ask(bob, v)).toBe(bob.email);
      expect(await ask(alice, v)).toBe(alice.email);
    }
    // Anonymous: never an answer made for someone.
    const anonymous = await gql(url, "{ viewer { email } }");
    expect(anonymous.data).toEqual({ viewer: null });
  });

  it("variables equal as JSON in another key order give the same, correct answer and never cross tenants", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    await recordBatch(url, alice, [
      { kind: "FILE_OPENED", filePath: "/k/a.py", tool: "vim" },
      { kind: "FILE_OPENED", filePath: "/k/b.txt", tool: "emacs" },
    ]);
    const query = `query($id: ID!, $f: EventFilter) { node(id: $id) { ... on Organization { events(first: 10, filter: $f) { totalCount } } } }`;
    const orders = [
      { id: alice.org.id, f: { kinds: ["FILE_OPENED"], tool: "vim" } },
      { f: { tool: "vim", kinds: ["FILE_OPENED"] }, id: alice.org.id },
    ];
    for (const variables of [...orders, ...orders]) {
      const r = await gql(url, query, { token: alice.token, variables });
      expect(r.data).toEqual({ node: { events: { totalCount: 1 } } });
      const other = await gql(url, query, { token: bob.token, variables });
      expect(other.data).toEqual({ node: null });
    }
  });

  it("X-Organization-Id of an organization the caller does not belong to stays NOT_FOUND, never a kept answer", async () => {
    const alice = await createUser(url);
    const team = await createOrg(url, alice.token, "Private team");
    const active = "{ activeOrganization { id name } }";
    for (let i = 0; i < 2; i++) {
      const own = await gql(url, active, { token: alice.token, headers: { "x-organization-id": team.id } });
      expect(own.data).toEqual({ activeOrganization: { id: team.id, name: "Private team" } });
    }
    const mallory = await createUser(url);
    const malloryKey = await apiKey(url, mallory, mallory.org.id);
    for (let i = 0; i < 3; i++) {
      const r = await gql(url, active, { token: mallory.token, headers: { "x-organization-id": team.id } });
      expect(errorCode(r)).toBe("NOT_FOUND");
      expect(r.data?.activeOrganization ?? null).toBeNull();
      // Other documents under the header: mallory's own answer, not alice's.
      const viewer = await gql(url, "{ viewer { email } }", {
        token: mallory.token,
        headers: { "x-organization-id": team.id },
      });
      expect(viewer.data).toEqual({ viewer: { email: mallory.email } });
      const node = await gql(url, "query($id: ID!) { node(id: $id) { id } }", {
        token: mallory.token,
        headers: { "x-organization-id": team.id },
        variables: { id: team.id },
      });
      expect(node.data).toEqual({ node: null });
      // An API key acts in its own organization whatever the header says.
      const keyed = await gql(url, active, { headers: { ...malloryKey.headers, "x-organization-id": team.id } });
      expect(keyed.data?.activeOrganization).toMatchObject({ id: mallory.org.id });
    }
  });

  it("an API key and its creator asking the same document each get their own answer", async () => {
    const alice = await createUser(url);
    const team = await createOrg(url, alice.token, "Keyed");
    const key = await apiKey(url, alice, team.id);
    const doc = "{ viewer { email } activeOrganization { id } }";
    for (let i = 0; i < 2; i++) {
      expect((await gql(url, doc, { headers: key.headers })).data).toEqual({
        viewer: null,
        activeOrganization: { id: team.id },
      });
      expect((await gql(url, doc, { token: alice.token })).data).toEqual({
        viewer: { email: alice.email },
        activeOrganization: { id: alice.org.id },
      });
    }
  });

  it("nodes(ids:) mixing two tenants' ids shows each caller only their own", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const query = "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Organization { name } } }";
    const ids = [alice.org.id, bob.org.id];
    for (let i = 0; i < 2; i++) {
      const a = await gql<{ nodes: ({ id: string } | null)[] }>(url, query, {
        token: alice.token,
        variables: { ids },
      });
      const b = await gql<{ nodes: ({ id: string } | null)[] }>(url, query, { token: bob.token, variables: { ids } });
      expect(a.data?.nodes.map((n) => n?.id ?? null)).toEqual([alice.org.id, null]);
      expect(b.data?.nodes.map((n) => n?.id ?? null)).toEqual([null, bob.org.id]);
    }
  });

  it("a hit carries the same data and its own cost extension as a run, even with JSON-breaking names", async () => {
    const alice = await createUser(url);
    // Quotes, braces and the text the hit's extensions are spliced after, astral and RTL characters.
    const name = 'x"}},"extensions":{"cost":0}} \u{1F600} \u202e \\"';
    const org = await createOrg(url, alice.token, "Splice Ltd");
    await createWorkflow(url, alice, org.id, name);
    const query = `query SpliceCheck { viewer { memberships { organization { name workflows(first: 5) { edges { node { id name } } } } } } }`;
    const post = async () => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${alice.token}` },
        body: JSON.stringify({ query }),
      });
      expect(response.headers.get("content-type")).toMatch(/^application\/json/);
      const text = await response.text();
      expect(Number(response.headers.get("content-length"))).toBe(Buffer.byteLength(text));
      return JSON.parse(text) as { data: Json; extensions: { cost: Json }; errors?: unknown };
    };
    const run = await post();
    expect(run.errors).toBeUndefined();
    const before = await hits(server);
    const hit = await post();
    expect(await hits(server)).toBe(before + 1);
    expect(hit.data).toEqual(run.data);
    expect(JSON.stringify(hit.data)).toContain(JSON.stringify(name).slice(1, -1));
    expect(Object.keys(hit)).toEqual(["data", "extensions"]);
    expect(Object.keys(hit.extensions.cost).sort()).toEqual(Object.keys(run.extensions.cost).sort());
    // Yoga's own path (GET) serializes the same hit from its parsed form.
    const get = await fetch(`${url}?query=${encodeURIComponent(query)}`, {
      headers: { authorization: `Bearer ${alice.token}` },
    });
    const viaGet = (await get.json()) as { data: Json; extensions: { cost: Json } };
    expect(await hits(server)).toBe(before + 2);
    expect(viaGet.data).toEqual(run.data);
    expect(viaGet.extensions.cost).toBeDefined();
  });

  it("GET and POST share an entry per caller only", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const query = "{ viewer { email } }";
    const get = async (token?: string) => {
      const response = await fetch(`${url}?query=${encodeURIComponent(query)}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      return ((await response.json()) as { data?: Json }).data;
    };
    expect((await gql(url, query, { token: alice.token })).data).toEqual({ viewer: { email: alice.email } });
    const before = await hits(server);
    expect(await get(alice.token)).toEqual({ viewer: { email: alice.email } });
    expect(await hits(server)).toBe(before + 1);
    expect(await get(bob.token)).toEqual({ viewer: { email: bob.email } });
    expect(await get()).toEqual({ viewer: null });
    expect((await gql(url, query, { token: bob.token })).data).toEqual({ viewer: { email: bob.email } });
  });

  it("a persisted query's hash and its text never hand one caller's answer to another", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const query = `{ viewer { email } persisted: activeOrganization { id } } # ${randomUUID()}`;
    const sha256Hash = createHash("sha256").update(query).digest("hex");
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const post = async (body: Json, token: string) => {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });
      return (await response.json()) as { data?: Json; errors?: { extensions?: Json }[] };
    };
    // Registered with its text by alice, then named by hash alone by both.
    expect((await post({ query, extensions }, alice.token)).data).toEqual({
      viewer: { email: alice.email },
      persisted: { id: alice.org.id },
    });
    for (let i = 0; i < 2; i++) {
      expect((await post({ extensions }, alice.token)).data).toEqual({
        viewer: { email: alice.email },
        persisted: { id: alice.org.id },
      });
      expect((await post({ extensions }, bob.token)).data).toEqual({
        viewer: { email: bob.email },
        persisted: { id: bob.org.id },
      });
      expect((await post({ query }, bob.token)).data).toEqual({
        viewer: { email: bob.email },
        persisted: { id: bob.org.id },
      });
    }
  });

  it("graphql-ws queries never get another caller's answer, nor one outliving a removed membership", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Over WS");
    const member = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const query = "query($id: ID!) { node(id: $id) { ... on Organization { name viewerRole } } viewer { email } }";
    const variables = { id: team.id };
    // Kept over HTTP by the owner.
    for (let i = 0; i < 2; i++) await gql(url, query, { token: owner.token, variables });
    const client = wsClient(server.wsUrl, { authorization: `Bearer ${member.token}` });
    onTestFinished(() => client.dispose());
    for (let i = 0; i < 2; i++) {
      expect((await wsRequest(client, query, variables)).data).toEqual({
        node: { name: "Over WS", viewerRole: "ADMIN" },
        viewer: { email: member.email },
      });
    }
    const removed = await gql(url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    mustSucceed(removed);
    expect((await wsRequest(client, query, variables)).data).toEqual({
      node: null,
      viewer: { email: member.email },
    });
    expect((await gql(url, query, { token: owner.token, variables })).data).toEqual({
      node: { name: "Over WS", viewerRole: "OWNER" },
      viewer: { email: owner.email },
    });
  });

  it("lone surrogates in variables are refused every time, and never served from an entry", async () => {
    const [alice, bob] = [await createUser(url), await createUser(url)];
    const query = `query($f: EventFilter) { activeOrganization { events(first: 1, filter: $f) { totalCount } } }`;
    const send = async (token: string, raw: string) => {
      // Written by hand: JSON.stringify would escape the lone halves the same way anyway.
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: `{"query":${JSON.stringify(query)},"variables":{"f":{"search":"${raw}"}}}`,
      });
      return (await response.json()) as { data?: Json; errors?: { extensions?: Json }[] };
    };
    const before = await cacheCounts(server);
    for (const raw of ["\\ud800", "\\udc00", "x\\udbff", "\\ud800\\ud800"]) {
      for (const who of [alice, bob, alice]) {
        const r = await send(who.token, raw);
        expect(r.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
        expect(r.data ?? null).toBeNull();
      }
    }
    expect((await cacheCounts(server)).hit).toBe(before.hit);
    // A well-formed pair is an ordinary answer, kept per caller.
    for (const who of [alice, bob, alice])
      expect((await send(who.token, "\\ud83d\\ude00")).data).toEqual({
        activeOrganization: { events: { totalCount: 0 } },
      });
  });

  it("huge variables are keyed whole: a near-identical one is not answered from the other's entry", async () => {
    const alice = await createUser(url);
    await recordBatch(url, alice, [{ kind: "FILE_OPENED", filePath: "/h/needle.py", tool: "vim" }]);
    const query = `query($f: EventFilter) { activeOrganization { events(first: 1, filter: $f) { totalCount } } }`;
    const count = (r: { data?: Json | null }) =>
      ((r.data?.activeOrganization as Json | undefined)?.events as Json | undefined)?.totalCount;
    // 500 KB of an extra variable the operation does not declare; only the filter decides.
    const pad = "p".repeat(500_000);
    const asks = [
      { f: { search: "needle" }, pad },
      { f: { search: "haystack" }, pad },
      { f: { search: "needle" }, pad: `${pad.slice(0, -1)}q` },
      { f: { search: "haystack" }, pad: `${pad.slice(0, -1)}q` },
    ];
    for (let i = 0; i < 2; i++) {
      const counts = [];
      for (const variables of asks) counts.push(count(await gql(url, query, { token: alice.token, variables })));
      expect(counts).toEqual([1, 0, 1, 0]);
    }
    // A search over its limit is refused each time, never answered from an entry.
    for (let i = 0; i < 2; i++) {
      const refused = await gql(url, query, { token: alice.token, variables: { f: { search: "n".repeat(200_000) } } });
      expect(errorCode(refused)).toBe("BAD_USER_INPUT");
    }
  });

  it("a superuser's answers are never kept, nor is a kept answer served to them", async () => {
    const alice = await createUser(url);
    const query = "{ viewer { email } activeOrganization { id } }";
    // Kept for alice's first session.
    for (let i = 0; i < 2; i++) await gql(url, query, { token: alice.token });
    await server.app.runtime.db.prisma.user.update({ where: { email: alice.email }, data: { isSuperuser: true } });
    const operator = await login(url, alice.email);
    const before = await cacheCounts(server);
    for (let i = 0; i < 3; i++)
      expect((await gql(url, query, { token: operator })).data).toEqual({
        viewer: { email: alice.email },
        activeOrganization: { id: alice.org.id },
      });
    const after = await cacheCounts(server);
    expect(after.hit).toBe(before.hit);
    expect(after.miss).toBe(before.miss);
  });

  // --- Lifetimes: an answer dies with what it showed ------------------------------------

  it("forgets a member's organization when they leave it (organizationLeave)", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Left");
    const member = await addMember(url, mail, owner.token, team.id, "MEMBER");
    const memberships = await cachedRead<{ viewer: { memberships: { organization: { id: string } }[] } }>(
      "{ viewer { memberships { organization { id } } } }",
      { token: member.token },
    );
    expect(memberships.first?.viewer.memberships.map((m) => m.organization.id)).toContain(team.id);
    const org = await cachedRead("($id: ID!) { node(id: $id) { ... on Organization { name } } }", {
      token: member.token,
      variables: { id: team.id },
    });
    expect(org.first).toEqual({ node: { name: "Left" } });
    const left = await gql(url, "mutation($id: ID!) { organizationLeave(id: $id) }", {
      token: member.token,
      variables: { id: team.id },
    });
    mustSucceed(left);
    const now = await memberships.again();
    expect(now.cached).toEqual(now.fresh);
    expect(now.cached?.viewer.memberships.map((m) => m.organization.id)).not.toContain(team.id);
    const node = await org.again();
    expect(node.cached).toEqual({ node: null });
  });

  it("forgets a deleted organization for every member (organizationDelete)", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Doomed");
    await createWorkflow(url, owner, team.id, "doomed flow");
    const member = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const memberships = await cachedRead<{ viewer: { memberships: { organization: { id: string } }[] } }>(
      "{ viewer { memberships { organization { id name } } } }",
      { token: member.token },
    );
    const org = await cachedRead(
      "($id: ID!) { node(id: $id) { ... on Organization { name workflows(first: 5) { edges { node { name } } } } } }",
      { token: member.token, variables: { id: team.id } },
    );
    const ownerView = await cachedRead("($id: ID!) { node(id: $id) { id } }", {
      token: owner.token,
      variables: { id: team.id },
    });
    expect(ownerView.first).toEqual({ node: { id: team.id } });
    const deleted = await gql(url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
      token: owner.token,
      variables: { id: team.id },
    });
    mustSucceed(deleted);
    const m = await memberships.again();
    expect(m.cached).toEqual(m.fresh);
    expect(m.cached?.viewer.memberships.map((x) => x.organization.id)).not.toContain(team.id);
    expect((await org.again()).cached).toEqual({ node: null });
    expect((await ownerView.again()).cached).toEqual({ node: null });
  });

  it("shows an organization joined by accepting an invitation in viewer { memberships }", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Joined");
    const email = uniqueEmail("joiner");
    const joiner = await createUser(url, email);
    await verifyEmail(url, mail, email);
    const memberships = await cachedRead<{ viewer: { memberships: { organization: { id: string } }[] } }>(
      "{ viewer { memberships { role organization { id } } } }",
      { token: joiner.token },
    );
    const org = await cachedRead("($id: ID!) { node(id: $id) { ... on Organization { name viewerRole } } }", {
      token: joiner.token,
      variables: { id: team.id },
    });
    expect(org.first).toEqual({ node: null });
    const invited = await gql(
      url,
      "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }",
      {
        token: owner.token,
        variables: { input: { organizationId: team.id, email, role: "VIEWER" } },
      },
    );
    mustSucceed(invited);
    const message = await mail.next(email, /invited/i);
    const accepted = await gql(url, "mutation($t: String!) { organizationInviteAccept(token: $t) { id } }", {
      token: joiner.token,
      variables: { t: tokenFrom(message) },
    });
    mustSucceed(accepted);
    const m = await memberships.again();
    expect(m.cached).toEqual(m.fresh);
    expect(m.cached?.viewer.memberships.map((x) => x.organization.id)).toContain(team.id);
    expect((await org.again()).cached).toEqual({ node: { name: "Joined", viewerRole: "VIEWER" } });
  });

  it("never serves a session revoked from another session, nor after a password change", async () => {
    const alice = await createUser(url);
    const second = await login(url, alice.email);
    const third = await login(url, alice.email);
    const viewer = "{ viewer { email sessions { current } } }";
    for (const token of [second, second, third, third])
      expect((await gql(url, viewer, { token })).data?.viewer).toMatchObject({ email: alice.email });
    const sessions = await gql<{ viewer: { sessions: { id: string; current: boolean }[] } }>(
      url,
      "{ viewer { sessions { id current } } }",
      { token: second },
    );
    const secondId = sessions.data?.viewer.sessions.find((s) => s.current)?.id;
    expect(secondId).toBeDefined();
    mustSucceed(
      await gql(url, "mutation($id: ID!) { sessionRevoke(id: $id) }", {
        token: alice.token,
        variables: { id: secondId },
      }),
    );
    expect(errorCode(await gql(url, viewer, { token: second }))).toBe("SESSION_REVOKED");
    const changed = await gql(
      url,
      "mutation($a: String!, $b: String!) { passwordChange(currentPassword: $a, newPassword: $b) }",
      {
        token: alice.token,
        variables: { a: PASSWORD, b: `${PASSWORD} again` },
      },
    );
    mustSucceed(changed);
    expect(errorCode(await gql(url, viewer, { token: third }))).toBe("SESSION_REVOKED");
  });

  it("an API key's kept answer ends when its creator is removed from the organization", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Key owner");
    const admin = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const key = await apiKey(url, admin, team.id, "ADMIN");
    const query = "{ activeOrganization { id name } }";
    for (let i = 0; i < 2; i++)
      expect((await gql(url, query, { headers: key.headers })).data).toEqual({
        activeOrganization: { id: team.id, name: "Key owner" },
      });
    mustSucceed(
      await gql(url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
        token: owner.token,
        variables: { id: admin.membershipId },
      }),
    );
    const after = await gql(url, query, { headers: key.headers });
    expect(after.data?.activeOrganization ?? null).toBeNull();
    expect(errorCode(after)).toBeDefined();
  });

  // --- Mutations: every change reaches what it touched ----------------------------------

  it("a batch of aliased mutations in two organizations reaches both", async () => {
    const owner = await createUser(url);
    const [one, two] = [await createOrg(url, owner.token, "One"), await createOrg(url, owner.token, "Two")];
    const m1 = await addMember(url, mail, owner.token, one.id, "MEMBER");
    const m2 = await addMember(url, mail, owner.token, two.id, "MEMBER");
    const body =
      "($id: ID!) { node(id: $id) { ... on Organization { name workflows(first: 5) { edges { node { name } } } } } }";
    const r1 = await cachedRead(body, { token: m1.token, variables: { id: one.id } });
    const r2 = await cachedRead(body, { token: m2.token, variables: { id: two.id } });
    const steps = { steps: [{ id: "p", type: "delay", ms: 5 }] };
    const batch = await gql(
      url,
      `mutation($a: WorkflowCreateInput!, $b: WorkflowCreateInput!, $u: OrganizationUpdateInput!) {
        first: workflowCreate(input: $a) { id }
        second: workflowCreate(input: $b) { id }
        rename: organizationUpdate(input: $u) { name }
      }`,
      {
        token: owner.token,
        variables: {
          a: { organizationId: one.id, name: "in one", definition: steps },
          b: { organizationId: two.id, name: "in two", definition: steps },
          u: { id: two.id, name: "Two renamed" },
        },
      },
    );
    mustSucceed(batch);
    const n1 = await r1.again();
    const n2 = await r2.again();
    expect(n1.cached).toEqual(n1.fresh);
    expect(n2.cached).toEqual(n2.fresh);
    expect(n2.cached).toEqual({ node: { name: "Two renamed", workflows: { edges: [{ node: { name: "in two" } }] } } });
  });

  it("a mutation that fails half-way still ends the answers its committed half touched", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Half");
    const member = await addMember(url, mail, owner.token, team.id, "MEMBER");
    const org = await cachedRead("($id: ID!) { node(id: $id) { ... on Organization { name } } }", {
      token: member.token,
      variables: { id: team.id },
    });
    const r = await gql(
      url,
      `mutation($u: OrganizationUpdateInput!, $bad: ID!) {
        rename: organizationUpdate(input: $u) { name }
        fail: membershipRemove(id: $bad)
        never: organizationUpdate(input: { id: $bad, name: "never" }) { name }
      }`,
      {
        token: owner.token,
        variables: { u: { id: team.id, name: "Half renamed" }, bad: member.membershipId.replace(/.$/, "A") },
      },
    );
    expect(r.errors?.length).toBeGreaterThan(0);
    const now = await org.again();
    expect(now.fresh).toEqual({ node: { name: "Half renamed" } });
    expect(now.cached).toEqual(now.fresh);
  });

  it("another member sees a workflow archived (workflowArchive)", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Archive");
    const workflowId = await createWorkflow(url, owner, team.id, "to archive");
    const member = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const list = await cachedRead(
      "($id: ID!) { node(id: $id) { ... on Organization { workflows(first: 10) { edges { node { name status } } } } } }",
      { token: member.token, variables: { id: team.id } },
    );
    const archived = await gql<{ workflowArchive: { status: string } }>(
      url,
      "mutation($id: ID!) { workflowArchive(id: $id) { status } }",
      { token: owner.token, variables: { id: workflowId } },
    );
    expect(archived.data?.workflowArchive.status).toBe("ARCHIVED");
    const now = await list.again();
    expect(now.fresh).not.toEqual(list.first);
    expect(now.cached).toEqual(now.fresh);
  });

  it("another member sees a workflow rolled back (workflowRollback)", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Rollback");
    const workflowId = await createWorkflow(url, owner, team.id, "version one");
    mustSucceed(
      await gql(url, "mutation($input: WorkflowUpdateInput!) { workflowUpdate(input: $input) { id } }", {
        token: owner.token,
        variables: { input: { id: workflowId, name: "version two" } },
      }),
    );
    const member = await addMember(url, mail, owner.token, team.id, "MEMBER");
    const read = await cachedRead<{ node: { name: string; currentVersion: number } }>(
      "($id: ID!) { node(id: $id) { ... on Workflow { name currentVersion } } }",
      { token: member.token, variables: { id: workflowId } },
    );
    expect(read.first?.node.name).toBe("version two");
    mustSucceed(
      await gql(url, "mutation($id: ID!) { workflowRollback(id: $id, version: 1) { name } }", {
        token: owner.token,
        variables: { id: workflowId },
      }),
    );
    const now = await read.again();
    expect(now.fresh?.node.name).toBe("version one");
    expect(now.cached).toEqual(now.fresh);
  });

  it("another member sees a member's profile change (viewerUpdate)", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Profiles");
    const member = await addMember(url, mail, owner.token, team.id, "MEMBER");
    const members = await cachedRead(
      "($id: ID!) { node(id: $id) { ... on Organization { members(first: 10) { edges { node { role user { email fullName } } } } } } }",
      { token: owner.token, variables: { id: team.id } },
    );
    mustSucceed(
      await gql(url, "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { fullName } }", {
        token: member.token,
        variables: { input: { fullName: "Renamed Member" } },
      }),
    );
    const now = await members.again();
    expect(JSON.stringify(now.fresh)).toContain("Renamed Member");
    expect(now.cached).toEqual(now.fresh);
  });

  it("the caller's own profile and email verification show at once in viewer", async () => {
    const email = uniqueEmail("self");
    const alice = await createUser(url, email);
    const read = await cachedRead("{ viewer { email fullName username emailVerified } }", { token: alice.token });
    mustSucceed(
      await gql(url, "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { id } }", {
        token: alice.token,
        variables: { input: { fullName: "Alice Renamed", username: `u${randomUUID().slice(0, 8)}` } },
      }),
    );
    await verifyEmail(url, mail, email);
    const now = await read.again();
    expect(now.fresh).toMatchObject({ viewer: { fullName: "Alice Renamed", emailVerified: true } });
    expect(now.cached).toEqual(now.fresh);
  });

  it("a member deleting their account leaves the member list every other member reads", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Deleted account");
    const member = await addMember(url, mail, owner.token, team.id, "MEMBER");
    const members = await cachedRead(
      "($id: ID!) { node(id: $id) { ... on Organization { members(first: 10) { totalCount edges { node { user { email } } } } } } }",
      { token: owner.token, variables: { id: team.id } },
    );
    expect(JSON.stringify(members.first)).toContain(member.email);
    mustSucceed(
      await gql(url, "mutation($input: ViewerDeleteInput!) { viewerDelete(input: $input) { deletedOrganizations } }", {
        token: member.token,
        variables: { input: { password: PASSWORD } },
      }),
    );
    const now = await members.again();
    expect(JSON.stringify(now.fresh)).not.toContain(member.email);
    expect(now.cached).toEqual(now.fresh);
  });

  it("an API key sees its creator's suggestion dismissed (suggestionDismiss)", async () => {
    const alice = await createUser(url);
    await recordBatch(url, alice, scenario("dismiss"));
    const [suggestion] = await suggestionsGenerate(url, alice);
    if (!suggestion) throw new Error("no suggestion");
    const key = await apiKey(url, alice, alice.org.id);
    const read = await cachedRead(
      "{ activeOrganization { suggestions(first: 10, filter: { states: [OPEN, DISMISSED, APPLIED] }) { edges { node { id state } } } } }",
      { headers: key.headers },
    );
    expect(JSON.stringify(read.first)).toContain(suggestion.id);
    mustSucceed(
      await gql(url, "mutation($id: ID!) { suggestionDismiss(id: $id) { state } }", {
        token: alice.token,
        variables: { id: suggestion.id },
      }),
    );
    const now = await read.again();
    expect(JSON.stringify(now.fresh)).toContain("DISMISSED");
    expect(now.cached).toEqual(now.fresh);
  });

  it("an API key sees the workflow its creator made by applying a suggestion (suggestionApply)", async () => {
    const alice = await createUser(url);
    await recordBatch(url, alice, scenario("apply"));
    const [suggestion] = await suggestionsGenerate(url, alice);
    if (!suggestion) throw new Error("no suggestion");
    const key = await apiKey(url, alice, alice.org.id);
    const read = await cachedRead(
      "{ activeOrganization { workflows(first: 10) { edges { node { name status } } } } }",
      {
        headers: key.headers,
      },
    );
    expect(read.first).toEqual({ activeOrganization: { workflows: { edges: [] } } });
    mustSucceed(
      await gql(url, "mutation($id: ID!) { suggestionApply(id: $id) { workflow { id } } }", {
        token: alice.token,
        variables: { id: suggestion.id },
      }),
    );
    const now = await read.again();
    expect(now.fresh).not.toEqual(read.first);
    expect(now.cached).toEqual(now.fresh);
  });

  it("another member sees an integration's last error recorded by integrationTest", async () => {
    const owner = await createUser(url);
    const team = await createOrg(url, owner.token, "Integrations");
    const created = await gql<{ integrationCreate: { id: string } }>(
      url,
      "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
      {
        token: owner.token,
        variables: {
          input: {
            organizationId: team.id,
            connector: "http",
            name: "unreachable",
            // Not on the allow-list: the test call fails, and the failure is recorded.
            config: { baseUrl: "http://127.0.0.1:9/hook" },
            secrets: {},
          },
        },
      },
    );
    const integrationId = created.data?.integrationCreate.id;
    if (!integrationId) throw new Error(JSON.stringify(created.errors));
    const member = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const read = await cachedRead<{ node: { lastError: string | null } }>(
      "($id: ID!) { node(id: $id) { ... on Integration { name lastError } } }",
      { token: member.token, variables: { id: integrationId } },
    );
    expect(read.first?.node.lastError).toBeNull();
    const tested = await gql<{ integrationTest: { ok: boolean } }>(
      url,
      "mutation($id: ID!) { integrationTest(id: $id) { ok } }",
      { token: owner.token, variables: { id: integrationId } },
    );
    expect(tested.data?.integrationTest.ok).toBe(false);
    const now = await read.again();
    expect(now.fresh?.node.lastError).toBeTruthy();
    expect(now.cached).toEqual(now.fresh);
  });
});

describe.each(modes)("the response cache's size bound ($mode)", ({ env }) => {
  const MAX = 250;
  let server: TestServer;
  let url: string;
  beforeAll(async () => {
    server = await startServer({ ...env(), RESPONSE_CACHE_MAX_ENTRY_BYTES: String(MAX) });
    url = server.graphqlUrl;
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function keptOnSecondAsk(token: string, query: string) {
    const first = await gql(url, query, { token });
    expect(first.errors).toBeUndefined();
    const before = await hits(server);
    await gql(url, query, { token });
    return { kept: (await hits(server)) > before, bytes: Buffer.byteLength(JSON.stringify({ data: first.data })) };
  }

  it("keeps a small answer, and not an ASCII answer over RESPONSE_CACHE_MAX_ENTRY_BYTES", async () => {
    const alice = await createUser(url);
    expect((await keptOnSecondAsk(alice.token, "{ viewer { id } }")).kept).toBe(true);
    mustSucceed(
      await gql(url, "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { id } }", {
        token: alice.token,
        variables: { input: { fullName: "x".repeat(200) } },
      }),
    );
    const big = await keptOnSecondAsk(alice.token, "{ viewer { fullName email } }");
    expect(big.bytes).toBeGreaterThan(MAX);
    expect(big.kept).toBe(false);
  });

  it("does not keep an answer over RESPONSE_CACHE_MAX_ENTRY_BYTES bytes made of multi-byte characters", async () => {
    const alice = await createUser(url);
    mustSucceed(
      await gql(url, "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { id } }", {
        token: alice.token,
        // 100 emoji: 200 UTF-16 units, 400 bytes of UTF-8.
        variables: { input: { fullName: "😀".repeat(100) } },
      }),
    );
    const big = await keptOnSecondAsk(alice.token, "{ viewer { fullName } }");
    expect(big.bytes).toBeGreaterThan(MAX);
    expect(big.kept).toBe(false);
  });
});

describe.runIf(services)("the response cache when Redis goes away as a membership ends", () => {
  it("never serves the removed member's kept answer once Redis is back", async () => {
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
    const team = await createOrg(url, owner.token, "Outage");
    const member = await addMember(url, mail, owner.token, team.id, "ADMIN");
    const query = "query($id: ID!) { node(id: $id) { ... on Organization { name viewerRole } } }";
    const read = async () =>
      (await gql<{ node: unknown }>(url, query, { token: member.token, variables: { id: team.id } })).data?.node;
    expect(await read()).toEqual({ name: "Outage", viewerRole: "ADMIN" });
    const before = await hits(server);
    expect(await read()).toEqual({ name: "Outage", viewerRole: "ADMIN" });
    expect(await hits(server)).toBe(before + 1);

    await proxy.cut();
    const removed = await gql(url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(removed.errors).toBeUndefined();
    expect(await read()).toBeNull();
    await proxy.restore();
    // Until the bump goes through nothing is served from the cache; then a fresh entry is.
    const after = await hits(server);
    const seen = await until(
      async () => ({ node: await read(), hits: await hits(server) }),
      (r) => r.node !== null || r.hits > after + 1,
    );
    expect(seen.node).toBeNull();
  });
});
