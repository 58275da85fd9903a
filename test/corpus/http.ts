// Requests shaped as no GraphQL client sends them: batches (batching is off), GET mutations,
// methods, paths and media types a browser form could forge.
import { type Case, type HttpRequest, multipart, op } from "./case.ts";

const shape = { status: 400, code: "BAD_REQUEST" };

export const batchAbuse: Case[] = [
  {
    name: "a JSON array of two queries",
    request: () => ({ as: "attacker", json: [op("{ __typename }"), op("{ viewer { id } }")] }),
    expect: shape,
  },
  {
    name: "a JSON array of 1,000 login mutations",
    request: () => ({
      as: "anonymous",
      json: Array.from({ length: 1000 }, (_, i) =>
        op(`mutation { authLogin(input: { email: "victim@example.test", password: "p${i}" }) { accessToken } }`),
      ),
    }),
    expect: shape,
  },
  { name: "an empty JSON array", request: () => ({ as: "attacker", json: [] }), expect: shape },
  {
    name: "an array nested in an array",
    request: () => ({ as: "attacker", json: [[op("{ __typename }")]] }),
    expect: shape,
  },
  {
    name: "an array as application/graphql+json (Yoga's path)",
    request: () => ({
      as: "attacker",
      body: JSON.stringify([op("{ __typename }"), op("{ __typename }")]),
      headers: { "content-type": "application/graphql+json" },
    }),
    expect: { status: 400 },
  },
  {
    name: "an array over multipart",
    request: () => multipart([op("{ __typename }"), op("{ __typename }")]),
    expect: { status: 400 },
  },
  {
    name: "1,000 operations in one document, one named",
    request: () => ({
      as: "attacker",
      json: op(Array.from({ length: 1000 }, (_, i) => `query Q${i} { __typename }`).join(" "), undefined, "Q1"),
    }),
    expect: { code: "TOKEN_LIMIT_EXCEEDED" },
  },
  {
    name: "an array of SSE subscriptions",
    request: () => ({
      as: "attacker",
      body: JSON.stringify([op("subscription { __typename }")]),
      headers: { "content-type": "application/json", accept: "text/event-stream" },
    }),
    expect: { status: 400 },
  },
];

/** A mutation that must never run from these requests: it would end the attacker's session (the row check sees it). */
const HARM = "mutation { authLogout }";
const REGISTER = (email: string) =>
  `mutation { authRegister(input: { email: "${email}", password: "correct horse battery staple", fullName: "x" }) { accessToken } }`;

export const getAndMethods: Case[] = [
  {
    name: "GET with a mutation",
    request: () => ({ as: "attacker", path: `/graphql?query=${encodeURIComponent(HARM)}` }),
    expect: { status: 405 },
  },
  {
    name: "GET with an anonymous authRegister",
    request: () => ({ as: "anonymous", path: `/graphql?query=${encodeURIComponent(REGISTER("get@example.test"))}` }),
    expect: { status: 405 },
  },
  {
    name: "GET with a query and a mutation, the mutation named",
    request: () => ({
      as: "attacker",
      path: `/graphql?operationName=M&query=${encodeURIComponent("query Q { __typename } mutation M { authLogout }")}`,
    }),
    expect: { status: 405 },
  },
  {
    name: "GET with a subscription to the victim's audit feed",
    request: (w) => ({
      as: "attacker",
      path: `/graphql?query=${encodeURIComponent(`subscription { auditEntryAdded(organizationId: "${w.victim.orgId}") { cursor } }`)}`,
    }),
    expect: { code: ["NOT_FOUND", "BAD_REQUEST"] },
  },
  {
    name: "an SSE subscription to the victim's audit feed",
    request: (w) => ({
      as: "attacker",
      json: op(`subscription { auditEntryAdded(organizationId: "${w.victim.orgId}") { cursor } }`),
      headers: { accept: "text/event-stream" },
    }),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "an SSE subscription with a fragment cycle",
    request: () => ({
      as: "attacker",
      json: op("subscription { ...A } fragment A on Subscription { ...A }"),
      headers: { accept: "text/event-stream" },
    }),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "GET without a query",
    request: () => ({ as: "attacker", path: "/graphql?variables=%7B%7D" }),
    expect: { code: "BAD_REQUEST" },
  },
  {
    name: "GET with variables that are not JSON",
    request: () => ({
      as: "attacker",
      path: `/graphql?query=${encodeURIComponent("{ __typename }")}&variables=%7Bnope`,
    }),
    expect: { status: 400, code: "BAD_REQUEST" },
  },
  {
    name: "GET with extensions that are not JSON",
    request: () => ({ as: "attacker", path: `/graphql?query=${encodeURIComponent("{ __typename }")}&extensions=%7B` }),
    expect: { status: 400, code: "BAD_REQUEST" },
  },
  {
    name: "GET with the query given twice, the mutation first",
    request: () => ({
      as: "attacker",
      path: `/graphql?query=${encodeURIComponent(HARM)}&query=${encodeURIComponent("{ __typename }")}`,
    }),
    expect: { status: 405 },
  },
  {
    name: "GET with a percent-encoded NUL in the query",
    request: () => ({ as: "attacker", path: "/graphql?query=%7B%00%7D" }),
    expect: { code: "GRAPHQL_PARSE_FAILED" },
  },
  {
    name: "GET with broken percent-encoding",
    request: () => ({ as: "attacker", path: "/graphql?query=%E0%A4%A" }),
    expect: { code: "GRAPHQL_PARSE_FAILED" },
  },
  {
    name: "GET of a mutation hidden behind a BOM",
    request: () => ({ as: "attacker", path: `/graphql?query=${encodeURIComponent("\ufeffmutation { authLogout }")}` }),
    expect: { status: 405 },
  },
  {
    name: "PUT",
    request: () => ({ as: "attacker", method: "PUT", json: op("{ __typename }") }),
    expect: { status: [404, 405] },
  },
  {
    name: "DELETE",
    request: () => ({ as: "attacker", method: "DELETE", json: op(HARM) }),
    expect: { status: [404, 405] },
  },
  {
    name: "PATCH",
    request: () => ({ as: "attacker", method: "PATCH", json: op(HARM) }),
    expect: { status: [404, 405] },
  },
  {
    name: "a method that does not exist",
    request: () => ({ raw: "BREW /graphql HTTP/1.1\r\nHost: x\r\n\r\n" }),
    expect: { status: [400, 405, 501] },
  },
  // Yoga serves /graphql/ too, through the same plugins: a foreign id is as unknown there.
  {
    name: "POST to /graphql/",
    request: (w) => ({
      as: "attacker",
      path: "/graphql/",
      json: op("mutation($id: ID!) { organizationDelete(id: $id) }", { id: w.victim.orgId }),
    }),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "POST to /GRAPHQL",
    request: (w) => ({
      as: "attacker",
      path: "/GRAPHQL",
      json: op("mutation($id: ID!) { organizationDelete(id: $id) }", { id: w.victim.orgId }),
    }),
    expect: { status: [404, 405] },
  },
  {
    name: "a path climbing out of /downloads",
    request: () => ({ as: "attacker", path: "/downloads/..%2F..%2F..%2Fetc%2Fpasswd" }),
    expect: { status: [400, 404] },
  },
  {
    name: "a download token named constructor",
    request: () => ({ as: "attacker", path: "/downloads/constructor" }),
    expect: { status: [400, 404] },
  },
  {
    name: "a download token named __proto__",
    request: () => ({ as: "attacker", path: "/downloads/__proto__" }),
    expect: { status: [400, 404] },
  },
  { name: "/health/constructor", request: () => ({ path: "/health/constructor" }), expect: { status: 404 } },
  {
    name: "POST to /health/liveness",
    request: () => ({ method: "POST", path: "/health/liveness", json: {} }),
    expect: { status: 405 },
  },
  // HTTP/1.1 servers must accept the absolute form (RFC 9112 3.2.2): the mutation in it is what must not run.
  {
    name: "an absolute-form request target with a mutation",
    request: () => ({
      raw: `GET http://evil.test/graphql?query=${encodeURIComponent(HARM)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    }),
    expect: { status: 405 },
  },
  {
    name: "a request line without a version (HTTP/0.9)",
    request: () => ({ raw: `GET /graphql?query=${encodeURIComponent(HARM)}\r\n\r\n` }),
    expect: { status: [0, 400, 405, 505] },
  },
];

const form = (body: string, type: string): HttpRequest => ({
  as: "anonymous",
  body,
  headers: { "content-type": type },
});

export const contentTypes: Case[] = [
  {
    name: "text/plain",
    request: () => form(JSON.stringify(op(REGISTER("plain@example.test"))), "text/plain"),
    expect: { status: 415, code: "UNSUPPORTED_MEDIA_TYPE" },
  },
  {
    name: "a form post",
    request: () =>
      form(`query=${encodeURIComponent(REGISTER("form@example.test"))}`, "application/x-www-form-urlencoded"),
    expect: { status: 415 },
  },
  {
    name: "no content type",
    request: () => ({ as: "anonymous", body: new Uint8Array(Buffer.from(JSON.stringify(op("{ __typename }")))) }),
    expect: { status: 415 },
  },
  {
    name: "application/xml",
    request: () => form("<query>{ __typename }</query>", "application/xml"),
    expect: { status: [400, 415] },
  },
  { name: "text/html", request: () => form("<script>alert(1)</script>", "text/html"), expect: { status: [400, 415] } },
  {
    name: "application/json; charset=utf-16 with UTF-16 bytes",
    request: () => ({
      as: "attacker",
      body: new Uint8Array(Buffer.from(JSON.stringify(op("{ __typename }")), "utf16le")),
      headers: { "content-type": "application/json; charset=utf-16" },
    }),
    expect: { status: [400, 415] },
  },
  {
    name: "application/jsonx (a prefix of the JSON type)",
    request: () => form("not json", "application/jsonx"),
    expect: { status: [400, 415] },
  },
  {
    name: "a content type of 8 KB",
    request: () => form("{}", `application/json; ${"a=b; ".repeat(1500)}`),
    expect: { status: [400, 415, 431] },
  },
  {
    name: "multipart without the preflight header",
    request: () => ({ ...multipart(op(REGISTER("mp@example.test"))), headers: {} }),
    expect: { status: 400, code: "CSRF_HEADER_REQUIRED" },
  },
  {
    name: "multipart with a blank preflight header",
    request: () => ({ ...multipart(op(REGISTER("mp2@example.test"))), headers: { "graphql-preflight": "   " } }),
    expect: { status: 400, code: "CSRF_HEADER_REQUIRED" },
  },
  {
    name: "multipart/mixed as a request type",
    request: () => form(JSON.stringify(op("{ __typename }")), "multipart/mixed; boundary=x"),
    expect: { status: [400, 415] },
  },
  {
    name: "text/event-stream as a request type",
    request: () => form(JSON.stringify(op("{ __typename }")), "text/event-stream"),
    expect: { status: [400, 415] },
  },
  {
    name: "application/graphql with a mutation (raw GraphQL body)",
    request: () => form(HARM, "application/graphql"),
    expect: {
      status: [400, 401, 415],
      check: (r) => {
        if (r.status === 200) throw new Error(r.text);
      },
    },
  },
];
