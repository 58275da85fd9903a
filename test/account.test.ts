// My data: settings, profile, a ZIP of everything I own, and deleting the account.
import { strFromU8, unzipSync } from "fflate";
import { describe, expect, it } from "vitest";
import { addMember, createOrg, errorCode, verifyEmail } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, PASSWORD } from "./helpers/factories.ts";
import { tokenFrom } from "./helpers/mail.ts";
import { useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail();

describe("settings and profile", () => {
  it("starts from the reference defaults, updates only what is given, and validates with field paths", async () => {
    const { token } = await createUser(suite.url);
    const read = await gql<{ viewer: { config: Record<string, unknown> } }>(
      suite.url,
      "{ viewer { config { excludePatterns retentionDays maxSuggestions useRealFilePaths anonymize trackingEnabled } } }",
      { token },
    );
    expect(read.data?.viewer.config).toEqual({
      excludePatterns: [".git/", "__pycache__/", ".pyc", "node_modules/", ".floyo/"],
      retentionDays: 90,
      maxSuggestions: 5,
      useRealFilePaths: true,
      anonymize: false,
      trackingEnabled: true,
    });
    const update =
      "mutation($input: ViewerConfigUpdateInput!) { viewerConfigUpdate(input: $input) { monitoredDirectories maxSuggestions retentionDays } }";
    const ok = await gql(suite.url, update, {
      token,
      variables: { input: { monitoredDirectories: ["/home/me/work"], maxSuggestions: 3 } },
    });
    expect(ok.data).toEqual({
      viewerConfigUpdate: { monitoredDirectories: ["/home/me/work"], maxSuggestions: 3, retentionDays: 90 },
    });
    const bad = await gql(suite.url, update, { token, variables: { input: { maxSuggestions: -1, retentionDays: 0 } } });
    expect(errorCode(bad)).toBe("BAD_USER_INPUT");
    expect(((bad.errors?.[0]?.extensions?.fieldErrors ?? []) as { path: string }[]).map((f) => f.path).sort()).toEqual([
      "maxSuggestions",
      "retentionDays",
    ]);
  });

  it("updates the profile and refuses a taken username", async () => {
    const a = await createUser(suite.url);
    const b = await createUser(suite.url);
    const update = "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { fullName username } }";
    const name = `ada_${Date.now()}`;
    expect(
      (await gql(suite.url, update, { token: a.token, variables: { input: { fullName: "Ada L.", username: name } } }))
        .data,
    ).toEqual({
      viewerUpdate: { fullName: "Ada L.", username: name },
    });
    expect(errorCode(await gql(suite.url, update, { token: b.token, variables: { input: { username: name } } }))).toBe(
      "USERNAME_TAKEN",
    );
  });
});

describe("data export", () => {
  it("downloads a ZIP with one JSON file per kind, with no secrets, through a short-lived link", async () => {
    const { token, email } = await createUser(suite.url);
    const link = await gql<{ viewerDataExport: { url: string } }>(
      suite.url,
      "mutation { viewerDataExport { url expiresAt } }",
      { token },
    );
    const response = await fetch(new URL(link.data!.viewerDataExport.url, suite.server.url));
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/zip");
    const files = unzipSync(new Uint8Array(await response.arrayBuffer()));
    expect(Object.keys(files).sort()).toEqual(
      [
        "auditLog",
        "config",
        "events",
        "fileRelationships",
        "loginAttempts",
        "memberships",
        "patterns",
        "profile",
        "sessions",
        "suggestions",
        "temporalPatterns",
        "uploads",
        "workflows",
      ]
        .map((k) => `${k}.json`)
        .sort(),
    );
    const profile = JSON.parse(strFromU8(files["profile.json"]!));
    expect(profile).toEqual([expect.objectContaining({ email })]);
    const all = Object.values(files)
      .map((f) => strFromU8(f))
      .join("");
    expect(all).not.toMatch(/passwordHash|tokenHash|keyHash|scrypt\$/);
    expect(JSON.parse(strFromU8(files["memberships.json"]!))).toHaveLength(1);
  });

  it("refuses a download without a valid link or credentials", async () => {
    expect((await fetch(`${suite.server.url}/downloads/export`)).status).toBe(401);
    const forged = await fetch(`${suite.server.url}/downloads/export?token=not.a.token`);
    expect(forged.status).toBe(401);
    expect(await forged.json()).toMatchObject({ errors: [{ extensions: { code: "TOKEN_INVALID" } }] });
  });
});

describe("account deletion", () => {
  it("needs the password, keeps a shared organization's last owner from leaving it ownerless", async () => {
    const alice = await createUser(suite.url);
    const org = await createOrg(suite.url, alice.token, "Shared with Bob");
    await addMember(suite.url, suite.mail, alice.token, org.id, "MEMBER");
    const del = "mutation($p: String!) { viewerDelete(input: { password: $p }) { deletedOrganizations } }";
    expect(errorCode(await gql(suite.url, del, { token: alice.token, variables: { p: "wrong password 1234" } }))).toBe(
      "INVALID_CREDENTIALS",
    );
    expect(errorCode(await gql(suite.url, del, { token: alice.token, variables: { p: PASSWORD } }))).toBe("LAST_OWNER");
  });

  it("deletes what I alone own, leaves shared organizations, revokes sessions and keys, and anonymizes me", async () => {
    const alice = await createUser(suite.url);
    const bob = await createUser(suite.url);
    await createOrg(suite.url, alice.token, "Alice alone");
    const shared = await createOrg(suite.url, bob.token, "Bob's");
    // Alice joins Bob's organization as an admin and makes an API key there.
    await gql(suite.url, "mutation($input: OrganizationInviteInput!) { organizationInvite(input: $input) { id } }", {
      token: bob.token,
      variables: { input: { organizationId: shared.id, email: alice.email, role: "ADMIN" } },
    });
    await verifyEmail(suite.url, suite.mail, alice.email);
    const invitation = await suite.mail.next(alice.email, /invited/);
    await gql(suite.url, "mutation($t: String!) { organizationInviteAccept(token: $t) { id } }", {
      token: alice.token,
      variables: { t: tokenFrom(invitation) },
    });
    const key = await gql<{ apiKeyCreate: { secret: string } }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
      {
        token: alice.token,
        variables: { input: { organizationId: shared.id, name: "alice's", role: "VIEWER" } },
      },
    );
    const secret = key.data!.apiKeyCreate.secret;
    expect((await gql(suite.url, "{ activeOrganization { id } }", { headers: { "x-api-key": secret } })).data).toEqual({
      activeOrganization: { id: shared.id },
    });

    const deleted = await gql(
      suite.url,
      "mutation($p: String!) { viewerDelete(input: { password: $p }) { deletedOrganizations } }",
      {
        token: alice.token,
        variables: { p: PASSWORD },
      },
    );
    // Her personal organization and "Alice alone"; Bob's stays.
    expect(deleted.data).toEqual({ viewerDelete: { deletedOrganizations: 2 } });

    expect(errorCode(await gql(suite.url, "{ viewer { id } }", { token: alice.token }))).toBe("SESSION_REVOKED");
    expect(errorCode(await gql(suite.url, "{ activeOrganization { id } }", { headers: { "x-api-key": secret } }))).toBe(
      "API_KEY_REVOKED",
    );
    const login = await gql(
      suite.url,
      "mutation($e: String!, $p: String!) { authLogin(input: { email: $e, password: $p }) { accessToken } }",
      {
        variables: { e: alice.email, p: PASSWORD },
      },
    );
    expect(errorCode(login)).toBe("INVALID_CREDENTIALS");

    const seenByBob = await gql<{ node: { members: { totalCount: number } } }>(
      suite.url,
      `{ node(id: "${shared.id}") { ... on Organization { members { totalCount } } } }`,
      { token: bob.token },
    );
    expect(seenByBob.data?.node.members.totalCount).toBe(1);
    expect((await gql(suite.url, `{ node(id: "${alice.user.id}") { id } }`, { token: bob.token })).data).toEqual({
      node: null,
    });

    // The row stays, anonymized, as the actor of her audit entries.
    const rawId = Buffer.from(alice.user.id, "base64").toString().split(":")[1]!;
    const row = await suite.server.app.runtime.db.prisma.user.findUniqueOrThrow({ where: { id: rawId } });
    expect(row).toMatchObject({ email: `deleted-${rawId}@deleted.invalid`, fullName: null, isActive: false });
    const entry = await suite.server.app.runtime.db.prisma.auditLog.findFirst({
      where: { action: "viewerDelete", actorUserId: rawId },
    });
    expect(entry?.outcome).toBe("ALLOWED");
  });
});
