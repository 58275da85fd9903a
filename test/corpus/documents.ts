// Documents built to cost the server more than they cost the sender: nesting, aliases,
// fragments and directives, each multiplied past the configured limits.
import { attack, type Case } from "./case.ts";

const ORG = (w: { attacker: { orgId: string } }) => w.attacker.orgId;

/** `levels` nested selections along a cycle of the schema: User > memberships > organization > members > edges > node > user > … */
function deepSelection(levels: number) {
  const cycle = ["memberships", "organization", "members(first: 2)", "edges", "node", "user"];
  const fields = Array.from({ length: levels - 1 }, (_, i) => cycle[i % cycle.length]);
  return `{ viewer { ${fields.map((f) => `${f} { `).join("")}id ${"} ".repeat(fields.length)}} }`;
}

const chain = (levels: number, open: string, close: string, leaf: string) =>
  `${open.repeat(levels)}${leaf}${close.repeat(levels)}`;

export const deepNesting: Case[] = [
  {
    name: "viewer > memberships > organization cycle 13 deep",
    request: () => attack(deepSelection(13)),
    expect: { code: "DEPTH_LIMIT_EXCEEDED" },
  },
  {
    name: "the same cycle 37 deep",
    request: () => attack(deepSelection(37)),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "inline fragments nested 300 deep",
    request: () => attack(`{ viewer { ${chain(300, "... on User { ", "} ", "id ")} } }`),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "braces nested 10,000 deep",
    request: () => attack(chain(10_000, "{ a ", "}", "b")),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "list literal nested 5,000 deep in an argument",
    request: () => attack(`{ nodes(ids: ${chain(5000, "[", "]", '"x"')}) { id } }`),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "object literal nested 3,000 deep in an argument",
    request: (w) =>
      attack(
        `mutation { workflowCreate(input: { organizationId: "${ORG(w)}", name: "x", definition: ${chain(3000, "{ a: ", "}", "1")} }) { id } }`,
      ),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED", "BAD_USER_INPUT"] },
  },
  {
    name: "object literal 60 deep (within the token limit)",
    request: (w) =>
      attack(
        `mutation { workflowCreate(input: { organizationId: "${ORG(w)}", name: "x", definition: ${chain(60, "{ a: ", "}", "1")} }) { id } }`,
      ),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "BAD_USER_INPUT"] },
  },
  {
    name: "parentheses-only nesting 20,000 deep",
    request: () => attack(`{ viewer${"(".repeat(20_000)} }`),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED", "GRAPHQL_PARSE_FAILED"] },
  },
  {
    name: "unbalanced closing braces",
    request: () => attack(`{ viewer { id } ${"}".repeat(5000)}`),
    expect: { code: ["GRAPHQL_PARSE_FAILED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "connections nested three times (workflows > organization > workflows …), 100 each",
    request: (w) => {
      const level = (inner: string) => `workflows(first: 100) { edges { node { organization { ${inner} } } } }`;
      return attack(`query($id: ID!) { node(id: $id) { ... on Organization { ${level(level(level("id")))} } } }`, {
        id: ORG(w),
      });
    },
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "COST_LIMIT_EXCEEDED"] },
  },
  {
    name: "deep nesting inside a subscription over HTTP",
    request: (w) => attack(`subscription { ${chain(50, "a { ", "} ", "b ")} }`, { id: ORG(w) }),
    expect: { code: ["DEPTH_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"] },
  },
];

const aliases = (n: number, field = "__typename") => Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(" ");

export const aliasBombs: Case[] = [
  {
    name: "16 aliases of viewer",
    request: () => attack(`{ ${aliases(16, "viewer { id }")} }`),
    expect: { code: "ALIAS_LIMIT_EXCEEDED" },
  },
  {
    name: "1,000 aliases of __typename",
    request: () => attack(`{ ${aliases(1000)} }`),
    expect: { code: ["ALIAS_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "100 aliases of viewer",
    request: () => attack(`{ ${aliases(100, "viewer { id email }")} }`),
    expect: { code: ["ALIAS_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "30 aliases of a login mutation (password spraying in one request)",
    request: () =>
      attack(
        `mutation { ${Array.from({ length: 30 }, (_, i) => `l${i}: authLogin(input: { email: "victim@example.test", password: "guess${i}" }) { accessToken }`).join(" ")} }`,
        undefined,
        "anonymous",
      ),
    expect: { code: ["ALIAS_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "20 aliases of passwordForgot (mail bomb in one request)",
    request: () =>
      attack(
        `mutation { ${Array.from({ length: 20 }, (_, i) => `f${i}: passwordForgot(email: "victim@example.test")`).join(" ")} }`,
        undefined,
        "anonymous",
      ),
    expect: { code: "ALIAS_LIMIT_EXCEEDED" },
  },
  {
    name: "aliases spread over nested selections (8 × 3 levels)",
    request: () => attack(`{ ${aliases(8, `viewer { ${aliases(8, `memberships { ${aliases(8, "id")} }`)} }`)} }`),
    expect: { code: ["ALIAS_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "16 aliases of nodes(ids:) with 100 ids each",
    request: (w) =>
      attack(`query($ids: [ID!]!) { ${aliases(16, "nodes(ids: $ids) { id }")} }`, {
        ids: Array(100).fill(w.victim.ids.Workflow),
      }),
    expect: { code: ["ALIAS_LIMIT_EXCEEDED", "COST_LIMIT_EXCEEDED"] },
  },
  {
    name: "aliases colliding on one name with different arguments",
    request: () => attack(`{ x: node(id: "a") { id } x: node(id: "b") { id } }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "aliases named after inherited properties",
    request: () =>
      attack(`{ constructor: __typename __proto__: __typename toString: __typename hasOwnProperty: __typename }`),
    // Answered (__typename aliases are free), each as an own property of the result.
    expect: {
      data: (d) => {
        if (
          JSON.stringify(d) !==
          '{"constructor":"Query","__proto__":"Query","toString":"Query","hasOwnProperty":"Query"}'
        )
          throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "15 aliases of a connection of connections (100 workflows × 100 runs each)",
    request: (w) =>
      attack(
        `query($id: ID!) { node(id: $id) { ... on Organization { ${aliases(15, "workflows(first: 100) { edges { node { executions(first: 100) { edges { node { id } } } } } }")} } } }`,
        { id: ORG(w) },
      ),
    expect: { code: ["COST_LIMIT_EXCEEDED", "ALIAS_LIMIT_EXCEEDED"] },
  },
];

const spreadsOf = (name: string, n: number) => Array.from({ length: n }, () => `...${name}`).join(" ");

export const fragmentBombs: Case[] = [
  {
    name: "a fragment spreading itself",
    request: () => attack(`{ viewer { ...A } } fragment A on User { id ...A }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "two fragments spreading each other",
    request: () => attack(`{ viewer { ...A } } fragment A on User { id ...B } fragment B on User { email ...A }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a cycle through a nested selection",
    request: () =>
      attack(
        `{ viewer { ...A } } fragment A on User { memberships { organization { ...B } } } fragment B on Organization { members(first: 1) { edges { node { user { ...A } } } } }`,
      ),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a 100-fragment cycle",
    request: () => {
      const frags = Array.from({ length: 100 }, (_, i) => `fragment F${i} on User { id ...F${(i + 1) % 100} }`).join(
        " ",
      );
      return attack(`{ viewer { ...F0 } } ${frags}`);
    },
    expect: { code: ["GRAPHQL_VALIDATION_FAILED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "a billion laughs: 10 levels of fragments, each spreading the next 10 times",
    request: () => {
      const frags = Array.from({ length: 10 }, (_, i) =>
        i === 9 ? `fragment L9 on Query { __typename }` : `fragment L${i} on Query { ${spreadsOf(`L${i + 1}`, 10)} }`,
      ).join(" ");
      return attack(`{ ...L0 } ${frags}`);
    },
    expect: { code: ["TOKEN_LIMIT_EXCEEDED", "COST_LIMIT_EXCEEDED", "DEPTH_LIMIT_EXCEEDED"] },
  },
  {
    name: "fan-out: 6 levels of fragments spreading the next 4 times over viewer fields",
    request: () => {
      const frags = Array.from({ length: 6 }, (_, i) =>
        i === 5
          ? `fragment M5 on User { memberships { organization { members(first: 100) { edges { node { user { id } } } } } } }`
          : `fragment M${i} on User { ${spreadsOf(`M${i + 1}`, 4)} }`,
      ).join(" ");
      return attack(`{ viewer { ...M0 } } ${frags}`);
    },
    expect: { code: ["COST_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED", "DEPTH_LIMIT_EXCEEDED"] },
  },
  {
    name: "1,000 spreads of one fragment",
    request: () => attack(`{ viewer { ${spreadsOf("A", 1000)} } } fragment A on User { id }`),
    expect: { code: ["TOKEN_LIMIT_EXCEEDED", "COST_LIMIT_EXCEEDED"] },
  },
  {
    name: "a spread of an unknown fragment",
    request: () => attack(`{ viewer { ...Nope } }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a fragment on a type that does not exist",
    request: () => attack(`{ viewer { ...A } } fragment A on Ghost { id }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a fragment named constructor on __proto__",
    request: () => attack(`{ viewer { ...constructor } } fragment constructor on __proto__ { id }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "two fragments with one name",
    request: () => attack(`{ viewer { ...A } } fragment A on User { id } fragment A on User { email }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "inline fragments on every Node type of a foreign id",
    request: (w) =>
      attack(
        `query($id: ID!) { node(id: $id) { ... on Workflow { name definition } ... on Organization { name } ... on ApiKey { prefix } ... on Integration { name } } }`,
        { id: w.victim.ids.Workflow },
      ),
    expect: {
      check: (r) => expectNoVictimData(r.text),
      data: (d) => {
        if (d.node !== null) throw new Error(`foreign node answered: ${JSON.stringify(d)}`);
      },
    },
  },
];

function expectNoVictimData(text: string) {
  if (/Victim|victim/.test(text)) throw new Error(`reply shows the victim's data: ${text.slice(0, 300)}`);
}

const repeat = (directive: string, n: number) => Array(n).fill(directive).join(" ");

export const directiveBombs: Case[] = [
  {
    name: "@include repeated 51 times",
    request: () => attack(`{ __typename ${repeat("@include(if: true)", 51)} }`),
    expect: { code: ["DIRECTIVE_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "@skip repeated 10,000 times",
    request: () => attack(`{ __typename ${repeat("@skip(if: false)", 10_000)} }`),
    expect: { code: ["DIRECTIVE_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "@include twice on one field (not repeatable)",
    request: () => attack(`{ __typename @include(if: true) @include(if: true) }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "an unknown directive",
    request: () => attack(`{ __typename @evil }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "200 unknown directives",
    request: () => attack(`{ __typename ${Array.from({ length: 200 }, (_, i) => `@d${i}`).join(" ")} }`),
    expect: { code: ["DIRECTIVE_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED", "TOKEN_LIMIT_EXCEEDED"] },
  },
  {
    name: "a directive named constructor",
    request: () => attack(`{ __typename @constructor @__proto__ @toString }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "@include without its argument",
    request: () => attack(`{ __typename @include }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "@include(if:) given a string",
    request: () => attack(`{ __typename @include(if: "true") }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "@skip(if:) given a variable of the wrong type",
    request: () => attack(`query($s: String) { __typename @skip(if: $s) }`, { s: "yes" }),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "@include(if: $x) with $x a JSON object",
    request: () => attack(`query($x: Boolean!) { __typename @include(if: $x) }`, { x: { constructor: true } }),
    expect: { code: "BAD_USER_INPUT" },
  },
  {
    name: "@deprecated used in a query",
    request: () => attack(`{ __typename @deprecated }`),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "directives on every fragment and spread, 40 each",
    request: () =>
      attack(
        `{ viewer { ...A ${repeat("@skip(if: false)", 40)} } } fragment A on User ${repeat("@include(if: true)", 40)} { id }`,
      ),
    expect: { code: ["DIRECTIVE_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "a directive on the operation itself, repeated",
    request: () => attack(`query Q ${repeat("@skip(if: false)", 60)} { __typename }`),
    expect: { code: ["DIRECTIVE_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED"] },
  },
  {
    name: "a directive with 1,000 arguments",
    request: () => attack(`{ __typename @include(${Array.from({ length: 1000 }, (_, i) => `a${i}: 1`).join(" ")}) }`),
    expect: { code: ["TOKEN_LIMIT_EXCEEDED", "GRAPHQL_VALIDATION_FAILED"] },
  },
];
