// What arrives before GraphQL: bodies that are not JSON, JSON of the wrong shape, bodies over
// the byte limit, announced, chunked or smuggled.
import { gzipSync } from "node:zlib";
import { attack, type Case, chunked, type HttpRequest, op } from "./case.ts";

const MB = 1024 * 1024;
const json = (body: string | Uint8Array, headers: Record<string, string> = {}): HttpRequest => ({
  as: "attacker",
  body,
  headers: { "content-type": "application/json", ...headers },
});
const bad = { status: 400, code: "BAD_REQUEST" };

export const malformedJson: Case[] = [
  { name: "empty body", request: () => json(""), expect: bad },
  { name: "truncated object", request: () => json('{"query":"{ viewer { id } }"'), expect: bad },
  { name: "truncated string", request: () => json('{"query":"{ vie'), expect: bad },
  { name: "trailing garbage after the object", request: () => json('{"query":"{ __typename }"} garbage'), expect: bad },
  {
    name: "two objects back to back",
    request: () => json('{"query":"{ __typename }"}{"query":"{ __typename }"}'),
    expect: bad,
  },
  { name: "a byte-order mark before the object", request: () => json('\ufeff{"query":"{ __typename }"}'), expect: bad },
  { name: "single quotes", request: () => json("{'query':'{ __typename }'}"), expect: bad },
  { name: "unquoted keys", request: () => json('{query:"{ __typename }"}'), expect: bad },
  { name: "a trailing comma", request: () => json('{"query":"{ __typename }",}'), expect: bad },
  { name: "a comment inside", request: () => json('{"query":"{ __typename }" /* hi */}'), expect: bad },
  {
    name: "NaN as a value",
    request: () => json('{"query":"query($n: Int) { __typename }","variables":{"n":NaN}}'),
    expect: bad,
  },
  {
    name: "Infinity as a value",
    request: () => json('{"query":"query($n: Float) { __typename }","variables":{"n":Infinity}}'),
    expect: bad,
  },
  {
    name: "1e999 for an Int",
    request: (w) =>
      json(
        `{"query":"query($id: ID!, $n: Int) { node(id: $id) { ... on Organization { events(first: $n) { totalCount } } } }","variables":{"id":"${w.attacker.orgId}","n":1e999}}`,
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "1e999 for a Float",
    request: (w) =>
      json(
        `{"query":"query($id: ID!, $c: Float) { node(id: $id) { ... on Organization { suggestions(filter: { minConfidence: $c }) { edges { node { id } } } } } }","variables":{"id":"${w.attacker.orgId}","c":1e999}}`,
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "2^53+1 for Int",
    request: () =>
      json(
        '{"query":"query($b: Int) { organizations(first: $b) { edges { cursor } } }","variables":{"b":9007199254740993}}',
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "duplicate keys: a harmless query, then a mutation",
    request: (w) =>
      json(`{"query":"{ __typename }","query":"mutation { organizationDelete(id: \\"${w.victim.orgId}\\") }"}`),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "duplicate variables keys",
    request: (w) =>
      json(
        `{"query":"query($id: ID!) { node(id: $id) { id } }","variables":{"id":"${w.attacker.orgId}"},"variables":{"id":"${w.victim.ids.Workflow}"}}`,
      ),
    expect: { data: (d) => expectNull(d.node) },
  },
  {
    name: "invalid UTF-8 bytes",
    request: () => json(new Uint8Array([0x7b, 0x22, 0x71, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0x80, 0x22, 0x7d])),
    expect: bad,
  },
  {
    name: "an unpaired surrogate escape in an argument literal",
    request: () => json('{"query":"{ node(id: \\"\\ud800\\") { id } }"}'),
    expect: { code: ["BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED"] },
  },
  {
    name: "a NUL byte in the query text",
    request: () => json('{"query":"{ __typename \\u0000 }"}'),
    expect: { code: ["GRAPHQL_PARSE_FAILED", "BAD_REQUEST"] },
  },
  {
    name: "raw control characters inside a JSON string",
    request: () => json('{"query":"{ __typename\u0001\u0002 }"}'),
    expect: bad,
  },
  { name: "null", request: () => json("null"), expect: bad },
  { name: "a bare string", request: () => json('"{ __typename }"'), expect: bad },
  { name: "a bare number", request: () => json("42"), expect: bad },
  { name: "true", request: () => json("true"), expect: bad },
  {
    name: "a JSON body gzip-compressed without saying so",
    request: () => json(gzipSync(JSON.stringify(op("{ __typename }")))),
    expect: bad,
  },
  {
    name: "a 64 MB gzip bomb announced with Content-Encoding",
    request: () => json(gzipSync(Buffer.alloc(64 * MB, 0x20)), { "content-encoding": "gzip" }),
    expect: { status: [400, 413, 415] },
  },
  {
    name: "a gzip bomb as application/graphql+json (Yoga's path)",
    request: () => ({
      as: "attacker",
      body: gzipSync(Buffer.alloc(64 * MB, 0x20)),
      headers: { "content-type": "application/graphql+json", "content-encoding": "gzip" },
    }),
    // Not inflated: read as the (invalid) JSON it is, within the byte limit.
    expect: { code: "BAD_REQUEST" },
  },
  // The fast path reads the body as the JSON it is, whatever coding is claimed (RFC 9110 allows a 415, does not require one).
  {
    name: "an unknown Content-Encoding on plain JSON",
    request: () => json(JSON.stringify(op("{ __typename }")), { "content-encoding": "br, evil" }),
    expect: {
      data: (d) => {
        if (d.__typename !== "Query") throw new Error("bad");
      },
    },
  },
];

function expectNull(value: unknown) {
  if (value !== null) throw new Error(`expected null, got ${JSON.stringify(value)}`);
}

const shape = { status: 400, code: "BAD_REQUEST" };
export const wrongTypes: Case[] = [
  { name: "query as a number", request: () => ({ as: "attacker", json: { query: 42 } }), expect: shape },
  {
    name: "query as an array of strings",
    request: () => ({ as: "attacker", json: { query: ["{ __typename }"] } }),
    expect: shape,
  },
  {
    name: "query as an object",
    request: () => ({ as: "attacker", json: { query: { kind: "Document", definitions: [] } } }),
    expect: shape,
  },
  { name: "query as null", request: () => ({ as: "attacker", json: { query: null } }), expect: shape },
  { name: "query as true", request: () => ({ as: "attacker", json: { query: true } }), expect: shape },
  { name: "query missing", request: () => ({ as: "attacker", json: { variables: {} } }), expect: shape },
  {
    name: "query empty",
    request: () => ({ as: "attacker", json: { query: "" } }),
    expect: { status: 400, code: ["BAD_REQUEST", "GRAPHQL_PARSE_FAILED"] },
  },
  {
    name: "query of whitespace and comments only",
    request: () => ({ as: "attacker", json: { query: "  # nothing\n\t" } }),
    expect: { status: 400, code: ["BAD_REQUEST", "GRAPHQL_PARSE_FAILED"] },
  },
  {
    name: "variables as a string",
    request: () => ({ as: "attacker", json: { query: "{ __typename }", variables: '{"a":1}' } }),
    expect: shape,
  },
  {
    name: "variables as an array",
    request: () => ({ as: "attacker", json: { query: "{ __typename }", variables: [1, 2] } }),
    expect: shape,
  },
  {
    name: "variables as a number",
    request: () => ({ as: "attacker", json: { query: "{ __typename }", variables: 7 } }),
    expect: shape,
  },
  {
    name: "variables as true",
    request: () => ({ as: "attacker", json: { query: "{ __typename }", variables: true } }),
    expect: shape,
  },
  {
    name: "operationName as an object",
    request: () => ({ as: "attacker", json: { query: "query A { __typename }", operationName: { name: "A" } } }),
    expect: shape,
  },
  {
    name: "operationName as an array",
    request: () => ({ as: "attacker", json: { query: "query A { __typename }", operationName: ["A"] } }),
    expect: shape,
  },
  {
    name: "operationName as a number",
    request: () => ({ as: "attacker", json: { query: "query A { __typename }", operationName: 1 } }),
    expect: shape,
  },
  {
    name: "operationName naming no operation",
    request: () => ({ as: "attacker", json: op("query A { __typename }", undefined, "B") }),
    expect: { status: 400, code: ["BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED", "OPERATION_RESOLUTION_FAILURE"] },
  },
  {
    name: "two operations and no operationName",
    request: () => ({ as: "attacker", json: op("query A { __typename } query B { __typename }") }),
    expect: { status: 400, code: ["BAD_REQUEST", "GRAPHQL_VALIDATION_FAILED", "OPERATION_RESOLUTION_FAILURE"] },
  },
  {
    name: "an unknown persisted query hash",
    request: () => ({
      as: "attacker",
      json: { extensions: { persistedQuery: { version: 1, sha256Hash: "0".repeat(64) } } },
    }),
    expect: {
      status: [200, 400, 404],
      code: ["PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED", "BAD_REQUEST"],
    },
  },
  {
    name: "a persisted query hash that is not hex, named constructor",
    request: () => ({
      as: "attacker",
      json: { extensions: { persistedQuery: { version: 1, sha256Hash: "constructor" } } },
    }),
    expect: {
      status: [200, 400, 404],
      code: ["PERSISTED_QUERY_NOT_FOUND", "PERSISTED_QUERY_NOT_SUPPORTED", "BAD_REQUEST"],
    },
  },
  {
    name: "a variable of type ID given an object",
    request: () => attack("query($id: ID!) { node(id: $id) { id } }", { id: { equals: "x" } }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a variable of type Int given a string",
    request: () => attack("query($n: Int) { organizations(first: $n) { edges { cursor } } }", { n: "10" }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a variable of type Int given 2^31",
    request: () => attack("query($n: Int) { organizations(first: $n) { edges { cursor } } }", { n: 2 ** 31 }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: 'a variable of type Boolean given "false"',
    request: (w) =>
      attack("mutation($id: ID!, $b: Boolean) { suggestionBookmark(id: $id, bookmarked: $b) { id } }", {
        id: w.victim.ids.Suggestion,
        b: "false",
      }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a list variable given a single object",
    request: () => attack("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: { 0: "a" } }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a DateTime given a number",
    request: (w) =>
      attack(
        "query($id: ID!, $s: DateTime) { node(id: $id) { ... on Organization { events(filter: { since: $s }) { totalCount } } } }",
        { id: w.attacker.orgId, s: 1e20 },
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a DateTime that is not a date",
    request: (w) =>
      attack(
        "query($id: ID!, $s: DateTime) { node(id: $id) { ... on Organization { events(filter: { since: $s }) { totalCount } } } }",
        { id: w.attacker.orgId, s: "2024-02-30T25:61:00Z; DROP TABLE events" },
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a JSONObject given an array",
    request: (w) =>
      attack(
        'mutation($d: JSONObject!) { workflowCreate(input: { organizationId: "' +
          w.attacker.orgId +
          '", name: "x", definition: $d }) { id } }',
        { d: [1, 2] },
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a JSONObject given a string",
    request: (w) =>
      attack(
        'mutation($d: JSONObject!) { workflowCreate(input: { organizationId: "' +
          w.attacker.orgId +
          '", name: "x", definition: $d }) { id } }',
        { d: "{}" },
      ),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "a required variable left out",
    request: () => attack("query($id: ID!) { node(id: $id) { id } }", {}),
    expect: { code: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "a required variable set to null",
    request: () => attack("query($id: ID!) { node(id: $id) { id } }", { id: null }),
    expect: { code: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "first: -1",
    request: () => attack("{ organizations(first: -1) { edges { cursor } } }"),
    expect: { code: ["BAD_USER_INPUT", "BAD_REQUEST"] },
  },
  // Page sizes are capped (and cost as capped): the attacker's own two organizations, no more.
  {
    name: "first and last together, huge",
    request: () => attack("{ organizations(first: 2147483647, last: 2147483647) { edges { node { id } } } }"),
    expect: {
      data: (d, w) => {
        const ids = (d.organizations as { edges: { node: { id: string } }[] }).edges.map((e) => e.node.id).sort();
        if (JSON.stringify(ids) !== JSON.stringify([w.attacker.orgId, w.attacker.ids.PersonalOrganization].sort()))
          throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "a cursor that is not one",
    request: () => attack('{ organizations(first: 1, after: "\' OR 1=1 --") { edges { cursor } } }'),
    expect: { code: ["BAD_USER_INPUT", "BAD_REQUEST"] },
  },
  {
    name: "a cursor of base64 JSON with an operator",
    request: () =>
      attack(
        `{ organizations(first: 1, after: "${Buffer.from('{"id":{"gt":""}}').toString("base64")}") { edges { cursor } } }`,
      ),
    expect: { code: ["BAD_USER_INPUT", "BAD_REQUEST"] },
  },
];

export const oversizedBodies: Case[] = [
  {
    name: "an announced body one byte over MAX_BODY_BYTES",
    request: () => json(JSON.stringify({ query: `{ __typename } #${"x".repeat(MB)}` }).slice(0, MB + 1)),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "20 MB of chunked JSON",
    request: () => ({ as: "attacker", body: chunked(20 * MB), headers: { "content-type": "application/json" } }),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "20 MB of chunked application/graphql+json",
    request: () => ({
      as: "attacker",
      body: chunked(20 * MB),
      headers: { "content-type": "application/graphql+json" },
    }),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "20 MB of chunked JSON asking for SSE",
    request: () => ({
      as: "attacker",
      body: chunked(20 * MB),
      headers: { "content-type": "application/json", accept: "text/event-stream" },
    }),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "a chunked body of one huge JSON string",
    request: () => ({ as: "attacker", body: chunked(3 * MB, '"'), headers: { "content-type": "application/json" } }),
    expect: { status: 413 },
  },
  {
    name: "a Content-Length of 10 GB",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\n\r\n{}",
    }),
    expect: { status: 413 },
  },
  {
    name: "a negative Content-Length",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}",
    }),
    expect: { status: 400 },
  },
  {
    name: "two different Content-Length headers",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30\r\n\r\n{}",
    }),
    expect: { status: 400 },
  },
  {
    name: "Content-Length and chunked together (request smuggling)",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n",
    }),
    expect: { status: 400 },
  },
  {
    name: "a malformed chunk size",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    }),
    expect: { status: 400 },
  },
  {
    name: "a chunk of 2^64 bytes announced",
    request: () => ({
      raw: "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n",
    }),
    expect: { status: [400, 413] },
  },
  {
    name: "a body shorter than its Content-Length, then the connection half-closed",
    request: () => ({
      raw: 'POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":',
      halfClose: true,
    }),
    expect: { status: [0, 400] },
  },
  {
    name: "100 KB of headers",
    request: () => ({
      as: "attacker",
      json: op("{ __typename }"),
      headers: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-junk-${i}`, "j".repeat(1000)])),
    }),
    expect: { status: 431 },
  },
  {
    name: "a 40 KB URL",
    request: () => ({
      as: "attacker",
      path: `/graphql?query=${encodeURIComponent(`{ __typename } #${"x".repeat(40_000)}`)}`,
    }),
    expect: { status: [413, 414, 431] },
  },
];
