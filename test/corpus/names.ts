// Names every JavaScript object inherits (constructor, __proto__, toString …) wherever a
// request names something: operations, variables, enum values, keys, connectors, step types, headers.
import { attack, type Case, op } from "./case.ts";

const notFound = { code: "NOT_FOUND" };
const input = { code: "BAD_USER_INPUT" };

const INHERITED = ["constructor", "__proto__", "toString", "hasOwnProperty", "valueOf", "__defineGetter__"];
export const inheritedNames: Case[] = [
  ...INHERITED.map(
    (name): Case => ({
      name: `operationName ${name} naming no operation`,
      request: () => ({ as: "attacker", json: op("query A { __typename }", undefined, name) }),
      expect: { status: 400 },
    }),
  ),
  ...INHERITED.map(
    (name): Case => ({
      name: `an OrgRole enum value ${name}`,
      request: (w) =>
        attack(
          'mutation($id: ID!, $r: OrgRole!) { apiKeyCreate(input: { organizationId: $id, name: "x", role: $r }) { secret } }',
          { id: w.attacker.orgId, r: name },
        ),
      expect: input,
    }),
  ),
  ...INHERITED.map(
    (name): Case => ({
      name: `a connector named ${name}`,
      request: (w) =>
        attack(
          'mutation($id: ID!, $c: String!) { integrationCreate(input: { organizationId: $id, connector: $c, name: "x", config: {} }) { id } }',
          { id: w.attacker.orgId, c: name },
        ),
      expect: { code: ["BAD_USER_INPUT", "CONNECTOR_CONFIG_INVALID", "NOT_FOUND"] },
    }),
  ),
  ...INHERITED.map(
    (name): Case => ({
      name: `a workflow step of type ${name}`,
      request: (w) =>
        attack("mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }", {
          input: { organizationId: w.attacker.orgId, name: "x", definition: { steps: [{ id: "s", type: name }] } },
        }),
      expect: { code: ["BAD_USER_INPUT", "STEP_INVALID"] },
    }),
  ),
  ...INHERITED.map(
    (name): Case => ({
      name: `X-Organization-Id ${name}`,
      request: () => ({
        as: "attacker",
        json: op("{ activeOrganization { id } }"),
        headers: { "x-organization-id": name },
      }),
      expect: { status: 400, ...input },
    }),
  ),
  ...["constructor", "__proto__", "toString"].map(
    (name): Case => ({
      name: `a variable named $${name}, not provided`,
      request: () => attack(`query($${name}: ID!) { node(id: $${name}) { id } }`, {}),
      expect: { code: "GRAPHQL_VALIDATION_FAILED" },
    }),
  ),
  {
    name: "variables with an own __proto__ key and a required $id missing",
    request: () => ({
      as: "attacker",
      body: '{"query":"query($id: ID!) { node(id: $id) { id } }","variables":{"__proto__":{"id":"x"}}}',
      headers: { "content-type": "application/json" },
    }),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "an input object with a __proto__ field",
    request: (w) => ({
      as: "attacker",
      body: `{"query":"mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }","variables":{"input":{"__proto__":{"id":"${w.victim.orgId}"},"name":"x"}}}`,
      headers: { "content-type": "application/json" },
    }),
    expect: input,
  },
  {
    name: "an input object with a constructor field",
    request: (w) =>
      attack("mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { id } }", {
        input: { id: w.attacker.orgId, constructor: { prototype: { name: "x" } } },
      }),
    expect: input,
  },
  {
    name: "a definition whose step is keyed __proto__",
    request: (w) => ({
      as: "attacker",
      body: `{"query":"mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }","variables":{"input":{"organizationId":"${w.attacker.orgId}","name":"x","definition":{"steps":[{"__proto__":{"type":"delay","id":"p","ms":1}}]}}}}`,
      headers: { "content-type": "application/json" },
    }),
    expect: { code: ["BAD_USER_INPUT", "STEP_INVALID"] },
  },
  {
    name: "integration config keyed __proto__ into the victim's organization",
    request: (w) => ({
      as: "attacker",
      body: `{"query":"mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }","variables":{"input":{"organizationId":"${w.victim.orgId}","connector":"http","name":"x","config":{"__proto__":{"allowedHosts":["*"]}}}}}`,
      headers: { "content-type": "application/json" },
    }),
    expect: notFound,
  },
  {
    name: "an enum literal constructor",
    request: (w) =>
      attack(
        `mutation { apiKeyCreate(input: { organizationId: "${w.attacker.orgId}", name: "x", role: constructor }) { secret } }`,
      ),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a field named __proto__",
    request: () => attack("{ __proto__ }"),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a type condition on constructor",
    request: () => attack("{ viewer { ... on constructor { id } } }"),
    expect: { code: "GRAPHQL_VALIDATION_FAILED" },
  },
  {
    name: "a live feed enum toString",
    request: (w) =>
      attack("query($id: ID!, $f: LiveFeed!) { liveCursor(feed: $f, organizationId: $id) }", {
        id: w.attacker.orgId,
        f: "toString",
      }),
    expect: input,
  },
  {
    name: "an event kind __proto__",
    request: (w) =>
      attack(
        'mutation($id: ID, $k: EventKind!) { eventRecord(input: { organizationId: $id, event: { kind: $k, filePath: "/x" } }) { id } }',
        { id: w.attacker.orgId, k: "__proto__" },
      ),
    expect: input,
  },
];
