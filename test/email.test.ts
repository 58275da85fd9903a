// Mailed flows through a real SMTP server the test starts: verification, resend, forgotten
// and reset passwords. Links are read from the messages as a person would follow them.
import { describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, PASSWORD, uniqueEmail } from "./helpers/factories.ts";
import { tokenFrom } from "./helpers/mail.ts";
import { useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail({ APP_URL: "https://app.floyo.test" });

const VERIFIED = "{ viewer { emailVerified } }";

describe("email verification", () => {
  it("mails a link at registration that verifies the address once", async () => {
    const { email, token } = await createUser(suite.server.graphqlUrl);
    const message = await suite.mail.next(email);
    expect(message.subject).toMatch(/verify/i);
    expect(message.text).toContain("https://app.floyo.test/verify-email?token=");
    expect((await gql(suite.server.graphqlUrl, VERIFIED, { token })).data).toEqual({
      viewer: { emailVerified: false },
    });

    const verify = "mutation($t: String!) { emailVerify(token: $t) }";
    expect((await gql(suite.server.graphqlUrl, verify, { variables: { t: tokenFrom(message) } })).data).toEqual({
      emailVerify: true,
    });
    expect((await gql(suite.server.graphqlUrl, VERIFIED, { token })).data).toEqual({ viewer: { emailVerified: true } });
    expect(errorCode(await gql(suite.server.graphqlUrl, verify, { variables: { t: tokenFrom(message) } }))).toBe(
      "TOKEN_INVALID",
    );
  });

  it("resends a fresh link and retires the old one", async () => {
    const { email, token } = await createUser(suite.server.graphqlUrl);
    const first = await suite.mail.next(email);
    expect((await gql(suite.server.graphqlUrl, "mutation { emailVerificationResend }", { token })).data).toEqual({
      emailVerificationResend: true,
    });
    const second = await suite.mail.next(email);
    expect(tokenFrom(second)).not.toBe(tokenFrom(first));
    const verify = "mutation($t: String!) { emailVerify(token: $t) }";
    expect(errorCode(await gql(suite.server.graphqlUrl, verify, { variables: { t: tokenFrom(first) } }))).toBe(
      "TOKEN_INVALID",
    );
    expect((await gql(suite.server.graphqlUrl, verify, { variables: { t: tokenFrom(second) } })).data).toEqual({
      emailVerify: true,
    });
    expect(errorCode(await gql(suite.server.graphqlUrl, "mutation { emailVerificationResend }", { token }))).toBe(
      "EMAIL_ALREADY_VERIFIED",
    );
  });
});

describe("forgotten password", () => {
  const forgot = "mutation($e: String!) { passwordForgot(email: $e) }";
  const reset = "mutation($t: String!, $p: String!) { passwordReset(token: $t, newPassword: $p) }";
  const login = "mutation($e: String!, $p: String!) { authLogin(input: { email: $e, password: $p }) { accessToken } }";

  it("answers the same for unknown addresses and sends nothing", async () => {
    const nobody = uniqueEmail("nobody");
    expect((await gql(suite.server.graphqlUrl, forgot, { variables: { e: nobody } })).data).toEqual({
      passwordForgot: true,
    });
    // A known address afterwards: its mail arriving proves the unknown one's would have been first.
    const { email } = await createUser(suite.server.graphqlUrl);
    await suite.mail.next(email);
    await gql(suite.server.graphqlUrl, forgot, { variables: { e: email } });
    await suite.mail.next(email);
    expect(suite.mail.received.some((m) => m.to === nobody)).toBe(false);
  });

  it("resets with a single-use link, ending every session", async () => {
    const { email, token } = await createUser(suite.server.graphqlUrl);
    await suite.mail.next(email); // verification
    expect((await gql(suite.server.graphqlUrl, forgot, { variables: { e: email } })).data).toEqual({
      passwordForgot: true,
    });
    const message = await suite.mail.next(email);
    expect(message.subject).toMatch(/reset/i);
    const t = tokenFrom(message);

    expect(errorCode(await gql(suite.server.graphqlUrl, reset, { variables: { t, p: "short" } }))).toBe(
      "WEAK_PASSWORD",
    );
    expect(
      (await gql(suite.server.graphqlUrl, reset, { variables: { t, p: "my new long passphrase 7" } })).data,
    ).toEqual({
      passwordReset: true,
    });
    expect(
      errorCode(await gql(suite.server.graphqlUrl, reset, { variables: { t, p: "another long passphrase 8" } })),
    ).toBe("TOKEN_INVALID");

    expect(errorCode(await gql(suite.server.graphqlUrl, "{ viewer { id } }", { token }))).toBe("SESSION_REVOKED");
    expect(errorCode(await gql(suite.server.graphqlUrl, login, { variables: { e: email, p: PASSWORD } }))).toBe(
      "INVALID_CREDENTIALS",
    );
    expect(
      (await gql(suite.server.graphqlUrl, login, { variables: { e: email, p: "my new long passphrase 7" } })).errors,
    ).toBeUndefined();
  });
});
