// Values inside well-formed requests: strings of megabytes or with characters no text should
// hold, lists and objects past every limit.
import { attack, type Case, type HttpRequest } from "./case.ts";
import type { World } from "./world.ts";

const input = { code: "BAD_USER_INPUT" };

const createWorkflow = (w: World, patch: Record<string, unknown>) =>
  attack("mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
    input: {
      organizationId: w.attacker.orgId,
      name: "ok",
      definition: { steps: [{ id: "w", type: "delay", ms: 1 }] },
      ...patch,
    },
  });
const orgUpdate = (w: World, patch: Record<string, unknown>) =>
  attack("mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
    input: { id: w.attacker.orgId, ...patch },
  });
const search = (w: World, text: unknown): HttpRequest =>
  attack(
    "query($id: ID!, $s: String) { node(id: $id) { ... on Organization { workflows(first: 50, filter: { search: $s }) { edges { node { name } } } } } }",
    {
      id: w.attacker.orgId,
      s: text,
    },
  );

/** A raw JSON body whose text is spliced in where the placeholder string stood (escapes JSON.stringify would not write). */
const spliced = (query: string, variables: Record<string, unknown>, raw: string): HttpRequest => ({
  as: "attacker",
  body: JSON.stringify({ query, variables }).replace('"@@raw@@"', raw),
  headers: { "content-type": "application/json" },
});

export const hugeStrings: Case[] = [
  {
    name: "a 900 KB workflow name",
    request: (w) => createWorkflow(w, { name: "A".repeat(900 * 1024) }),
    expect: input,
  },
  {
    name: "a 900 KB organization description",
    request: (w) => orgUpdate(w, { description: "d".repeat(900 * 1024) }),
    expect: input,
  },
  { name: "a 900 KB search text", request: (w) => search(w, "s".repeat(900 * 1024)), expect: input },
  {
    name: "a 900 KB event search",
    request: (w) =>
      attack(
        "query($id: ID!, $s: String) { node(id: $id) { ... on Organization { events(filter: { search: $s }) { totalCount } } } }",
        { id: w.attacker.orgId, s: "%".repeat(900 * 1024) },
      ),
    expect: input,
  },
  {
    name: "an export whose search is 10 KB",
    request: (w) =>
      attack("mutation($input: EventExportInput!) { eventExport(input: $input) { url } }", {
        input: {
          organizationId: w.attacker.orgId,
          dataset: "EVENTS",
          format: "CSV",
          filter: { search: "_".repeat(10_000) },
        },
      }),
    expect: input,
  },
  {
    name: "a 900 KB email at login",
    request: () =>
      attack(
        'mutation($e: String!) { authLogin(input: { email: $e, password: "x" }) { accessToken } }',
        { e: `${"a".repeat(900 * 1024)}@example.test` },
        "anonymous",
      ),
    expect: { code: ["BAD_USER_INPUT", "INVALID_CREDENTIALS"] },
  },
  {
    name: "a 900 KB password at login",
    request: () =>
      attack(
        'mutation($p: String!) { authLogin(input: { email: "x@example.test", password: $p }) { accessToken } }',
        { p: "p".repeat(900 * 1024) },
        "anonymous",
      ),
    expect: { code: ["BAD_USER_INPUT", "INVALID_CREDENTIALS"] },
  },
  {
    name: "a 900 KB string literal in the document",
    request: () => attack(`{ node(id: "${"x".repeat(900 * 1024)}") { id } }`),
    expect: input,
  },
  {
    name: "a 900 KB block string",
    request: () => attack(`{ node(id: """${"y".repeat(900 * 1024)}""") { id } }`),
    expect: input,
  },
  {
    name: "a 900 KB field name",
    request: () => attack(`{ ${"f".repeat(900 * 1024)} }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a 900 KB operation name",
    request: () => attack(`query ${"Q".repeat(900 * 1024)} { node(id: "x") { id } }`),
    expect: input,
  },
  {
    name: "a 900 KB variable name",
    request: () => attack(`query($${"v".repeat(900 * 1024)}: ID!) { node(id: "x") { id } }`, {}),
    expect: { code: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "a 900 KB JSON key in a definition",
    request: (w) => createWorkflow(w, { definition: { ["k".repeat(900 * 1024)]: 1, steps: [] } }),
    expect: { code: ["BAD_USER_INPUT", "STEP_INVALID"] },
  },
  {
    name: "a lone high surrogate in a name",
    request: (w) =>
      spliced(
        "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }",
        { input: { id: w.attacker.orgId, name: "@@raw@@" } },
        '"evil\\ud800"',
      ),
    expect: input,
  },
  {
    name: "a lone low surrogate in a search",
    request: (w) =>
      spliced(
        "query($id: ID!, $s: String) { node(id: $id) { ... on Organization { workflows(filter: { search: $s }) { edges { cursor } } } } }",
        { id: w.attacker.orgId, s: "@@raw@@" },
        '"\\udc00"',
      ),
    expect: input,
  },
  {
    name: "a lone surrogate as an object key",
    request: () =>
      spliced(
        'mutation($d: JSONObject!) { workflowCreate(input: { organizationId: "x", name: "x", definition: $d }) { id } }',
        { d: "@@raw@@" },
        '{"\\ud800":1}',
      ),
    expect: input,
  },
  {
    name: "a lone surrogate in the X-Organization-Id header",
    request: () => ({
      as: "attacker",
      json: { query: "{ activeOrganization { id } }" },
      headers: { "x-organization-id": "\u00ed\u00a0\u0080" },
    }),
    expect: { status: 400 },
  },
  {
    name: "a NUL byte in a workflow name",
    request: (w) => createWorkflow(w, { name: "evil\u0000name" }),
    expect: input,
  },
  { name: "a NUL byte in a search", request: (w) => search(w, "a\u0000b"), expect: { code: "BAD_USER_INPUT" } },
  {
    name: "a NUL byte in an event path filter",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { fileRelationships(path: "/w/\\u0000", first: 1) { edges { cursor } } } } }',
        { id: w.attacker.orgId },
      ),
    expect: input,
  },
  {
    name: "a NUL byte in a login email",
    request: () =>
      attack(
        'mutation { authLogin(input: { email: "victim@example.test\\u0000", password: "x" }) { accessToken } }',
        undefined,
        "anonymous",
      ),
    expect: { code: ["BAD_USER_INPUT", "INVALID_CREDENTIALS"] },
  },
  {
    name: "a NUL byte inside a definition",
    request: (w) => createWorkflow(w, { definition: { steps: [{ id: "w\u0000", type: "delay", ms: 1 }] } }),
    expect: { code: ["BAD_USER_INPUT", "STEP_INVALID"] },
  },
  {
    name: "an RTL override in a foreign organization's update",
    request: (w) =>
      attack("mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
        input: { id: w.victim.orgId, name: "\u202egpj.exe" },
      }),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "an RTL override as a workflow step id",
    request: (w) => createWorkflow(w, { definition: { steps: [{ id: "\u202eabc", type: "delay", ms: 1 }] } }),
    expect: { code: ["BAD_USER_INPUT", "STEP_INVALID"] },
  },
  {
    name: "zero-width and bidi characters in an email",
    request: () =>
      attack(
        'mutation { passwordReset(token: "\u200b\u2066x\u2069", newPassword: "correct horse battery staple") }',
        undefined,
        "anonymous",
      ),
    expect: { code: ["TOKEN_INVALID", "BAD_USER_INPUT"] },
  },
  {
    name: "an escape-sequence-laden string for terminals",
    request: (w) => createWorkflow(w, { name: "\u001b[2J\u001b[31mred", organizationId: w.victim.orgId }),
    expect: { code: "NOT_FOUND" },
  },
];

const manyEvents = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    kind: "FILE_OPENED",
    filePath: `/x/${i}`,
    occurredAt: new Date(0).toISOString(),
  }));
const nest = (levels: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
};

export const hugeInputs: Case[] = [
  {
    name: "nodes(ids:) with 101 ids",
    request: (w) =>
      attack("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: Array(101).fill(w.attacker.orgId) }),
    expect: input,
  },
  {
    name: "nodes(ids:) with 1,001 ids",
    request: () => attack("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: Array(1001).fill("x") }),
    expect: input,
  },
  {
    name: "nodes(ids:) with 101 literal ids",
    request: () => attack(`{ nodes(ids: [${Array(101).fill('"x"').join(",")}]) { id } }`),
    expect: input,
  },
  {
    name: "a batch of 1,001 events",
    request: (w) =>
      attack("mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }", {
        input: { organizationId: w.attacker.orgId, events: manyEvents(1001) },
      }),
    expect: input,
  },
  {
    name: "a batch of 1,000 events into the victim's organization",
    request: (w) =>
      attack("mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }", {
        input: { organizationId: w.victim.orgId, events: manyEvents(1000) },
      }),
    expect: { code: "NOT_FOUND" },
  },
  {
    name: "a list of 200,000 numbers in a JSON value",
    request: (w) => createWorkflow(w, { definition: { steps: [], junk: Array(200_000).fill(0) } }),
    expect: input,
  },
  {
    name: "an object of 150,000 keys (over the body limit)",
    request: (w) =>
      createWorkflow(w, { definition: Object.fromEntries(Array.from({ length: 150_000 }, (_, i) => [`k${i}`, 0])) }),
    expect: { status: 413, code: "PAYLOAD_TOO_LARGE" },
  },
  {
    name: "120,000 values in lists of 600",
    request: (w) =>
      createWorkflow(w, { definition: { steps: [], junk: Array.from({ length: 200 }, () => Array(600).fill(0)) } }),
    expect: input,
  },
  { name: "a JSON value nested 41 levels", request: (w) => createWorkflow(w, { definition: nest(41) }), expect: input },
  {
    name: "a JSON value nested 5,000 levels (spliced)",
    request: (w) =>
      spliced(
        "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
        { input: "@@raw@@" },
        `{"organizationId":"${w.attacker.orgId}","name":"x","definition":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`,
      ),
    expect: input,
  },
  {
    name: "a list nested 100,000 levels (spliced)",
    request: () =>
      spliced(
        "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
        { ids: "@@raw@@" },
        `${"[".repeat(100_000)}${"]".repeat(100_000)}`,
      ),
    expect: input,
  },
  {
    name: "a list of lists of events",
    request: (w) =>
      attack("mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }", {
        input: { organizationId: w.attacker.orgId, events: [manyEvents(2)] },
      }),
    expect: input,
  },
  {
    name: "900 unused variables of 1 KB each (within the body limit: answered, none of it echoed)",
    request: () =>
      attack("{ __typename }", Object.fromEntries(Array.from({ length: 900 }, (_, i) => [`v${i}`, "x".repeat(1000)]))),
    expect: {
      data: (d) => expectEqual(d, { __typename: "Query" }),
      check: (r) => expectEqual(r.text.length < 1000, true),
    },
  },
  {
    name: "a definition of 10,000 steps",
    request: (w) =>
      createWorkflow(w, {
        definition: { steps: Array.from({ length: 10_000 }, (_, i) => ({ id: `s${i}`, type: "delay", ms: 1 })) },
      }),
    expect: input,
  },
  {
    name: "pattern extensions filter of 5,000 entries",
    request: (w) =>
      attack(
        "query($id: ID!, $e: [String!]) { node(id: $id) { ... on Organization { patterns(filter: { extensions: $e }) { edges { node { id } } } } } }",
        { id: w.attacker.orgId, e: Array(5000).fill(".py") },
      ),
    expect: input,
  },
  {
    name: "event kinds filter of 2,000 entries",
    request: (w) =>
      attack(
        "query($id: ID!, $k: [EventKind!]) { node(id: $id) { ... on Organization { events(filter: { kinds: $k }) { totalCount } } } }",
        { id: w.attacker.orgId, k: Array(2000).fill("FILE_OPENED") },
      ),
    expect: input,
  },
  // Last of its category: while the cost calculation inspected the whole object once per unknown
  // field (quadratic), this one request held the event loop for minutes (10,000 fields: about one).
  {
    name: "an input object with 15,000 unknown fields",
    request: (w) => orgUpdate(w, Object.fromEntries(Array.from({ length: 15_000 }, (_, i) => [`f${i}`, 1]))),
    expect: input,
  },
];

function expectEqual(got: unknown, expected: unknown) {
  if (JSON.stringify(got) !== JSON.stringify(expected))
    throw new Error(`got ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
}
