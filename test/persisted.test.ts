// Persisted operations as clients use them: Apollo Client's and urql's persisted-query links,
// unchanged, on every transport; trusted documents only, for the caller kinds configured so.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ApolloClient, gql as apolloGql, HttpLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { Client, cacheExchange, fetchExchange } from "@urql/core";
import { persistedExchange } from "@urql/exchange-persisted";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gql, wsClient } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";

/** A JSON answer, read as a client reads one. */
// biome-ignore lint/suspicious/noExplicitAny: answers are checked by the assertions, not the types
type Json = any;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const persisted = (hash: string) => ({ persistedQuery: { version: 1, sha256Hash: hash } });

/** The SDK's manifest, as codegen writes it: the server's trusted documents by default. */
const manifest = Object.entries(
  JSON.parse(readFileSync("sdk/generated/persisted-documents.json", "utf8")) as Record<string, string>,
).map(([key, document]) => ({ hash: key.replace(/^sha256:/, ""), document }));
const viewerDoc = manifest.find((d) => d.document.startsWith("query Viewer"))!;

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function get(url: string, params: Record<string, unknown>, headers: Record<string, string> = {}) {
  const search = new URLSearchParams(
    Object.entries(params).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  const response = await fetch(`${url}?${search}`, { headers });
  return { status: response.status, body: (await response.json()) as Json };
}

/** One operation over graphql-ws, with extensions (a persisted query's hash). */
function wsRequest(
  client: ReturnType<typeof wsClient>,
  query: string,
  variables?: Record<string, unknown>,
  extensions?: Record<string, unknown>,
): Promise<{ data?: unknown; errors?: { extensions?: Record<string, unknown> }[] }> {
  return new Promise((resolve, reject) => {
    let result: { data?: unknown } | undefined;
    client.subscribe(
      { query, variables, extensions },
      {
        next: (value) => {
          result = value as never;
        },
        error: (err) => (Array.isArray(err) ? resolve({ errors: err }) : reject(err)),
        complete: () => (result ? resolve(result) : reject(new Error("completed without a result"))),
      },
    );
  });
}

/** Every request a client sends, as the server received it (body or query string). */
function recordingFetch(sent: Json[]): typeof fetch {
  return async (input, init) => {
    const url = new URL(String(input instanceof Request ? input.url : input));
    sent.push(
      init?.body
        ? JSON.parse(String(init.body))
        : Object.fromEntries(
            [...url.searchParams].map(([k, v]) => [k, k === "variables" || k === "extensions" ? JSON.parse(v) : v]),
          ),
    );
    return fetch(input, init);
  };
}

describe("automatic persisted queries", () => {
  let server: TestServer;
  let alice: TestUser;
  beforeAll(async () => {
    server = await startServer();
    alice = await createUser(server.graphqlUrl);
  });
  afterAll(() => server?.stop());

  it("work with Apollo Client's persisted-query link unchanged, over POST and GET", async () => {
    for (const useGETForHashedQueries of [false, true]) {
      const sent: Json[] = [];
      const client = new ApolloClient({
        cache: new InMemoryCache(),
        link: new PersistedQueryLink({ sha256, useGETForHashedQueries }).concat(
          new HttpLink({
            uri: server.graphqlUrl,
            headers: { authorization: `Bearer ${alice.token}` },
            fetch: recordingFetch(sent),
          }),
        ),
      });
      // A document no other test sends, so the first hash is unknown to the server.
      const query = apolloGql`query ApolloViewer${useGETForHashedQueries ? "Get" : "Post"} { viewer { id email } }`;
      const first = await client.query({ query, fetchPolicy: "network-only" });
      expect(first.data).toMatchObject({ viewer: { id: alice.user.id, email: alice.email } });
      // Hash alone, refused as unknown; then hash and text, which registered it.
      expect(sent.map((s) => ({ hash: !!s.extensions?.persistedQuery, text: !!s.query }))).toEqual([
        { hash: true, text: false },
        { hash: true, text: true },
      ]);
      const again = await client.query({ query, fetchPolicy: "network-only" });
      expect(again.data).toEqual(first.data);
      expect(sent).toHaveLength(3);
      expect(sent[2]?.query).toBeUndefined();
    }
  });

  it("work with urql's persisted exchange unchanged", async () => {
    const sent: Json[] = [];
    const client = new Client({
      url: server.graphqlUrl,
      exchanges: [cacheExchange, persistedExchange({ generateHash: async (q) => sha256(q) }), fetchExchange],
      fetch: recordingFetch(sent),
      fetchOptions: { headers: { authorization: `Bearer ${alice.token}` } },
      requestPolicy: "network-only",
    });
    const query = "query UrqlViewer { viewer { id } }";
    const first = await client.query(query, {}).toPromise();
    expect(first.error).toBeUndefined();
    expect(first.data).toMatchObject({ viewer: { id: alice.user.id } });
    expect(sent.length).toBe(2);
    const again = await client.query(query, {}).toPromise();
    expect(again.data).toEqual(first.data);
    expect(sent.length).toBe(3);
  });

  it("answer the protocol's errors with stable codes on POST, GET and WebSocket alike", async () => {
    const unknown = sha256(`query Unknown${Math.random()} { __typename }`);
    const viaPost = await post(server.graphqlUrl, { extensions: persisted(unknown) });
    const viaGet = await get(server.graphqlUrl, { extensions: persisted(unknown) });
    for (const r of [viaPost, viaGet]) {
      expect(r.status).toBe(200);
      expect(r.body.errors[0]).toMatchObject({
        message: "PersistedQueryNotFound",
        extensions: { code: "PERSISTED_QUERY_NOT_FOUND" },
      });
    }
    const ws = wsClient(server.wsUrl);
    try {
      const viaWs = await wsRequest(ws, "", undefined, persisted(unknown));
      expect(viaWs.errors?.[0]?.extensions?.code).toBe("PERSISTED_QUERY_NOT_FOUND");
      // Registered over HTTP, run by hash over WebSocket (graphql-ws needs a query: empty).
      const text = "query WsTypename { __typename }";
      expect((await post(server.graphqlUrl, { query: text, extensions: persisted(sha256(text)) })).body).toMatchObject({
        data: { __typename: "Query" },
      });
      expect(await wsRequest(ws, "", undefined, persisted(sha256(text)))).toMatchObject({
        data: { __typename: "Query" },
      });
    } finally {
      await ws.dispose();
    }

    const text = "{ __typename }";
    const mismatch = await post(server.graphqlUrl, { query: text, extensions: persisted(sha256("other")) });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_HASH_MISMATCH");
    const version = await post(server.graphqlUrl, {
      query: text,
      extensions: { persistedQuery: { version: 2, sha256Hash: sha256(text) } },
    });
    expect(version.status).toBe(400);
    expect(version.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_SUPPORTED");
  });

  it("registers only documents that validate", async () => {
    const invalid = `query Invalid${Date.now()} { noSuchField }`;
    const sent = await post(server.graphqlUrl, { query: invalid, extensions: persisted(sha256(invalid)) });
    expect(sent.body.errors[0].extensions.code).toBe("GRAPHQL_VALIDATION_FAILED");
    const byHash = await post(server.graphqlUrl, { extensions: persisted(sha256(invalid)) });
    expect(byHash.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_FOUND");
  });

  it("refuses malformed hashes and inherited names with BAD_REQUEST, never a 500", async () => {
    const cases: unknown[] = [
      { documentId: "constructor" },
      { documentId: "__proto__" },
      { documentId: { toString: "x" } },
      { documentId: "a".repeat(100_000) },
      { extensions: { persistedQuery: "constructor" } },
      { extensions: { persistedQuery: { version: 1, sha256Hash: "toString" } } },
      { extensions: { persistedQuery: { version: 1, sha256Hash: ["a".repeat(64)] } } },
      { extensions: { persistedQuery: { version: "1", sha256Hash: "a".repeat(64) } } },
      JSON.parse('{"extensions": {"__proto__": {"persistedQuery": {"version": 1, "sha256Hash": "x"}}}}'),
    ];
    for (const body of cases) {
      const { status, body: answer } = await post(server.graphqlUrl, body);
      expect(status, JSON.stringify(body).slice(0, 80)).toBeGreaterThanOrEqual(200);
      expect(status).toBeLessThan(500);
      expect(answer.errors?.[0]?.extensions?.code, JSON.stringify(body).slice(0, 80)).toMatch(
        /^(BAD_REQUEST|PERSISTED_QUERY_NOT_SUPPORTED|PERSISTED_QUERY_NOT_FOUND)$/,
      );
    }
  });

  it.runIf(services)("are shared by every instance through Redis", async () => {
    const other = await startServer();
    try {
      const text = `query Shared${Date.now()} { __typename }`;
      await post(server.graphqlUrl, { query: text, extensions: persisted(sha256(text)) });
      expect((await post(other.graphqlUrl, { extensions: persisted(sha256(text)) })).body).toMatchObject({
        data: { __typename: "Query" },
      });
    } finally {
      await other.stop();
    }
  });
});

describe("trusted documents only, for browsers and anonymous callers", () => {
  let server: TestServer;
  let alice: TestUser;
  let apiKey: string;
  let dataDir: string | undefined;
  beforeAll(async () => {
    // Registration is not one of the SDK's documents: the account and its key are made on an
    // unrestricted server first, then the same database is served trusted-only.
    dataDir = services ? undefined : mkdtempSync(path.join(os.tmpdir(), "floyo-trusted-"));
    const open = await startServer(dataDir ? { DATA_DIR: dataDir } : {});
    try {
      alice = await createUser(open.graphqlUrl);
      const created = await gql<{ apiKeyCreate: { secret: string } }>(
        open.graphqlUrl,
        "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
        { token: alice.token, variables: { input: { organizationId: alice.org.id, name: "ci", role: "VIEWER" } } },
      );
      apiKey = created.data?.apiKeyCreate.secret ?? JSON.stringify(created.errors);
    } finally {
      await open.stop();
    }
    server = await startServer({ TRUSTED_DOCUMENTS_ONLY: "anonymous,user", ...(dataDir ? { DATA_DIR: dataDir } : {}) });
  });
  afterAll(async () => {
    await server?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs the manifest's documents by id, by hash or as their exact text", async () => {
    const auth = { authorization: `Bearer ${alice.token}` };
    const byId = await post(server.graphqlUrl, { documentId: `sha256:${viewerDoc.hash}` }, auth);
    expect(byId.body.data.viewer.id).toBe(alice.user.id);
    const byGet = await get(server.graphqlUrl, { documentId: viewerDoc.hash }, auth);
    expect(byGet.body.data.viewer.id).toBe(alice.user.id);
    const byHash = await post(server.graphqlUrl, { extensions: persisted(viewerDoc.hash) }, auth);
    expect(byHash.body.data.viewer.id).toBe(alice.user.id);
    const byText = await post(server.graphqlUrl, { query: viewerDoc.document }, auth);
    expect(byText.body.data.viewer.id).toBe(alice.user.id);
  });

  it("refuses any other document from a user or an anonymous caller, on every transport", async () => {
    const text = "query Mine { viewer { id } }";
    const auth = { authorization: `Bearer ${alice.token}` };
    for (const r of [
      await post(server.graphqlUrl, { query: text }, auth),
      await post(server.graphqlUrl, { query: text }),
      await post(server.graphqlUrl, { query: text, extensions: persisted(sha256(text)) }, auth),
      await get(server.graphqlUrl, { query: text }, auth),
    ]) {
      expect(r.status).toBe(403);
      expect(r.body.errors[0].extensions.code).toBe("PERSISTED_QUERY_ONLY");
      expect(r.body.data ?? null).toBeNull();
    }
    const ws = wsClient(server.wsUrl, { authorization: `Bearer ${alice.token}` });
    try {
      const viaWs = await wsRequest(ws, text);
      expect(viaWs.errors?.[0]?.extensions?.code).toBe("PERSISTED_QUERY_ONLY");
    } finally {
      await ws.dispose();
    }
  });

  it("lets API keys send documents of their own; a forged key gets no further than 401", async () => {
    expect(apiKey).toMatch(/^flo_/);
    const own = await post(server.graphqlUrl, { query: "{ activeOrganization { id } }" }, { "x-api-key": apiKey });
    expect(own.body).toMatchObject({ data: { activeOrganization: { id: alice.org.id } } });
    const forged = await post(server.graphqlUrl, { query: "{ __typename }" }, { "x-api-key": "flo_forged" });
    expect(forged.status).toBe(401);
    expect(forged.body.data ?? null).toBeNull();
  });
});
