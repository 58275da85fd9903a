// The GraphQL surface as a client meets it over HTTP and WebSocket: request ids, stable
// error codes, operation limits on both transports, global ids and tenant visibility.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { encodeId } from "../src/schema/globalId.ts";
import { graphql } from "./gql/index.ts";
import { gql, wsClient, wsRequest } from "./helpers/client.ts";
import { createUser } from "./helpers/factories.ts";
import { startServer, type TestServer, testEnv } from "./helpers/server.ts";

const ViewerQuery = graphql(`
  query TestViewer {
    viewer {
      id
      memberships {
        organization {
          id
        }
      }
    }
  }
`);

const NodeQuery = graphql(`
  query TestNode($id: ID!) {
    node(id: $id) {
      id
      ... on Organization {
        slug
      }
    }
  }
`);

const limits = { MAX_DEPTH: "4", MAX_ALIASES: "3", MAX_COST: "60", MAX_TOKENS: "300", MAX_DIRECTIVES: "3" };
// Low limits on one server for the limit tests; the defaults on the other.
let limited: TestServer;
let server: TestServer;

beforeAll(async () => {
  [limited, server] = await Promise.all([startServer(limits), startServer()]);
});
afterAll(() => Promise.all([limited.stop(), server.stop()]));

const aliases = "{ a: viewer { id } b: viewer { id } c: viewer { id } d: viewer { id } }";
const deep = "{ viewer { memberships { organization { id } } } }"; // depth 4: allowed
const tooDeep =
  '{ viewer { memberships { organization { id } } } node(id: "x") { ... on User { memberships { organization { id } } } } }';
const directives = "{ __typename @skip(if: false) @skip(if: false) @skip(if: false) @skip(if: false) }";
const manyTokens = `{ ${Array.from({ length: 320 }, () => "__typename").join(" ")} }`;

describe("requests and errors", () => {
  it("serves { __typename } over GET and POST", async () => {
    expect((await gql(server.graphqlUrl, "{ __typename }")).data).toEqual({ __typename: "Query" });
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent("{ __typename }")}`);
    expect(await get.json()).toMatchObject({ data: { __typename: "Query" } });
  });

  it("sends a request id back in a header and in every error, and keeps a client's own", async () => {
    const response = await gql(server.graphqlUrl, "{ nope }");
    const requestId = response.headers.get("x-request-id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(response.errors?.[0]?.extensions).toMatchObject({ code: "GRAPHQL_VALIDATION_FAILED", requestId });

    const mine = await gql(server.graphqlUrl, "{ nope }", { headers: { "x-request-id": "client-chosen-42" } });
    expect(mine.headers.get("x-request-id")).toBe("client-chosen-42");
    expect(mine.errors?.[0]?.extensions?.requestId).toBe("client-chosen-42");
  });

  it("answers a syntax error with a GraphQL error, not a 500", async () => {
    const response = await gql(server.graphqlUrl, "{ viewer { ");
    expect(response.status).toBe(400);
    expect(response.errors?.[0]?.extensions?.code).toBe("GRAPHQL_PARSE_FAILED");
  });

  it("answers a bad token with its own code and 401", async () => {
    const response = await gql(server.graphqlUrl, "{ viewer { id } }", { token: "not-a-jwt" });
    expect(response.status).toBe(401);
    expect(response.errors?.[0]?.extensions?.code).toBe("TOKEN_MALFORMED");
  });
});

describe("operation limits", () => {
  it.each([
    ["depth", tooDeep, "DEPTH_LIMIT_EXCEEDED"],
    ["aliases", aliases, "ALIAS_LIMIT_EXCEEDED"],
    ["directives", directives, "DIRECTIVE_LIMIT_EXCEEDED"],
    ["tokens", manyTokens, "TOKEN_LIMIT_EXCEEDED"],
  ])("rejects too many %s over HTTP with a stable code", async (_name, query, code) => {
    const response = await gql(limited.graphqlUrl, query);
    expect(response.data ?? null).toBeNull();
    expect(response.errors?.map((e) => e.extensions?.code)).toContain(code);
  });

  it("rejects an operation over its cost", async () => {
    const expensive = `{ ${Array.from({ length: 3 }, (_, i) => `v${i}: viewer { memberships { organization { id name slug description tier createdAt } role joinedAt } }`).join(" ")} }`;
    // Within the other limits (3 aliases, depth 4), so only cost can refuse it.
    const response = await gql(limited.graphqlUrl, expensive);
    expect(response.errors?.map((e) => e.extensions?.code)).toContain("COST_LIMIT_EXCEEDED");
  });

  it("lets an operation within every limit through", async () => {
    const response = await gql(limited.graphqlUrl, deep);
    expect(response.errors).toBeUndefined();
    expect(response.data).toEqual({ viewer: null });
  });

  it.each([
    ["depth", tooDeep, "DEPTH_LIMIT_EXCEEDED"],
    ["aliases", aliases, "ALIAS_LIMIT_EXCEEDED"],
    ["tokens", manyTokens, "TOKEN_LIMIT_EXCEEDED"],
  ])(
    "rejects too many %s over graphql-ws with the same code, and the connection stays usable",
    async (_name, query, code) => {
      const client = wsClient(limited.wsUrl);
      try {
        const rejected = await wsRequest(client, query);
        expect(rejected.errors?.map((e) => e.extensions?.code)).toContain(code);
        expect(rejected.errors?.[0]?.extensions?.requestId).toMatch(/^[0-9a-f-]{36}$/);
        expect((await wsRequest(client, "{ __typename }")).data).toEqual({ __typename: "Query" });
      } finally {
        await client.dispose();
      }
    },
  );
});

describe("viewer, node and tenant visibility", () => {
  it("gives null for viewer without credentials", async () => {
    expect((await gql(server.graphqlUrl, "{ viewer { id } }")).data).toEqual({ viewer: null });
  });

  it("resolves the viewer and their organizations through node(id:) with global ids", async () => {
    const { user, org, token } = await createUser(server.graphqlUrl);
    const viewer = await gql(server.graphqlUrl, ViewerQuery, { token });
    expect(viewer.data?.viewer?.id).toBe(user.id);
    expect(viewer.data?.viewer?.memberships[0]?.organization.id).toBe(org.id);

    const node = await gql(server.graphqlUrl, NodeQuery, {
      token,
      variables: { id: org.id },
    });
    expect(node.data).toEqual({ node: { id: org.id, slug: org.slug } });
  });

  it("hides another organization's rows: node(id:) is null, exactly as for an id that does not exist", async () => {
    const a = await createUser(server.graphqlUrl);
    const b = await createUser(server.graphqlUrl);
    for (const id of [a.org.id, a.user.id]) {
      const seenByB = await gql(server.graphqlUrl, NodeQuery, { token: b.token, variables: { id } });
      expect(seenByB.errors).toBeUndefined();
      expect(seenByB.data).toEqual({ node: null });
      const anonymous = await gql(server.graphqlUrl, NodeQuery, { variables: { id } });
      expect(anonymous.data).toEqual({ node: null });
    }
    // The owner still sees them: the nulls above are visibility, not a broken lookup.
    const seenByA = await gql(server.graphqlUrl, NodeQuery, {
      token: a.token,
      variables: { id: a.org.id },
    });
    expect(seenByA.data?.node?.id).toBe(a.org.id);
    const missing = await gql(server.graphqlUrl, NodeQuery, {
      token: b.token,
      variables: { id: encodeId("Organization", "0190b6a0-0000-7000-8000-000000000000") },
    });
    expect(missing.data).toEqual({ node: null });
  });

  it("rejects a malformed id as bad input", async () => {
    for (const id of ["xx", encodeId("User", "1")]) {
      const response = await gql(server.graphqlUrl, `{ node(id: "${id}") { id } }`);
      expect(response.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    }
  });

  it("serves queries over graphql-ws with the token in connection_init", async () => {
    const { user, token } = await createUser(server.graphqlUrl);
    const client = wsClient(server.wsUrl, { authorization: `Bearer ${token}` });
    try {
      const result = await wsRequest(client, "{ viewer { email } }");
      expect(result.data).toEqual({ viewer: { email: user.email } });
    } finally {
      await client.dispose();
    }
  });
});

describe("logs", () => {
  it("writes structured JSON lines carrying the request id, and never a credential", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const config = loadConfig(
      testEnv({ LOG_LEVEL: "debug", DATA_DIR: mkdtempSync(path.join(os.tmpdir(), "floyo-logs-")) }),
    );
    const app = buildApp(config, { logger: pino({ level: "debug" }, sink) });
    const { url } = await app.start();
    try {
      const { token } = await createUser(`${url}/graphql`);
      const r = await gql(`${url}/graphql`, "{ viewer { id } }", { token, headers: { "x-request-id": "log-check-1" } });
      expect(r.errors).toBeUndefined();
    } finally {
      await app.stop();
      rmSync(config.dataDir, { recursive: true, force: true });
    }
    expect(lines).toContainEqual(
      expect.objectContaining({ requestId: "log-check-1", msg: "request", status: 200, method: "POST" }),
    );
    const text = JSON.stringify(lines);
    expect(text).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/); // no JWT anywhere
    expect(text).not.toContain("correct horse battery staple");
  });
});
