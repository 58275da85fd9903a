// One pipeline: the same requests along every path a request can take (the JSON fast path,
// Yoga's handler for application/graphql+json, multipart and GET, SSE, graphql-ws) get the
// same answer: status, the headers that matter, and body, but for what a transport cannot
// carry (no HTTP status over WebSocket, no mutation over GET).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { type PathName, paths, type Seen, type Sent } from "./helpers/paths.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

const HTTP: PathName[] = ["fast", "graphql+json", "multipart", "get"];

interface Case {
  name: string;
  sent: (user: TestUser) => Sent;
  /** A mutation: GET refuses those by design (405), so it is left out. */
  mutation?: boolean;
}

const deep = `{ viewer { ${"memberships { organization { members { user { ".repeat(6)} id ${"} } } }".repeat(6)} } }`;

const cases: Case[] = [
  { name: "a query", sent: () => ({ query: "{ __typename }" }) },
  {
    name: "a query from a browser on another origin",
    sent: () => ({ query: "{ __typename }", headers: { origin: "https://app.example" } }),
  },
  {
    name: "an authenticated query with variables",
    sent: (u) => ({
      query: "query V($id: ID!) { node(id: $id) { id } viewer { email } }",
      variables: { id: u.org.id },
      operationName: "V",
      headers: { authorization: `Bearer ${u.token}` },
    }),
  },
  { name: "a document that does not parse", sent: () => ({ query: "{ viewer { " }) },
  { name: "a document that does not validate", sent: () => ({ query: "{ noSuchField }" }) },
  {
    name: "wrong variables",
    sent: () => ({ query: "query($id: ID!) { node(id: $id) { id } }", variables: { id: 5 } }),
  },
  { name: "a document nested past the depth limit", sent: () => ({ query: deep }) },
  { name: "bad credentials", sent: () => ({ query: "{ __typename }", headers: { authorization: "Bearer nope" } }) },
  {
    name: "an unknown persisted query",
    sent: () => ({ extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } }),
  },
  {
    name: "an operation name that is not in the document",
    sent: () => ({ query: "{ __typename }", operationName: "X" }),
  },
  {
    name: "an anonymous mutation that needs a user",
    sent: () => ({ query: 'mutation { organizationCreate(input: { name: "x" }) { id } }' }),
    mutation: true,
  },
  {
    name: "a mutation with invalid input",
    sent: (u) => ({
      query: 'mutation { organizationCreate(input: { name: "" }) { id } }',
      headers: { authorization: `Bearer ${u.token}` },
    }),
    mutation: true,
  },
];

describe("every path answers alike", () => {
  let server: TestServer;
  let user: TestUser;
  beforeAll(async () => {
    server = await startServer();
    user = await createUser(server.graphqlUrl);
  });
  afterAll(() => server?.stop());

  for (const c of cases) {
    it(c.name, async () => {
      const sent = c.sent(user);
      const seen: Partial<Record<PathName, Seen>> = {};
      for (const path of [...HTTP, "sse", "ws"] as PathName[]) {
        if (path === "get" && c.mutation) continue;
        seen[path] = await paths[path](server.graphqlUrl, sent);
      }
      const { fast } = seen as Record<PathName, Seen>;
      for (const path of HTTP) {
        if (!seen[path]) continue;
        expect({ path, ...seen[path] }).toEqual({ path, ...fast });
      }
      // What a result carries is the same over SSE and WebSocket; only HTTP has a status.
      const body = fast.body as { data?: unknown; errors?: unknown };
      expect({ path: "sse", body: seen.sse?.body }).toEqual({ path: "sse", body });
      // Credentials go with the connection over WebSocket: refused, they close it (4403) with
      // the error's code and message as the reason.
      const refusal = (body.errors as { message: string; extensions: { code: string } }[] | undefined)?.[0];
      const atConnect = c.name === "bad credentials" && refusal;
      expect({ path: "ws", body: seen.ws?.body }).toEqual({
        path: "ws",
        body: atConnect ? { closed: 4403, reason: `${refusal.extensions.code}: ${refusal.message}` } : body,
      });
    });
  }
});
