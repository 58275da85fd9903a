// Hostile HTTP shapes (issue 11, findings 6, 8 and 9): forged cross-site posts (forms,
// plain text, multipart without the preflight header), bodies over the limit in every content
// type and transfer encoding, inputs echoed back in errors, download links used by someone
// else or twice, and a large import that must not stall everyone else.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { collect, gql, gqlUpload, wsClient } from "./helpers/client.ts";
import { createUser, PASSWORD, uniqueEmail } from "./helpers/factories.ts";
import { liveCursor } from "./helpers/live.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";
import { startProxy } from "./helpers/tcpProxy.ts";

let server: TestServer;
let url: string;
beforeAll(async () => {
  server = await startServer({ CORS_ORIGINS: "https://app.floyo.test" });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const REGISTER = "mutation($input: AuthRegisterInput!) { authRegister(input: $input) { user { email } } }";
const registerInline = (email: string) =>
  `mutation { authRegister(input: { email: "${email}", password: "${PASSWORD}", fullName: "Forged" }) { user { email } } }`;

/** Whether an account exists for the address: registering it again says so. */
async function registered(email: string) {
  const r = await gql(url, REGISTER, { variables: { input: { email, password: PASSWORD, fullName: "Probe" } } });
  return r.errors !== undefined;
}

function chunked(bytes: number, chunk = 64 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  const piece = new TextEncoder().encode("x".repeat(chunk));
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      controller.enqueue(piece);
      sent += piece.length;
    },
  });
}

describe("cross-site request forgery", () => {
  const forms: [string, string, (email: string) => string][] = [
    [
      "application/x-www-form-urlencoded",
      "application/x-www-form-urlencoded",
      (e) => new URLSearchParams({ query: registerInline(e) }).toString(),
    ],
    ["text/plain", "text/plain", (e) => JSON.stringify({ query: registerInline(e) })],
    [
      "text/plain with a JSON-looking parameter",
      "text/plain; a=application/json",
      (e) => JSON.stringify({ query: registerInline(e) }),
    ],
    [
      "upper-case form type",
      "Application/X-WWW-Form-Urlencoded",
      (e) => new URLSearchParams({ query: registerInline(e) }).toString(),
    ],
  ];

  it.each(forms)("refuses an anonymous authRegister sent as %s (415), and registers nobody", async (_n, type, body) => {
    const email = uniqueEmail("forged");
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": type, origin: "https://evil.test" },
      body: body(email),
    });
    expect(response.status).toBe(415);
    expect((await response.json()).errors[0].extensions.code).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect(await registered(email)).toBe(false);
  });

  it("refuses a body without a content type", async () => {
    const email = uniqueEmail("forged");
    const response = await fetch(url, {
      method: "POST",
      body: new Blob([JSON.stringify({ query: registerInline(email) })]),
    });
    expect(response.status).toBe(415);
    expect(await registered(email)).toBe(false);
  });

  it("refuses a multipart mutation without the GraphQL-Preflight header, and runs it with one", async () => {
    const email = uniqueEmail("forged");
    const form = (address = email) => {
      const f = new FormData();
      f.set("operations", JSON.stringify({ query: registerInline(address) }));
      f.set("map", "{}");
      return f;
    };
    const forged = await fetch(url, { method: "POST", body: form(), headers: { origin: "https://evil.test" } });
    expect(forged.status).toBe(400);
    expect((await forged.json()).errors[0].extensions.code).toBe("CSRF_HEADER_REQUIRED");
    const empty = await fetch(url, { method: "POST", body: form(), headers: { "graphql-preflight": " " } });
    expect(empty.status).toBe(400);
    expect(await registered(email)).toBe(false);

    // (Checking registered the address above: a fresh one.)
    const fresh = uniqueEmail("preflighted");
    const allowed = await fetch(url, { method: "POST", body: form(fresh), headers: { "graphql-preflight": "1" } });
    expect({ status: allowed.status, body: await allowed.json() }).toMatchObject({
      status: 200,
      body: { data: { authRegister: { user: { email: fresh } } } },
    });
  });

  it("refuses a multipart upload without the header, even with a bearer token", async () => {
    const user = await createUser(url);
    const f = new FormData();
    f.set(
      "operations",
      JSON.stringify({
        query: "mutation($input: FileUploadInput!) { fileUpload(input: $input) { id } }",
        variables: { input: { file: null } },
      }),
    );
    f.set("map", JSON.stringify({ 0: ["variables.input.file"] }));
    f.set("0", new Blob(["hello"]), "a.txt");
    const r = await fetch(url, { method: "POST", body: f, headers: { authorization: `Bearer ${user.token}` } });
    expect(r.status).toBe(400);
    const sent = await gqlUpload(
      url,
      "mutation($input: FileUploadInput!) { fileUpload(input: $input) { id } }",
      { input: { file: null } },
      { path: "input.file", name: "a.txt", content: "hello" },
      { token: user.token },
    );
    expect(sent.errors).toBeUndefined();
  });

  it("runs queries over GET, never mutations", async () => {
    const email = uniqueEmail("get");
    const get = await fetch(`${url}?query=${encodeURIComponent(registerInline(email))}`);
    expect(get.status).toBe(405);
    expect(await registered(email)).toBe(false);
    const query = await fetch(`${url}?query=${encodeURIComponent("{ __typename }")}`);
    expect(await query.json()).toMatchObject({ data: { __typename: "Query" } });
  });

  it("still runs application/graphql+json and application/graphql bodies (browsers preflight them)", async () => {
    const json = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/graphql+json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    expect(await json.json()).toMatchObject({ data: { __typename: "Query" } });
  });
});

describe("one body limit for every content type and transfer encoding", () => {
  const shapes: [string, Record<string, string>][] = [
    ["application/graphql+json", { "content-type": "application/graphql+json" }],
    ["application/json", { "content-type": "application/json" }],
    ["application/json over SSE", { "content-type": "application/json", accept: "text/event-stream" }],
    ["application/x-www-form-urlencoded", { "content-type": "application/x-www-form-urlencoded" }],
    ["text/plain", { "content-type": "text/plain" }],
  ];

  it.each(shapes)("refuses 15 MB of chunked %s with 413", async (_name, headers) => {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: chunked(15 * 1024 * 1024),
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(413);
    expect((await response.json()).errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
  });

  it("refuses a chunked multipart body (no length to check) with 411, before its parts are read", async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "multipart/form-data; boundary=x", "graphql-preflight": "1" },
      body: chunked(15 * 1024 * 1024),
      duplex: "half",
    } as RequestInit);
    expect(response.status).toBe(411);
    expect((await response.json()).errors[0].extensions.code).toBe("LENGTH_REQUIRED");
  });

  it("refuses an announced 2 MB application/graphql+json body with 413 before reading it", async () => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/graphql+json" },
      body: JSON.stringify({ query: `{ __typename } # ${"x".repeat(2 * 1024 * 1024)}` }),
    });
    expect(response.status).toBe(413);
  });
});

describe("errors quote at most a short prefix of the input", () => {
  const huge = "A".repeat(900 * 1024);

  it("answers a 900 KB invalid id with a short message, in a variable and inline", async () => {
    const user = await createUser(url);
    const asVariable = await gql(url, "query($id: ID!) { node(id: $id) { id } }", {
      token: user.token,
      variables: { id: huge },
    });
    const inline = await gql(url, `{ node(id: "${huge}") { id } }`, { token: user.token });
    const mutation = await gql(url, "mutation($id: ID!) { workflowDelete(id: $id) }", {
      token: user.token,
      variables: { id: huge },
    });
    for (const r of [asVariable, inline, mutation]) {
      expect(JSON.stringify(r).length).toBeLessThan(2_000);
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
      expect(r.errors?.[0]?.message.length).toBeLessThanOrEqual(300);
    }
  });

  it("clips graphql-js's own variable coercion messages, and never splits a surrogate pair", async () => {
    const user = await createUser(url);
    const enumValue = await gql(url, "query($f: LiveFeed!, $org: ID!) { liveCursor(organizationId: $org, feed: $f) }", {
      token: user.token,
      variables: { f: huge, org: user.org.id },
    });
    const object = await gql(url, "query($f: LiveFeed!, $org: ID!) { liveCursor(organizationId: $org, feed: $f) }", {
      token: user.token,
      variables: { f: { a: huge.slice(0, 400_000), b: [huge.slice(0, 400_000)] }, org: user.org.id },
    });
    const emoji = await gql(url, "query($id: ID!) { node(id: $id) { id } }", {
      token: user.token,
      variables: { id: "😀".repeat(200_000) },
    });
    for (const r of [enumValue, object, emoji]) {
      expect(JSON.stringify(r).length).toBeLessThan(2_000);
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
      // Well-formed: a lone surrogate would not survive a round trip through UTF-8.
      const message = r.errors?.[0]?.message ?? "";
      expect(Buffer.from(message, "utf8").toString("utf8")).toBe(message);
    }
  });
});

describe("download links", () => {
  async function exportLink(token: string) {
    const r = await gql<{ viewerDataExport: { url: string } }>(url, "mutation { viewerDataExport { url } }", { token });
    return new URL(r.data!.viewerDataExport.url, server.url).toString();
  }

  it("refuses another signed-in user following a link, without spending it for its owner", async () => {
    const alice = await createUser(url);
    const mallory = await createUser(url);
    const link = await exportLink(alice.token);
    const stolen = await fetch(link, { headers: { authorization: `Bearer ${mallory.token}` } });
    expect(stolen.status).toBe(403);
    expect((await stolen.json()).errors[0].extensions.code).toBe("FORBIDDEN");
    const own = await fetch(link, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(own.status).toBe(200);
    await own.arrayBuffer();
  });

  it("refuses a link used twice, for the export and the analytics routes", async () => {
    const alice = await createUser(url);
    const link = await exportLink(alice.token);
    const first = await fetch(link);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    const second = await fetch(link);
    expect(second.status).toBe(410);
    expect((await second.json()).errors[0].extensions.code).toBe("DOWNLOAD_LINK_USED");

    const analytics = await gql<{ eventExport: { url: string } }>(
      url,
      "mutation($input: EventExportInput!) { eventExport(input: $input) { url } }",
      { token: alice.token, variables: { input: { organizationId: alice.org.id, dataset: "EVENTS", format: "CSV" } } },
    );
    const csv = new URL(analytics.data!.eventExport.url, server.url).toString();
    const once = await fetch(csv);
    expect(once.status).toBe(200);
    await once.text();
    expect((await fetch(csv)).status).toBe(410);
    // Two links asked for at once are two links.
    const [a, b] = await Promise.all([exportLink(alice.token), exportLink(alice.token)]);
    expect(a).not.toBe(b);
  });
});

describe.runIf(services)("download links while Redis is unreachable", () => {
  it("answers 503 with Retry-After, does not spend the link, and serves it once Redis is back", async () => {
    const redisUrl = new URL(services!.redisUrl);
    const proxy = await startProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    redisUrl.host = `127.0.0.1:${proxy.port}`;
    const own = await startServer({ REDIS_URL: redisUrl.toString() });
    try {
      const alice = await createUser(own.graphqlUrl);
      const r = await gql<{ viewerDataExport: { url: string } }>(
        own.graphqlUrl,
        "mutation { viewerDataExport { url } }",
        {
          token: alice.token,
        },
      );
      const link = new URL(r.data!.viewerDataExport.url, own.url).toString();
      await proxy.cut();
      const down = await fetch(link);
      expect(down.status).toBe(503);
      expect(down.headers.get("retry-after")).toBe("1");
      expect((await down.json()).errors[0].extensions.code).toBe("SERVICE_UNAVAILABLE");
      await proxy.restore();
      // ioredis reconnects on its own schedule: wait for its ready event, not for time.
      const redis = own.app.runtime.redis!;
      if (redis.status !== "ready") await new Promise((resolve) => redis.once("ready", resolve));
      const up = await fetch(link);
      expect(up.status).toBe(200);
      await up.arrayBuffer();
    } finally {
      await own.stop();
      proxy.close();
    }
  });
});

describe("a large import", () => {
  it("lets other requests, reads of the database included, complete while it runs", async () => {
    const user = await createUser(url);
    const lines = 30_000;
    const base = Date.now() - 86_400_000;
    const content = Array.from({ length: lines }, (_, i) =>
      JSON.stringify({
        clientEventId: `big-${i}`,
        kind: "FILE_MODIFIED",
        filePath: `/data/f${i % 50}.py`,
        tool: "vim",
        occurredAt: new Date(base + i * 500).toISOString(),
      }),
    ).join("\n");

    type Progress = { uploadId: string; phase: string; processedLines: number };
    const after = await liveCursor(url, user.token, user.org.id, "IMPORTS");
    const ws = wsClient(server.wsUrl, { authorization: `Bearer ${user.token}` });
    const progress = collect<{ eventImportProgress: Progress }>(
      ws,
      "subscription($org: ID!, $after: String) { eventImportProgress(organizationId: $org, after: $after) { uploadId phase processedLines } }",
      { org: user.org.id, after },
    );
    let finished = false;
    const imported = gqlUpload<{ eventImport: { upload: { status: string; importedCount: number } } }>(
      url,
      "mutation($input: EventImportInput!) { eventImport(input: $input) { upload { status importedCount } } }",
      { input: { file: null, organizationId: user.org.id } },
      { path: "input.file", name: "big.jsonl", content },
      { token: user.token },
    ).finally(() => {
      finished = true;
    });

    // Once rows are going in, a request without the database and one reading it both answer,
    // and the read sees the import still running: it did not wait for the import to end.
    await progress.until((items) => items.some((i) => i.eventImportProgress.phase === "IMPORTING"));
    const uploadId = progress.items.find((i) => i.eventImportProgress.phase === "IMPORTING")!.eventImportProgress
      .uploadId;
    const typename = await gql(url, "{ __typename }");
    expect(typename.data).toEqual({ __typename: "Query" });
    const read = await gql<{ node: { status: string } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Upload { status } } }",
      {
        token: user.token,
        variables: { id: uploadId },
      },
    );
    expect({ status: read.data?.node.status, finished }).toEqual({ status: "PROCESSING", finished: false });

    const result = await imported;
    expect(result.errors).toBeUndefined();
    expect(result.data?.eventImport.upload).toEqual({ status: "COMPLETED", importedCount: lines });
    const count = await gql<{ node: { events: { totalCount: number } } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Organization { events { totalCount } } } }",
      { token: user.token, variables: { id: user.org.id } },
    );
    expect(count.data?.node.events.totalCount).toBe(lines);
    await ws.dispose();
  }, 180_000);
});
