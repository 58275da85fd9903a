// HTTP details a browser or a partner's client depends on: CORS, content types, status codes,
// malformed bodies and their limits, on the JSON POST path and on Yoga's (GET) alike.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ CORS_ORIGINS: "https://app.floyo.test", MAX_BODY_BYTES: "2048" });
});
afterAll(() => server.stop());

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });

describe("CORS", () => {
  it("allows a listed origin, with Vary: Origin, and no other", async () => {
    const allowed = await post('{"query":"{ __typename }"}', { origin: "https://app.floyo.test" });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.floyo.test");
    expect(allowed.headers.get("vary")).toMatch(/origin/i);
    const other = await post('{"query":"{ __typename }"}', { origin: "https://evil.test" });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a preflight for a listed origin", async () => {
    const preflight = await fetch(server.graphqlUrl, {
      method: "OPTIONS",
      headers: {
        origin: "https://app.floyo.test",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.floyo.test");
  });
});

describe("status codes and bodies", () => {
  it("gives the same answer on the JSON POST path and on GET", async () => {
    const viaPost = await (await post('{"query":"query Q { __typename }","operationName":"Q"}')).json();
    const viaGet = await (
      await fetch(`${server.graphqlUrl}?query=${encodeURIComponent("query Q { __typename }")}&operationName=Q`)
    ).json();
    // Alike but for the budget left (extensions.cost), which the first request spent from.
    expect({ ...viaPost, extensions: undefined }).toEqual({ ...viaGet, extensions: undefined });
    expect(viaPost).toMatchObject({ data: { __typename: "Query" }, extensions: { cost: { cost: 1 } } });
  });

  it("answers validation errors 400 to graphql-response+json clients and 200 to application/json ones", async () => {
    const strict = await post('{"query":"{ nope }"}', { accept: "application/graphql-response+json" });
    expect(strict.status).toBe(400);
    expect(strict.headers.get("content-type")).toMatch(/^application\/graphql-response\+json/);
    const legacy = await post('{"query":"{ nope }"}', { accept: "application/json" });
    expect(legacy.status).toBe(200);
    expect(legacy.headers.get("content-type")).toMatch(/^application\/json/);
    expect((await legacy.json()).errors[0].extensions.code).toBe("GRAPHQL_VALIDATION_FAILED");
  });

  it.each([
    ["invalid JSON", "{not json", "BAD_REQUEST", 400],
    ["a body without a query", '{"variables":{}}', "BAD_REQUEST", 400],
    ["a batch", '[{"query":"{ __typename }"}]', "BAD_REQUEST", 400],
    ["variables that are not an object", '{"query":"{ __typename }","variables":[1]}', "BAD_REQUEST", 400],
    [
      "a subscription over plain POST",
      '{"query":"subscription { suggestionCreated(organizationId: \\"x\\") { cursor } }"}',
      "BAD_REQUEST",
      400,
    ],
  ])("refuses %s with a GraphQL error", async (_name, body, code, status) => {
    const response = await post(body);
    expect(response.status).toBe(status);
    const json = await response.json();
    expect(json.errors[0].extensions).toMatchObject({ code, requestId: response.headers.get("x-request-id") });
  });

  it("refuses a body over MAX_BODY_BYTES, announced or streamed", async () => {
    const big = JSON.stringify({ query: `{ __typename } # ${"x".repeat(4096)}` });
    const announced = await post(big);
    expect(announced.status).toBe(413);
    expect((await announced.json()).errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
    // Without a content-length, the limit applies while reading.
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(big));
        controller.close();
      },
    });
    const streamed = await fetch(server.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect((await streamed.json()).errors[0].extensions.code).toBe("PAYLOAD_TOO_LARGE");
  });
});
