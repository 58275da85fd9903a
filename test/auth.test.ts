// Accounts, sessions and tokens as a client meets them.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, PASSWORD, uniqueEmail } from "./helpers/factories.ts";
import { startServer, TEST_JWT_KEYS, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.stop());

const [kid, secret] = TEST_JWT_KEYS.split(/:(.*)/s) as [string, string];
const VIEWER = "{ viewer { id email } }";
const LOGIN = `mutation($input: AuthLoginInput!) { authLogin(input: $input) { accessToken refreshToken user { email } } }`;
const REFRESH = `mutation($t: String!) { authRefresh(refreshToken: $t) { accessToken refreshToken } }`;

async function login(email: string, password = PASSWORD) {
  return gql<{ authLogin: { accessToken: string; refreshToken: string } }>(server.graphqlUrl, LOGIN, {
    variables: { input: { email, password } },
  });
}

describe("registration and sign-in", () => {
  it("registers, signs in with the same credentials, and refuses wrong ones without saying which part was wrong", async () => {
    const { email, user } = await createUser(server.graphqlUrl);
    const ok = await login(email.toUpperCase());
    expect(ok.errors).toBeUndefined();
    const viewer = await gql(server.graphqlUrl, VIEWER, { token: ok.data?.authLogin.accessToken });
    expect(viewer.data).toEqual({ viewer: { id: user.id, email } });

    const wrongPassword = await login(email, "not the password at all");
    const unknownEmail = await login(uniqueEmail("nobody"));
    expect(errorCode(wrongPassword)).toBe("INVALID_CREDENTIALS");
    expect(errorCode(unknownEmail)).toBe("INVALID_CREDENTIALS");
    expect(wrongPassword.errors?.[0]?.message).toBe(unknownEmail.errors?.[0]?.message);

    // Failed sign-ins are recorded for the velocity rules that read them.
    const attempts = await server.app.runtime.db.prisma.loginAttempt.findMany({ where: { email } });
    expect(attempts.map((a) => a.success).sort()).toEqual([false, true]);
  });

  it("refuses a duplicate email, a weak password and a malformed email with field-level errors", async () => {
    const { email } = await createUser(server.graphqlUrl);
    const register = (input: Record<string, unknown>) =>
      gql(server.graphqlUrl, "mutation($input: AuthRegisterInput!) { authRegister(input: $input) { accessToken } }", {
        variables: { input },
      });
    expect(errorCode(await register({ email, password: PASSWORD }))).toBe("EMAIL_TAKEN");
    const weak = await register({ email: uniqueEmail(), password: "short" });
    expect(errorCode(weak)).toBe("WEAK_PASSWORD");
    expect(weak.errors?.[0]?.extensions?.fieldErrors).toEqual([
      { path: "password", message: expect.stringContaining("at least 10") },
    ]);
    const malformed = await register({ email: "not-an-email", password: PASSWORD });
    expect(errorCode(malformed)).toBe("BAD_USER_INPUT");
    expect(malformed.errors?.[0]?.extensions?.fieldErrors).toEqual([{ path: "email", message: expect.any(String) }]);
  });
});

describe("refresh tokens", () => {
  it("rotate on every use; reusing a rotated one revokes the whole session", async () => {
    const { refreshToken: first } = await createUser(server.graphqlUrl);
    const second = await gql<{ authRefresh: { accessToken: string; refreshToken: string } }>(
      server.graphqlUrl,
      REFRESH,
      { variables: { t: first } },
    );
    expect(second.errors).toBeUndefined();
    const next = second.data!.authRefresh;
    expect(next.refreshToken).not.toBe(first);
    expect((await gql(server.graphqlUrl, VIEWER, { token: next.accessToken })).data?.viewer).not.toBeNull();

    const replay = await gql(server.graphqlUrl, REFRESH, { variables: { t: first } });
    expect(errorCode(replay)).toBe("REFRESH_TOKEN_REUSED");
    // The family is gone: the newest refresh token and its access token no longer work.
    expect(errorCode(await gql(server.graphqlUrl, REFRESH, { variables: { t: next.refreshToken } }))).toBe(
      "SESSION_REVOKED",
    );
    expect(errorCode(await gql(server.graphqlUrl, VIEWER, { token: next.accessToken }))).toBe("SESSION_REVOKED");
  });

  it("refuses an unknown refresh token", async () => {
    expect(errorCode(await gql(server.graphqlUrl, REFRESH, { variables: { t: "made-up" } }))).toBe(
      "REFRESH_TOKEN_INVALID",
    );
  });
});

describe("sessions", () => {
  it("lists sessions, revokes one, revokes all others, and logout ends the current one", async () => {
    const { email, token: a } = await createUser(server.graphqlUrl);
    const b = (await login(email)).data!.authLogin.accessToken;
    const c = (await login(email)).data!.authLogin.accessToken;
    const sessions = await gql<{ viewer: { sessions: { id: string; current: boolean }[] } }>(
      server.graphqlUrl,
      "{ viewer { sessions { id current } } }",
      { token: a },
    );
    expect(sessions.data?.viewer.sessions).toHaveLength(3);
    expect(sessions.data?.viewer.sessions.filter((s) => s.current)).toHaveLength(1);

    // Revoke B's session from A.
    const bSession = (
      await gql<{ viewer: { sessions: { id: string; current: boolean }[] } }>(
        server.graphqlUrl,
        "{ viewer { sessions { id current } } }",
        { token: b },
      )
    ).data!.viewer.sessions.find((s) => s.current)!.id;
    expect(
      (
        await gql(server.graphqlUrl, "mutation($id: ID!) { sessionRevoke(id: $id) }", {
          token: a,
          variables: { id: bSession },
        })
      ).data,
    ).toEqual({ sessionRevoke: true });
    expect(errorCode(await gql(server.graphqlUrl, VIEWER, { token: b }))).toBe("SESSION_REVOKED");

    expect((await gql(server.graphqlUrl, "mutation { sessionRevokeOthers }", { token: a })).data).toEqual({
      sessionRevokeOthers: 1,
    });
    expect(errorCode(await gql(server.graphqlUrl, VIEWER, { token: c }))).toBe("SESSION_REVOKED");

    expect((await gql(server.graphqlUrl, "mutation { authLogout }", { token: a })).data).toEqual({ authLogout: true });
    expect(errorCode(await gql(server.graphqlUrl, VIEWER, { token: a }))).toBe("SESSION_REVOKED");
  });

  it("does not let one user revoke another's session", async () => {
    const alice = await createUser(server.graphqlUrl);
    const bob = await createUser(server.graphqlUrl);
    const bobSession = (
      await gql<{ viewer: { sessions: { id: string }[] } }>(server.graphqlUrl, "{ viewer { sessions { id } } }", {
        token: bob.token,
      })
    ).data!.viewer.sessions[0]!.id;
    const attempt = await gql(server.graphqlUrl, "mutation($id: ID!) { sessionRevoke(id: $id) }", {
      token: alice.token,
      variables: { id: bobSession },
    });
    expect(errorCode(attempt)).toBe("NOT_FOUND");
    expect((await gql(server.graphqlUrl, VIEWER, { token: bob.token })).data?.viewer).not.toBeNull();
  });

  it("changing the password ends every other session and needs the current password", async () => {
    const { email, token } = await createUser(server.graphqlUrl);
    const other = (await login(email)).data!.authLogin.accessToken;
    const change = "mutation($c: String!, $n: String!) { passwordChange(currentPassword: $c, newPassword: $n) }";
    expect(
      errorCode(
        await gql(server.graphqlUrl, change, {
          token,
          variables: { c: "wrong password!", n: "a brand new secret 42" },
        }),
      ),
    ).toBe("INVALID_CREDENTIALS");
    expect(
      (await gql(server.graphqlUrl, change, { token, variables: { c: PASSWORD, n: "a brand new secret 42" } })).data,
    ).toEqual({ passwordChange: 1 });
    expect(errorCode(await gql(server.graphqlUrl, VIEWER, { token: other }))).toBe("SESSION_REVOKED");
    expect((await gql(server.graphqlUrl, VIEWER, { token })).data?.viewer).not.toBeNull();
    expect(errorCode(await login(email))).toBe("INVALID_CREDENTIALS");
    expect((await login(email, "a brand new secret 42")).errors).toBeUndefined();
  });
});

describe("access tokens", () => {
  let valid: string;
  let claims: jwt.JwtPayload;
  beforeAll(async () => {
    valid = (await createUser(server.graphqlUrl)).token;
    claims = jwt.decode(valid) as jwt.JwtPayload;
  });
  const sign = (payload: object, options: jwt.SignOptions = {}, key = secret) =>
    jwt.sign(payload, key, { algorithm: "HS256", keyid: kid, ...options });
  const base = () => ({ sub: claims.sub, sid: claims.sid, iss: claims.iss, aud: claims.aud });

  it.each([
    ["expired", () => sign({ ...base(), exp: Math.floor(Date.now() / 1000) - 60 }), "TOKEN_EXPIRED"],
    [
      "not yet valid",
      () => sign({ ...base(), nbf: Math.floor(Date.now() / 1000) + 3600, exp: Math.floor(Date.now() / 1000) + 7200 }),
      "TOKEN_NOT_YET_VALID",
    ],
    ["from another issuer", () => sign({ ...base(), iss: "someone-else" }, { expiresIn: 60 }), "TOKEN_ISSUER_INVALID"],
    [
      "for another audience",
      () => sign({ ...base(), aud: "another-api" }, { expiresIn: 60 }),
      "TOKEN_AUDIENCE_INVALID",
    ],
    ["signed with another secret", () => sign(base(), { expiresIn: 60 }, "x".repeat(48)), "TOKEN_INVALID"],
    [
      "with an unknown key id",
      () => jwt.sign(base(), secret, { algorithm: "HS256", keyid: "gone", expiresIn: 60 }),
      "TOKEN_KEY_UNKNOWN",
    ],
    [
      "unsigned (alg: none)",
      () => jwt.sign(base(), "", { algorithm: "none", expiresIn: 60 }),
      "TOKEN_ALGORITHM_REJECTED",
    ],
    [
      "tampered",
      () => {
        const [h, , s] = valid.split(".");
        const body = Buffer.from(JSON.stringify({ ...claims, sub: "00000000-0000-7000-8000-000000000000" })).toString(
          "base64url",
        );
        return `${h}.${body}.${s}`;
      },
      "TOKEN_INVALID",
    ],
    [
      "of another algorithm (RS/HS confusion)",
      () => {
        const [, b, s] = valid.split(".");
        return `${Buffer.from(JSON.stringify({ alg: "RS256", typ: "JWT", kid })).toString("base64url")}.${b}.${s}`;
      },
      "TOKEN_ALGORITHM_REJECTED",
    ],
  ])("rejects a token %s with its own code", async (_name, make, expected) => {
    const response = await gql(server.graphqlUrl, VIEWER, { token: make() });
    expect(response.status).toBe(401);
    expect(errorCode(response)).toBe(expected);
  });

  it("accepts a token signed by an older key still in the ring, and refuses it once that key is removed", async () => {
    const oldKey = "old-1:an-old-signing-secret-0123456789-abcdefghij";
    const newKey = "new-2:a-new-signing-secret-0123456789-abcdefghijk";
    // One database across the three servers (embedded: one DATA_DIR, used in turn).
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-rotation-"));
    const before = await startServer({ JWT_KEYS: oldKey, DATA_DIR: dataDir });
    const { token } = await createUser(before.graphqlUrl);
    await before.stop();
    const rotated = await startServer({ JWT_KEYS: `${newKey},${oldKey}`, DATA_DIR: dataDir });
    try {
      expect((await gql(rotated.graphqlUrl, VIEWER, { token })).data?.viewer).not.toBeNull();
      // New tokens are signed with the first key.
      const fresh = (await createUser(rotated.graphqlUrl)).token;
      expect(jwt.decode(fresh, { complete: true })?.header.kid).toBe("new-2");
    } finally {
      await rotated.stop();
    }
    const removed = await startServer({ JWT_KEYS: newKey, DATA_DIR: dataDir });
    try {
      expect(errorCode(await gql(removed.graphqlUrl, VIEWER, { token }))).toBe("TOKEN_KEY_UNKNOWN");
    } finally {
      await removed.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
