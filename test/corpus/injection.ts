// Filter and search text written to escape its query: SQL, LIKE wildcards, regex
// metacharacters, Prisma operator objects smuggled in place of strings. Reads that answer must
// match the text literally, among the attacker's own rows only.
import { attack, type Case, type HttpRequest } from "./case.ts";
import { SPECIAL_NAMES, type World } from "./world.ts";

const input = { code: "BAD_USER_INPUT" };
const search = (w: World, text: unknown): HttpRequest =>
  attack(
    "query($id: ID!, $s: String) { node(id: $id) { ... on Organization { workflows(first: 50, filter: { search: $s }) { edges { node { name } } } } } }",
    {
      id: w.attacker.orgId,
      s: text,
    },
  );

/** A raw JSON body whose text is spliced in where the placeholder string stood (escapes JSON.stringify would not write). */

/** The attacker's workflows a search answered, by name. */
const names = (d: Record<string, unknown>) =>
  (d.node as { workflows: { edges: { node: { name: string } }[] } }).workflows.edges.map((e) => e.node.name).sort();

/** The search matches names containing the text literally (any case), and never another tenant's. */
const literally = (text: string) => (d: Record<string, unknown>) => {
  const expected = SPECIAL_NAMES.filter((n) => n.toLowerCase().includes(text.toLowerCase())).sort();
  const got = names(d);
  if (JSON.stringify(got) !== JSON.stringify(expected))
    throw new Error(
      `search ${JSON.stringify(text)} found ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`,
    );
};

const eventSearch = (w: World, filter: Record<string, unknown>) =>
  attack(
    "query($id: ID!, $f: EventFilter) { node(id: $id) { ... on Organization { events(first: 50, filter: $f) { totalCount edges { node { filePath } } } } } }",
    { id: w.attacker.orgId, f: filter },
  );
const eventPaths = (d: Record<string, unknown>) =>
  (d.node as { events: { edges: { node: { filePath: string } }[] } }).events.edges.map((e) => e.node.filePath);
const onlyPaths = (expected: string[]) => (d: Record<string, unknown>) => {
  const got = [...new Set(eventPaths(d))].sort();
  if (JSON.stringify(got) !== JSON.stringify([...expected].sort()))
    throw new Error(`found ${JSON.stringify(got)}, expected ${JSON.stringify(expected)}`);
};
const SPECIAL_PATH = "/w/100%_\\'.docx";

export const injection: Case[] = [
  ...[
    "' OR 1=1 --",
    "%",
    "_",
    "\\",
    ".*",
    "'; DROP TABLE workflows; --",
    "%' OR '1'='1",
    "\\%",
    "[a-z]",
    "a_b",
    "100%",
    "$where",
    "' UNION SELECT email FROM users --",
    "(?i)victim",
    "Victim payroll",
    "",
  ].map(
    (text): Case => ({
      name: `workflow search ${JSON.stringify(text)}`,
      request: (w) => search(w, text),
      expect: { data: literally(text) },
    }),
  ),
  {
    name: "workflow search given a Prisma operator object",
    request: (w) => search(w, { contains: "" }),
    expect: input,
  },
  { name: 'workflow search given {"not": null}', request: (w) => search(w, { not: null }), expect: input },
  {
    name: "workflow search given an operator object as a JSON string",
    request: (w) => search(w, '{"contains":"Victim"}'),
    expect: { data: literally('{"contains":"Victim"}') },
  },
  { name: "workflow search given an array", request: (w) => search(w, ["%", "_"]), expect: input },
  {
    name: "event search '%'",
    request: (w) => eventSearch(w, { search: "%" }),
    expect: { data: onlyPaths([SPECIAL_PATH]) },
  },
  {
    name: "event search '_'",
    request: (w) => eventSearch(w, { search: "_" }),
    expect: { data: onlyPaths([SPECIAL_PATH]) },
  },
  {
    name: "event search a backslash",
    request: (w) => eventSearch(w, { search: "\\" }),
    expect: { data: onlyPaths([SPECIAL_PATH]) },
  },
  {
    name: "event search a quote",
    request: (w) => eventSearch(w, { search: "'" }),
    expect: { data: onlyPaths([SPECIAL_PATH]) },
  },
  {
    name: "event search ' OR 1=1 --",
    request: (w) => eventSearch(w, { search: "' OR 1=1 --" }),
    expect: { data: onlyPaths([]) },
  },
  { name: "event tool filter '%'", request: (w) => eventSearch(w, { tool: "%" }), expect: { data: onlyPaths([]) } },
  {
    name: "event extension filter '%'",
    request: (w) => eventSearch(w, { extension: "%" }),
    expect: { data: onlyPaths([]) },
  },
  {
    name: "event customType filter with SQL",
    request: (w) => eventSearch(w, { customType: "x' OR '1'='1" }),
    expect: { data: onlyPaths([]) },
  },
  {
    name: "event filter with an operator object for tool",
    request: (w) => eventSearch(w, { tool: { not: "x" } }),
    expect: input,
  },
  {
    name: "event filter with an unknown field",
    request: (w) => eventSearch(w, { userId: w.victim.ids.User, OR: [{}] }),
    expect: input,
  },
  {
    name: "event kinds given a string",
    request: (w) => eventSearch(w, { kinds: "FILE_OPENED' OR 1=1" }),
    expect: input,
  },
  {
    name: "audit filter action '%' and resourceType '_'",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { auditLogs(first: 50, filter: { action: "%", resourceType: "_", resourceId: "\' OR 1=1 --" }) { edges { node { id } } } } } }',
        { id: w.attacker.orgId },
      ),
    expect: {
      data: (d) => {
        if ((d.node as { auditLogs: { edges: unknown[] } }).auditLogs.edges.length) throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "temporal patterns fromType '%'",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { temporalPatterns(first: 50, filter: { fromType: "%", toType: "_" }) { edges { node { id } } } } } }',
        { id: w.attacker.orgId },
      ),
    expect: {
      data: (d) => {
        if ((d.node as { temporalPatterns: { edges: unknown[] } }).temporalPatterns.edges.length)
          throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "pattern extensions ['%', '.*']",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { patterns(first: 50, filter: { extensions: ["%", ".*"] }) { edges { node { id } } } } } }',
        { id: w.attacker.orgId },
      ),
    expect: {
      data: (d) => {
        if ((d.node as { patterns: { edges: unknown[] } }).patterns.edges.length) throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "file relationships of path '%'",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { fileRelationships(first: 50, path: "%") { edges { cursor } } } } }',
        { id: w.attacker.orgId },
      ),
    expect: {
      data: (d) => {
        if ((d.node as { fileRelationships: { edges: unknown[] } }).fileRelationships.edges.length)
          throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "an orderBy field that is SQL",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { events(orderBy: { field: "occurred_at; DROP TABLE events" }) { totalCount } } } }',
        { id: w.attacker.orgId },
      ),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "an orderBy variable with an unknown direction",
    request: (w) =>
      attack(
        "query($id: ID!, $o: EventOrder) { node(id: $id) { ... on Organization { events(orderBy: $o) { totalCount } } } }",
        { id: w.attacker.orgId, o: { field: "OCCURRED_AT", direction: "ASC NULLS FIRST; --" } },
      ),
    expect: input,
  },
  {
    name: "event insights with a time zone that is SQL",
    request: (w) =>
      attack(
        'query($id: ID!) { node(id: $id) { ... on Organization { eventInsights(timeZone: "UTC\'; DROP TABLE events; --") { total } } } }',
        { id: w.attacker.orgId },
      ),
    expect: { code: ["BAD_USER_INPUT", "GRAPHQL_VALIDATION_FAILED"] },
  },
  // A huge LIMIT is only a bound: the attacker's own count, nothing else.
  {
    name: "event insights with top: 2^31-1",
    request: (w) =>
      attack(
        "query($id: ID!) { node(id: $id) { ... on Organization { eventInsights(top: 2147483647) { total topTools { name } } } } }",
        { id: w.attacker.orgId },
      ),
    expect: {
      data: (d) => {
        if ((d.node as { eventInsights: { total: number } }).eventInsights.total !== 7)
          throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "a schedule cron that is a shell command",
    request: (w) =>
      attack("mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }", {
        input: { workflowId: w.attacker.ids.Workflow, cron: "* * * * * ; rm -rf /" },
      }),
    expect: input,
  },
  {
    name: "a schedule time zone that is a path",
    request: (w) =>
      attack("mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) { id } }", {
        input: { workflowId: w.attacker.ids.Workflow, cron: "0 * * * *", timezone: "../../../../etc/passwd" },
      }),
    expect: input,
  },
];
