// Credentials and headers filled with whatever an attacker likes: forged and malformed JWTs,
// API keys, refresh and mail tokens in the wrong place, X-Organization-Id and X-Request-Id abuse.
import jwt from "jsonwebtoken";
import { decodeId } from "../../src/schema/globalId.ts";
import { TEST_JWT_KEYS } from "../helpers/server.ts";
import { attack, type Case, type HttpRequest, op } from "./case.ts";
import type { World } from "./world.ts";

const input = { code: "BAD_USER_INPUT" };

const [kid = "", secret = ""] = TEST_JWT_KEYS.split(/:(.*)/s);
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const unauth = { status: 401 };
const bearer = (token: string): HttpRequest => ({
  as: "anonymous",
  json: op("{ viewer { id email } }"),
  headers: { authorization: `Bearer ${token}` },
});
/** A token signed with the server's own key, so only its claims are wrong. */
const signed = (claims: Record<string, unknown>, options: jwt.SignOptions = {}) =>
  jwt.sign(claims, secret, {
    algorithm: "HS256",
    keyid: kid,
    issuer: "floyo",
    audience: "floyo-api",
    expiresIn: 600,
    ...options,
  });
const raw = (w: World, type: string, party: "victim" | "attacker" = "victim") =>
  decodeId(w[party].ids[type] as string).id;

export const credentials: Case[] = [
  {
    name: "Authorization: Bearer with nothing after it",
    request: () => ({ as: "anonymous", json: op("{ viewer { id } }"), headers: { authorization: "Bearer " } }),
    expect: unauth,
  },
  {
    name: "Authorization: Basic",
    request: () => ({
      as: "anonymous",
      json: op("{ viewer { id } }"),
      headers: { authorization: "Basic YWRtaW46YWRtaW4=" },
    }),
    expect: unauth,
  },
  { name: "Authorization of 8 KB garbage", request: () => bearer("x".repeat(8000)), expect: unauth },
  { name: "Authorization: Bearer constructor", request: () => bearer("constructor"), expect: unauth },
  { name: "Authorization: Bearer __proto__", request: () => bearer("__proto__"), expect: unauth },
  {
    name: "a JWT with alg none",
    request: (w) =>
      bearer(`${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: raw(w, "User"), sid: raw(w, "Session"), exp: 9e9 })}.`),
    expect: unauth,
  },
  {
    name: "a JWT signed with another secret",
    request: (w) =>
      bearer(
        jwt.sign({ sid: raw(w, "Session") }, "not-the-secret-0123456789-0123456789", {
          algorithm: "HS256",
          keyid: kid,
          subject: raw(w, "User"),
          expiresIn: 600,
        }),
      ),
    expect: unauth,
  },
  {
    name: "a JWT with an unknown kid",
    request: (w) => bearer(signed({ sid: raw(w, "Session") }, { keyid: "constructor", subject: raw(w, "User") })),
    expect: unauth,
  },
  {
    name: "a JWT naming the victim with the attacker's session",
    request: (w) => bearer(signed({ sid: raw(w, "Session", "attacker") }, { subject: raw(w, "User") })),
    expect: unauth,
  },
  {
    name: "a JWT with a session id that is SQL",
    request: (w) => bearer(signed({ sid: "' OR 1=1 --" }, { subject: raw(w, "User") })),
    expect: unauth,
  },
  {
    name: "a JWT with a subject that is an object",
    request: (w) => bearer(signed({ sid: raw(w, "Session"), sub: { equals: raw(w, "User") } })),
    expect: unauth,
  },
  {
    name: "a JWT without expiry",
    request: (w) =>
      bearer(
        jwt.sign({ sid: raw(w, "Session") }, secret, {
          algorithm: "HS256",
          keyid: kid,
          subject: raw(w, "User"),
          issuer: "floyo",
          audience: "floyo-api",
        }),
      ),
    expect: unauth,
  },
  {
    name: "a JWT for another audience",
    request: (w) => bearer(signed({ sid: raw(w, "Session") }, { subject: raw(w, "User"), audience: "someone-else" })),
    expect: unauth,
  },
  {
    name: "a JWT with a 12 KB claim",
    request: (w) => bearer(signed({ sid: raw(w, "Session"), pad: "p".repeat(12_000) }, { subject: raw(w, "User") })),
    expect: { status: [401, 431] },
  },
  {
    name: "an expired JWT of the victim's session",
    request: (w) =>
      bearer(
        jwt.sign({ sid: raw(w, "Session"), exp: 1 }, secret, {
          algorithm: "HS256",
          keyid: kid,
          subject: raw(w, "User"),
          issuer: "floyo",
          audience: "floyo-api",
        }),
      ),
    expect: unauth,
  },
  {
    name: "the attacker's token with a second Bearer after it",
    request: (w) => ({
      as: "anonymous",
      json: op("{ viewer { id } }"),
      headers: { authorization: `Bearer ${w.attacker.user.token}, Bearer ${w.victim.user.token.slice(0, 10)}` },
    }),
    expect: unauth,
  },
  {
    name: "an X-Api-Key of 10 KB",
    request: () => ({
      as: "anonymous",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-api-key": "k".repeat(10_000) },
    }),
    expect: unauth,
  },
  {
    name: "an X-Api-Key of 1 MB",
    request: () => ({
      as: "anonymous",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-api-key": "k".repeat(1024 * 1024) },
    }),
    expect: { status: 431 },
  },
  {
    name: "an X-Api-Key constructor",
    request: () => ({
      as: "anonymous",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-api-key": "constructor" },
    }),
    expect: unauth,
  },
  {
    name: "an X-Api-Key that is the attacker's with a suffix",
    request: (w) => ({
      as: "anonymous",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-api-key": `${w.attacker.apiKey}x` },
    }),
    expect: unauth,
  },
  {
    name: "an X-Api-Key that is the attacker's prefix only",
    request: (w) => ({
      as: "anonymous",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-api-key": w.attacker.apiKey.slice(0, 16) },
    }),
    expect: unauth,
  },
  {
    name: "the attacker's refresh token in Authorization",
    request: (w) => bearer(w.attacker.user.refreshToken),
    expect: unauth,
  },
  {
    name: "authRefresh with the attacker's access token",
    request: (w) =>
      attack(
        "mutation($t: String!) { authRefresh(refreshToken: $t) { accessToken } }",
        { t: w.attacker.user.token },
        "anonymous",
      ),
    expect: { code: ["REFRESH_TOKEN_INVALID", "UNAUTHENTICATED", "TOKEN_INVALID"] },
  },
  {
    name: "authRefresh with 10 KB",
    request: () =>
      attack(
        "mutation($t: String!) { authRefresh(refreshToken: $t) { accessToken } }",
        { t: "r".repeat(10_000) },
        "anonymous",
      ),
    expect: { code: ["REFRESH_TOKEN_INVALID", "BAD_USER_INPUT", "UNAUTHENTICATED"] },
  },
  {
    name: "emailVerify with a token of the wrong purpose",
    request: (w) =>
      attack("mutation($t: String!) { emailVerify(token: $t) }", { t: w.attacker.user.token }, "anonymous"),
    expect: { code: ["TOKEN_INVALID", "BAD_USER_INPUT"] },
  },
  {
    name: "organizationInviteAccept with garbage",
    request: () => attack('mutation { organizationInviteAccept(token: "\' OR 1=1 --") { id } }'),
    expect: { code: ["INVITE_INVALID", "TOKEN_INVALID", "BAD_USER_INPUT"] },
  },
  {
    name: "X-Organization-Id of 10 KB",
    request: () => ({
      as: "attacker",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-organization-id": "o".repeat(10_000) },
    }),
    expect: { status: 400, ...input },
  },
  {
    name: "X-Organization-Id with an RTL override",
    request: () => ({
      as: "attacker",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-organization-id": "\u00e2\u0080\u00aeabc" },
    }),
    expect: { status: 400, ...input },
  },
  {
    name: "X-Organization-Id given twice: the attacker's, then the victim's (raw)",
    request: (w) => {
      const body = JSON.stringify(op("{ activeOrganization { id } }"));
      return {
        raw: `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${w.attacker.user.token}\r\nX-Organization-Id: ${w.attacker.orgId}\r\nX-Organization-Id: ${w.victim.orgId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      };
    },
    expect: { status: 400, ...input },
  },
];

const requestIdCases: [string, string][] = [
  ["of 10 KB", "r".repeat(10_000)],
  ["with spaces and quotes", "abc \"def\" 'g'"],
  ["with a log-injection attempt", "abc\\nlevel=error msg=forged"],
  ["constructor", "constructor"],
  ["of 129 characters", "a".repeat(129)],
];

export const requestIds: Case[] = [
  ...requestIdCases.map(
    ([name, id]): Case => ({
      name: `X-Request-Id ${name} on a refused request`,
      request: (w) => ({
        as: "attacker",
        json: op("mutation($id: ID!) { workflowDelete(id: $id) }", { id: w.victim.ids.Workflow }),
        headers: { "x-request-id": id },
      }),
      expect: {
        code: "NOT_FOUND",
        check: (r) => {
          const echoed = r.headers.get("x-request-id");
          if (id !== "constructor" && echoed === id) throw new Error(`echoed an unsafe request id: ${echoed}`);
          if (r.json?.errors?.[0]?.extensions?.requestId !== echoed)
            throw new Error("the error's request id differs from the header's");
        },
      },
    }),
  ),
  {
    name: "X-Request-Id with a CR LF (raw)",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: a\rSet-Cookie: x=1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    }),
    expect: {
      status: 400,
      check: (r) => {
        if (r.headers.get("set-cookie")) throw new Error("header injected");
      },
    },
  },
  {
    name: "X-Request-Id given twice (raw)",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Request-Id: one\r\nX-Request-Id: two\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
    }),
    expect: {
      status: 400,
      check: (r) => {
        const id = r.headers.get("x-request-id") ?? "";
        if (!/^[\w.:-]{1,128}$/.test(id)) throw new Error(id);
      },
    },
  },
];
