// Organizations, members, invitations, roles and API keys: who may do what.
import { beforeAll, describe, expect, it } from "vitest";
import { addMember, createOrg, errorCode, type Role, verifyEmail } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { tokenFrom } from "./helpers/mail.ts";
import { useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail();

describe("organizations", () => {
  it("creates with a unique slug from the name, lists mine, and makes the creator owner", async () => {
    const alice = await createUser(suite.url);
    const first = await createOrg(suite.url, alice.token, "Data Wranglers!");
    const second = await createOrg(suite.url, alice.token, "Data Wranglers!");
    expect(first.slug).toMatch(/^data-wranglers(-\d+)?$/);
    expect(second.slug).toBe(first.slug.replace(/(-\d+)?$/, (m) => `-${Number(m.slice(1) || 0) + 1}`));
    const mine = await gql<{
      organizations: { edges: { node: { id: string; viewerRole: string; personal: boolean } }[] };
    }>(suite.url, "{ organizations(first: 10) { edges { node { id viewerRole personal } } } }", { token: alice.token });
    expect(mine.data?.organizations.edges.map((e) => e.node)).toEqual([
      { id: alice.org.id, viewerRole: "OWNER", personal: true },
      { id: first.id, viewerRole: "OWNER", personal: false },
      { id: second.id, viewerRole: "OWNER", personal: false },
    ]);
  });

  it("invites by email; only the invited address can accept, once", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token);
    const bob = await addMember(suite.url, suite.mail, alice.token, org.id, "MEMBER");
    const members = await gql<{
      node: { members: { totalCount: number; edges: { node: { role: string; user: { email: string } } }[] } };
    }>(
      suite.url,
      `{ node(id: "${org.id}") { ... on Organization { members(first: 10) { totalCount edges { node { role user { email } } } } } } }`,
      { token: bob.token },
    );
    expect(members.data?.node.members.totalCount).toBe(2);
    expect(members.data?.node.members.edges.map((e) => [e.node.user.email, e.node.role]).sort()).toEqual(
      [
        [alice.email, "OWNER"],
        [bob.email, "MEMBER"],
      ].sort(),
    );

    // An invitation for carol cannot be used by mallory, and works once for carol.
    const carolEmail = `carol-${Date.now()}@example.test`;
    await gql(suite.url, "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }", {
      token: alice.token,
      variables: { input: { organizationId: org.id, email: carolEmail, role: "VIEWER" } },
    });
    const link = await suite.mail.next(carolEmail);
    const token = tokenFrom(link);
    const accept = "mutation($t: String!) { organizationInviteAccept(token: $t) { role } }";
    const mallory = await createUser(suite.url);
    expect(errorCode(await gql(suite.url, accept, { token: mallory.token, variables: { t: token } }))).toBe(
      "FORBIDDEN",
    );
    const carol = await createUser(suite.url, carolEmail);
    // Until the address is proven, the invitation cannot be used.
    expect(errorCode(await gql(suite.url, accept, { token: carol.token, variables: { t: token } }))).toBe("FORBIDDEN");
    await verifyEmail(suite.url, suite.mail, carolEmail);
    expect((await gql(suite.url, accept, { token: carol.token, variables: { t: token } })).data).toEqual({
      organizationInviteAccept: { role: "VIEWER" },
    });
    expect(errorCode(await gql(suite.url, accept, { token: carol.token, variables: { t: token } }))).toBe(
      "INVITE_INVALID",
    );
  });

  it("revokes an invitation so that its link no longer works", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Changed mind");
    const email = `revoked-${Date.now()}@example.test`;
    const invite = await gql<{ organizationInvite: { id: string } }>(
      suite.url,
      "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }",
      { token: alice.token, variables: { input: { organizationId: org.id, email, role: "MEMBER" } } },
    );
    const link = await suite.mail.next(email);
    const revoked = await gql(suite.url, "mutation($id: ID!) { organizationInviteRevoke(id: $id) { id } }", {
      token: alice.token,
      variables: { id: invite.data!.organizationInvite.id },
    });
    expect(revoked.errors).toBeUndefined();
    const invited = await createUser(suite.url, email);
    const accept = await gql(suite.url, "mutation($t: String!) { organizationInviteAccept(token: $t) { id } }", {
      token: invited.token,
      variables: { t: tokenFrom(link) },
    });
    expect(errorCode(accept)).toBe("INVITE_INVALID");
    const open = await gql(
      suite.url,
      `{ node(id: "${org.id}") { ... on Organization { invites(first: 5) { edges { node { id } } } } } }`,
      { token: alice.token },
    );
    expect(open.data).toEqual({ node: { invites: { edges: [] } } });
  });

  it("removes a member, who then no longer sees the organization", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Pruned");
    const bob = await addMember(suite.url, suite.mail, alice.token, org.id, "MEMBER");
    expect(
      (
        await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
          token: alice.token,
          variables: { id: bob.membershipId },
        })
      ).errors,
    ).toBeUndefined();
    expect((await gql(suite.url, `{ node(id: "${org.id}") { id } }`, { token: bob.token })).data).toEqual({
      node: null,
    });
  });

  it("shows a co-member's profile but never their other organizations", async () => {
    const alice = await createUser(suite.url);
    const shared = await createOrg(suite.url, alice.token, "Shared");
    await createOrg(suite.url, alice.token, "Alice only");
    const bob = await addMember(suite.url, suite.mail, alice.token, shared.id, "MEMBER");
    const profile = await gql(suite.url, `{ node(id: "${alice.user.id}") { ... on User { email } } }`, {
      token: bob.token,
    });
    expect(profile.data).toEqual({ node: { email: alice.email } });
    const memberships = await gql(
      suite.url,
      `{ node(id: "${alice.user.id}") { ... on User { memberships { organization { id } } } } }`,
      {
        token: bob.token,
      },
    );
    expect(errorCode(memberships)).toBe("FORBIDDEN");
    expect(JSON.stringify(memberships.data)).not.toContain(shared.id);
  });
});

describe("roles", () => {
  let owner: TestUser;
  let orgId: string;
  const users = {} as Record<Role, TestUser & { membershipId?: string }>;
  beforeAll(async () => {
    owner = await createUser(suite.url);
    orgId = (await createOrg(suite.url, owner.token, "Role Matrix")).id;
    users.OWNER = owner;
    for (const role of ["ADMIN", "MEMBER", "VIEWER"] as const)
      users[role] = await addMember(suite.url, suite.mail, owner.token, orgId, role);
  });

  const actions: Record<string, (token: string) => Promise<{ errors?: { extensions?: Record<string, unknown> }[] }>> = {
    "read the organization": (token) =>
      gql(suite.url, `{ node(id: "${orgId}") { id } }`, { token }).then((r) =>
        r.data?.node ? r : { errors: [{ extensions: { code: "NOT_FOUND" } }] },
      ),
    "update the organization": (token) =>
      gql(suite.url, "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
        token,
        variables: { input: { id: orgId, description: "changed" } },
      }),
    "invite a member": (token) =>
      gql(suite.url, "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }", {
        token,
        variables: { input: { organizationId: orgId, email: `x-${Math.random()}@example.test`, role: "VIEWER" } },
      }),
    "create an API key": (token) =>
      gql(suite.url, "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }", {
        token,
        variables: { input: { organizationId: orgId, name: "k", role: "VIEWER" } },
      }),
    "read the audit log": (token) =>
      gql(
        suite.url,
        `{ node(id: "${orgId}") { ... on Organization { auditLogs(first: 1) { edges { node { id } } } } } }`,
        {
          token,
        },
      ),
    "list API keys": (token) =>
      gql(
        suite.url,
        `{ node(id: "${orgId}") { ... on Organization { apiKeys(first: 1) { edges { node { id } } } } } }`,
        {
          token,
        },
      ),
  };
  const allowed: Record<string, Role[]> = {
    "read the organization": ["OWNER", "ADMIN", "MEMBER", "VIEWER"],
    "update the organization": ["OWNER", "ADMIN"],
    "invite a member": ["OWNER", "ADMIN"],
    "create an API key": ["OWNER", "ADMIN"],
    "read the audit log": ["OWNER", "ADMIN"],
    "list API keys": ["OWNER", "ADMIN"],
  };

  for (const [action, run] of Object.entries(actions)) {
    for (const role of ["OWNER", "ADMIN", "MEMBER", "VIEWER"] as const) {
      const may = allowed[action]?.includes(role);
      it(`${role.toLowerCase()} ${may ? "may" : "may not"} ${action}`, async () => {
        const result = await run(users[role].token);
        if (may) expect(result.errors).toBeUndefined();
        else expect(errorCode(result)).toBe("FORBIDDEN");
      });
    }
  }

  it("only an owner deletes the organization, grants ownership, or changes an owner's role", async () => {
    const org = (await createOrg(suite.url, owner.token, "Deletable")).id;
    const admin = await addMember(suite.url, suite.mail, owner.token, org, "ADMIN");
    const member = await addMember(suite.url, suite.mail, owner.token, org, "MEMBER");
    const setRole = "mutation($id: ID!, $role: OrgRole!) { membershipUpdateRole(id: $id, role: $role) { role } }";
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
          token: admin.token,
          variables: { id: org },
        }),
      ),
    ).toBe("FORBIDDEN");
    expect(
      errorCode(
        await gql(suite.url, setRole, { token: admin.token, variables: { id: member.membershipId, role: "OWNER" } }),
      ),
    ).toBe("FORBIDDEN");
    expect(
      (await gql(suite.url, setRole, { token: admin.token, variables: { id: member.membershipId, role: "VIEWER" } }))
        .data,
    ).toEqual({ membershipUpdateRole: { role: "VIEWER" } });
    expect(
      (await gql(suite.url, setRole, { token: owner.token, variables: { id: admin.membershipId, role: "OWNER" } }))
        .data,
    ).toEqual({ membershipUpdateRole: { role: "OWNER" } });
    expect(
      (
        await gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
          token: admin.token,
          variables: { id: org },
        })
      ).data,
    ).toEqual({ organizationDelete: org });
    expect((await gql(suite.url, `{ node(id: "${org}") { id } }`, { token: owner.token })).data).toEqual({
      node: null,
    });
  });

  it("keeps a last owner: no leaving, no demotion, no removal, until another owner exists", async () => {
    const org = (await createOrg(suite.url, owner.token, "Kept")).id;
    const ownMembership = (
      await gql<{ node: { members: { edges: { node: { id: string } }[] } } }>(
        suite.url,
        `{ node(id: "${org}") { ... on Organization { members(first: 1) { edges { node { id } } } } } }`,
        { token: owner.token },
      )
    ).data!.node.members.edges[0]!.node.id;
    const leave = "mutation($id: ID!) { organizationLeave(id: $id) }";
    expect(errorCode(await gql(suite.url, leave, { token: owner.token, variables: { id: org } }))).toBe("LAST_OWNER");
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { membershipUpdateRole(id: $id, role: ADMIN) { role } }", {
          token: owner.token,
          variables: { id: ownMembership },
        }),
      ),
    ).toBe("LAST_OWNER");
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
          token: owner.token,
          variables: { id: ownMembership },
        }),
      ),
    ).toBe("LAST_OWNER");
    const other = await addMember(suite.url, suite.mail, owner.token, org, "OWNER");
    expect((await gql(suite.url, leave, { token: owner.token, variables: { id: org } })).data).toEqual({
      organizationLeave: org,
    });
    expect((await gql(suite.url, `{ node(id: "${org}") { id } }`, { token: other.token })).data).toEqual({
      node: { id: org },
    });
  });

  it("lets nobody leave or delete a personal organization", async () => {
    const u = await createUser(suite.url);
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { organizationLeave(id: $id) }", {
          token: u.token,
          variables: { id: u.org.id },
        }),
      ),
    ).toBe("PERSONAL_ORGANIZATION");
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { organizationDelete(id: $id) }", {
          token: u.token,
          variables: { id: u.org.id },
        }),
      ),
    ).toBe("PERSONAL_ORGANIZATION");
  });
});

describe("API keys", () => {
  it("are shown once, act for their organization with their role, and stop working when revoked", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Partner Org");
    const created = await gql<{
      apiKeyCreate: { secret: string; apiKey: { id: string; prefix: string; role: string } };
    }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { id prefix role } } }",
      { token: alice.token, variables: { input: { organizationId: org.id, name: "CI", role: "VIEWER" } } },
    );
    const { secret, apiKey } = created.data!.apiKeyCreate;
    expect(secret).toMatch(new RegExp(`^flo_${apiKey.prefix}_`));

    const orgs = "{ organizations(first: 5) { edges { node { id viewerRole } } } viewer { id } }";
    for (const headers of [{ authorization: `Bearer ${secret}` }, { "x-api-key": secret }] as Record<
      string,
      string
    >[]) {
      const r = await gql(suite.url, orgs, { headers });
      expect(r.data).toEqual({
        organizations: { edges: [{ node: { id: org.id, viewerRole: "VIEWER" } }] },
        viewer: null,
      });
    }
    // A viewer key reads but does not write, and keys never manage keys or accounts.
    const update = await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }",
      {
        headers: { "x-api-key": secret },
        variables: { input: { id: org.id, name: "renamed" } },
      },
    );
    expect(errorCode(update)).toBe("FORBIDDEN");
    expect(
      errorCode(
        await gql(suite.url, "mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", {
          headers: { "x-api-key": secret },
          variables: { id: apiKey.id },
        }),
      ),
    ).toBe("FORBIDDEN");

    // The secret is never readable again.
    const listed = await gql(
      suite.url,
      `{ node(id: "${org.id}") { ... on Organization { apiKeys(first: 5) { edges { node { prefix lastUsedAt } } } } } }`,
      { token: alice.token },
    );
    expect(JSON.stringify(listed)).not.toContain(secret);
    expect(listed.data).toMatchObject({
      node: { apiKeys: { edges: [{ node: { prefix: apiKey.prefix, lastUsedAt: expect.any(String) } }] } },
    });

    expect(
      (
        await gql(suite.url, "mutation($id: ID!) { apiKeyRevoke(id: $id) { revokedAt } }", {
          token: alice.token,
          variables: { id: apiKey.id },
        })
      ).errors,
    ).toBeUndefined();
    expect(errorCode(await gql(suite.url, orgs, { headers: { "x-api-key": secret } }))).toBe("API_KEY_REVOKED");
    expect(
      errorCode(await gql(suite.url, orgs, { headers: { "x-api-key": `flo_${apiKey.prefix}_${"x".repeat(43)}` } })),
    ).toBe("API_KEY_INVALID");
  });

  it("cannot be given a role above the creator's, and expire", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Key Rules");
    const admin = await addMember(suite.url, suite.mail, alice.token, org.id, "ADMIN");
    const create = "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }";
    expect(
      errorCode(
        await gql(suite.url, create, {
          token: admin.token,
          variables: { input: { organizationId: org.id, name: "k", role: "OWNER" } },
        }),
      ),
    ).toBe("BAD_USER_INPUT");
    expect(
      errorCode(
        await gql(suite.url, create, {
          token: alice.token,
          variables: { input: { organizationId: org.id, name: "k", role: "ADMIN", expiresAt: "2000-01-01T00:00:00Z" } },
        }),
      ),
    ).toBe("BAD_USER_INPUT");
    const soon = new Date(Date.now() + 3_600_000).toISOString();
    const ok = await gql<{ apiKeyCreate: { secret: string } }>(suite.url, create, {
      token: admin.token,
      variables: { input: { organizationId: org.id, name: "k", role: "ADMIN", expiresAt: soon } },
    });
    expect(ok.errors).toBeUndefined();
  });
});

describe("tenant isolation", () => {
  it("gives a member of organization B NOT_FOUND for every id of organization A", async () => {
    const alice = await createUser(suite.url);
    const orgA = await createOrg(suite.url, alice.token, "Tenant A");
    const aMember = await addMember(suite.url, suite.mail, alice.token, orgA.id, "MEMBER");
    const invite = await gql<{ organizationInvite: { id: string } }>(
      suite.url,
      "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }",
      {
        token: alice.token,
        variables: { input: { organizationId: orgA.id, email: `pending-${Date.now()}@example.test`, role: "MEMBER" } },
      },
    );
    const key = await gql<{ apiKeyCreate: { apiKey: { id: string } } }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { apiKey { id } } }",
      {
        token: alice.token,
        variables: { input: { organizationId: orgA.id, name: "A's key", role: "VIEWER" } },
      },
    );
    const sessions = await gql<{ viewer: { sessions: { id: string }[] } }>(
      suite.url,
      "{ viewer { sessions { id } } }",
      {
        token: alice.token,
      },
    );
    const ids = {
      organization: orgA.id,
      membership: aMember.membershipId,
      invite: invite.data!.organizationInvite.id,
      apiKey: key.data!.apiKeyCreate.apiKey.id,
      session: sessions.data!.viewer.sessions[0]!.id,
      user: alice.user.id,
    };

    const bob = await createUser(suite.url);
    const orgB = await createOrg(suite.url, bob.token, "Tenant B");
    const b = bob.token;
    for (const [kind, id] of Object.entries(ids)) {
      const seen = await gql(suite.url, `{ node(id: "${id}") { id } }`, { token: b });
      expect(seen.data, kind).toEqual({ node: null });
    }
    const nodes = await gql(
      suite.url,
      `{ nodes(ids: ["${ids.organization}", "${ids.membership}", "${orgB.id}"]) { id } }`,
      {
        token: b,
      },
    );
    expect(nodes.data).toEqual({ nodes: [null, null, { id: orgB.id }] });

    const attempts: [string, string, Record<string, unknown>][] = [
      [
        "organizationUpdate",
        "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }",
        { input: { id: ids.organization, name: "x" } },
      ],
      ["organizationDelete", "mutation($id: ID!) { organizationDelete(id: $id) }", { id: ids.organization }],
      ["organizationLeave", "mutation($id: ID!) { organizationLeave(id: $id) }", { id: ids.organization }],
      [
        "organizationInvite",
        "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }",
        { input: { organizationId: ids.organization, email: "x@example.test", role: "VIEWER" } },
      ],
      [
        "organizationInviteRevoke",
        "mutation($id: ID!) { organizationInviteRevoke(id: $id) { id } }",
        { id: ids.invite },
      ],
      [
        "membershipUpdateRole",
        "mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { id } }",
        { id: ids.membership },
      ],
      ["membershipRemove", "mutation($id: ID!) { membershipRemove(id: $id) }", { id: ids.membership }],
      [
        "apiKeyCreate",
        "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
        { input: { organizationId: ids.organization, name: "x", role: "VIEWER" } },
      ],
      ["apiKeyRevoke", "mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", { id: ids.apiKey }],
      ["sessionRevoke", "mutation($id: ID!) { sessionRevoke(id: $id) }", { id: ids.session }],
    ];
    for (const [name, query, variables] of attempts) {
      expect(errorCode(await gql(suite.url, query, { token: b, variables })), name).toBe("NOT_FOUND");
    }
    // Nothing of A changed.
    const still = await gql<{ node: { name: string; members: { totalCount: number } } }>(
      suite.url,
      `{ node(id: "${orgA.id}") { ... on Organization { name members { totalCount } } } }`,
      { token: alice.token },
    );
    expect(still.data?.node).toEqual({ name: "Tenant A", members: { totalCount: 2 } });
    expect((await gql(suite.url, "{ viewer { id } }", { token: alice.token })).data).toEqual({
      viewer: { id: alice.user.id },
    });
  });

  it("acts in the organization named by X-Organization-Id only when the caller belongs to it", async () => {
    const alice = await createUser(suite.url);
    const bob = await createUser(suite.url);
    const team = await createOrg(suite.url, bob.token, "Bob's team");
    const active = (token: string, org?: string) =>
      gql(suite.url, "{ activeOrganization { id } }", { token, headers: org ? { "x-organization-id": org } : {} });
    expect((await active(bob.token)).data).toEqual({ activeOrganization: { id: bob.org.id } });
    expect((await active(bob.token, team.id)).data).toEqual({ activeOrganization: { id: team.id } });
    expect(errorCode(await active(bob.token, alice.org.id))).toBe("NOT_FOUND");
  });
});

describe("access that follows its grantor", () => {
  it("stops a removed admin's API key, and caps a demoted one's at their new role", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Grantors");
    const admin = await addMember(suite.url, suite.mail, alice.token, org.id, "ADMIN");
    const create = "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }";
    const key = (
      await gql<{ apiKeyCreate: { secret: string } }>(suite.url, create, {
        token: admin.token,
        variables: { input: { organizationId: org.id, name: "a", role: "ADMIN" } },
      })
    ).data!.apiKeyCreate.secret;
    const rename = (name: string) =>
      gql(suite.url, "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
        headers: { "x-api-key": key },
        variables: { input: { id: org.id, name } },
      });
    expect((await rename("by key")).errors).toBeUndefined();

    await gql(suite.url, "mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { role } }", {
      token: alice.token,
      variables: { id: admin.membershipId },
    });
    expect(errorCode(await rename("after demotion"))).toBe("FORBIDDEN");

    await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: alice.token,
      variables: { id: admin.membershipId },
    });
    expect(errorCode(await rename("after removal"))).toBe("API_KEY_REVOKED");
  });

  it("lets a removed admin's open invitations lapse", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Lapsing");
    const admin = await addMember(suite.url, suite.mail, alice.token, org.id, "ADMIN");
    const email = `lapsed-${Date.now()}@example.test`;
    await gql(suite.url, "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }", {
      token: admin.token,
      variables: { input: { organizationId: org.id, email, role: "MEMBER" } },
    });
    const link = await suite.mail.next(email, /invited/);
    await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: alice.token,
      variables: { id: admin.membershipId },
    });
    const invited = await createUser(suite.url, email);
    await verifyEmail(suite.url, suite.mail, email);
    const accept = await gql(suite.url, "mutation($t: String!) { organizationInviteAccept(token: $t) { id } }", {
      token: invited.token,
      variables: { t: tokenFrom(link) },
    });
    expect(errorCode(accept)).toBe("INVITE_INVALID");
  });

  it("refuses an expired API key", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Expiring");
    const soon = new Date(Date.now() + 60_000).toISOString();
    const created = await gql<{ apiKeyCreate: { secret: string; apiKey: { prefix: string } } }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret apiKey { prefix } } }",
      {
        token: alice.token,
        variables: { input: { organizationId: org.id, name: "short", role: "VIEWER", expiresAt: soon } },
      },
    );
    const { secret, apiKey } = created.data!.apiKeyCreate;
    // Its expiry passes (set in the database rather than waited for).
    await suite.server.app.runtime.db.prisma.apiKey.update({
      where: { prefix: apiKey.prefix },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect(errorCode(await gql(suite.url, "{ activeOrganization { id } }", { headers: { "x-api-key": secret } }))).toBe(
      "API_KEY_EXPIRED",
    );
  });

  it("answers another tenant's ids exactly as ids that do not exist", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Indistinguishable");
    const member = await addMember(suite.url, suite.mail, alice.token, org.id, "MEMBER");
    const bob = await createUser(suite.url);
    const missing = Buffer.from("Membership:0190b6a0-0000-7000-8000-000000000000").toString("base64");
    for (const query of [
      "mutation($id: ID!) { membershipRemove(id: $id) }",
      "mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { id } }",
    ]) {
      const real = await gql(suite.url, query, { token: bob.token, variables: { id: member.membershipId } });
      const fake = await gql(suite.url, query, { token: bob.token, variables: { id: missing } });
      expect({ message: real.errors?.[0]?.message, code: errorCode(real) }).toEqual({
        message: fake.errors?.[0]?.message,
        code: errorCode(fake),
      });
    }
  });
});
