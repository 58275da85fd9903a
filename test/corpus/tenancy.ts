// Ids that are not the caller's: the victim's rows addressed by every mutation and read that
// takes an id (NOT_FOUND, never FORBIDDEN), and ids that are not ids at all.
import { decodeId, encodeId } from "../../src/schema/globalId.ts";
import { attack, type Case, type HttpRequest, op } from "./case.ts";
import type { World } from "./world.ts";

const notFound = { code: "NOT_FOUND" };
const input = { code: "BAD_USER_INPUT" };
const v = (w: World, type: string) => w.victim.ids[type] as string;

/** Mutations (and reads with an id argument) the attacker aims at the victim's rows. */
const foreignMutations: [string, (w: World) => HttpRequest][] = [
  [
    "organizationUpdate",
    (w) =>
      attack('mutation($id: ID!) { organizationUpdate(input: { id: $id, name: "pwned" }) { id } }', {
        id: v(w, "Organization"),
      }),
  ],
  [
    "organizationDelete",
    (w) => attack("mutation($id: ID!) { organizationDelete(id: $id) }", { id: v(w, "Organization") }),
  ],
  [
    "organizationDelete of the victim's personal organization",
    (w) => attack("mutation($id: ID!) { organizationDelete(id: $id) }", { id: v(w, "PersonalOrganization") }),
  ],
  [
    "organizationLeave",
    (w) => attack("mutation($id: ID!) { organizationLeave(id: $id) }", { id: v(w, "Organization") }),
  ],
  [
    "organizationInvite into the victim's organization",
    (w) =>
      attack(
        'mutation($id: ID!) { organizationInvite(input: { organizationId: $id, email: "spy@example.test", role: OWNER }) { id } }',
        { id: v(w, "Organization") },
      ),
  ],
  [
    "organizationInviteRevoke",
    (w) => attack("mutation($id: ID!) { organizationInviteRevoke(id: $id) { id } }", { id: v(w, "Invite") }),
  ],
  ["membershipRemove", (w) => attack("mutation($id: ID!) { membershipRemove(id: $id) }", { id: v(w, "Membership") })],
  [
    "membershipUpdateRole",
    (w) =>
      attack("mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { id } }", { id: v(w, "Membership") }),
  ],
  [
    "apiKeyCreate in the victim's organization",
    (w) =>
      attack(
        'mutation($id: ID!) { apiKeyCreate(input: { organizationId: $id, name: "backdoor", role: ADMIN }) { secret } }',
        { id: v(w, "Organization") },
      ),
  ],
  ["apiKeyRevoke", (w) => attack("mutation($id: ID!) { apiKeyRevoke(id: $id) { id } }", { id: v(w, "ApiKey") })],
  [
    "workflowCreate in the victim's organization",
    (w) =>
      attack(
        'mutation($id: ID!) { workflowCreate(input: { organizationId: $id, name: "x", definition: { steps: [] } }) { id } }',
        { id: v(w, "Organization") },
      ),
  ],
  [
    "workflowUpdate",
    (w) =>
      attack('mutation($id: ID!) { workflowUpdate(input: { id: $id, name: "pwned" }) { id } }', {
        id: v(w, "Workflow"),
      }),
  ],
  [
    "workflowArchive",
    (w) => attack("mutation($id: ID!) { workflowArchive(id: $id) { id } }", { id: v(w, "Workflow") }),
  ],
  ["workflowDelete", (w) => attack("mutation($id: ID!) { workflowDelete(id: $id) }", { id: v(w, "Workflow") })],
  [
    "workflowRollback",
    (w) => attack("mutation($id: ID!) { workflowRollback(id: $id, version: 1) { id } }", { id: v(w, "Workflow") }),
  ],
  ["workflowRun", (w) => attack("mutation($id: ID!) { workflowRun(id: $id) { id } }", { id: v(w, "Workflow") })],
  [
    "executionCancel",
    (w) => attack("mutation($id: ID!) { executionCancel(id: $id) { id } }", { id: v(w, "Execution") }),
  ],
  [
    "scheduleCreate on the victim's workflow",
    (w) =>
      attack("mutation($id: ID!) { scheduleCreate(input: { workflowId: $id, intervalSeconds: 60 }) { id } }", {
        id: v(w, "Workflow"),
      }),
  ],
  [
    "scheduleUpdate",
    (w) =>
      attack("mutation($id: ID!) { scheduleUpdate(input: { id: $id, isPaused: false }) { id } }", {
        id: v(w, "Schedule"),
      }),
  ],
  ["scheduleDelete", (w) => attack("mutation($id: ID!) { scheduleDelete(id: $id) }", { id: v(w, "Schedule") })],
  [
    "integrationCreate in the victim's organization",
    (w) =>
      attack(
        'mutation($id: ID!) { integrationCreate(input: { organizationId: $id, connector: "slack", name: "x", config: {} }) { id } }',
        { id: v(w, "Organization") },
      ),
  ],
  [
    "integrationUpdate",
    (w) =>
      attack("mutation($id: ID!) { integrationUpdate(input: { id: $id, isActive: false }) { id } }", {
        id: v(w, "Integration"),
      }),
  ],
  [
    "integrationTest",
    (w) => attack("mutation($id: ID!) { integrationTest(id: $id) { ok } }", { id: v(w, "Integration") }),
  ],
  [
    "integrationDelete",
    (w) => attack("mutation($id: ID!) { integrationDelete(id: $id) }", { id: v(w, "Integration") }),
  ],
  [
    "integrationSecretsReseal",
    (w) => attack("mutation($id: ID!) { integrationSecretsReseal(organizationId: $id) }", { id: v(w, "Organization") }),
  ],
  [
    "suggestionApply",
    (w) => attack("mutation($id: ID!) { suggestionApply(id: $id) { workflow { id } } }", { id: v(w, "Suggestion") }),
  ],
  [
    "suggestionDismiss",
    (w) => attack("mutation($id: ID!) { suggestionDismiss(id: $id) { id } }", { id: v(w, "Suggestion") }),
  ],
  [
    "suggestionBookmark",
    (w) => attack("mutation($id: ID!) { suggestionBookmark(id: $id) { id } }", { id: v(w, "Suggestion") }),
  ],
  [
    "suggestionMarkViewed",
    (w) => attack("mutation($id: ID!) { suggestionMarkViewed(id: $id) { id } }", { id: v(w, "Suggestion") }),
  ],
  [
    "suggestionsGenerate for the victim's organization",
    (w) =>
      attack("mutation($id: ID) { suggestionsGenerate(organizationId: $id) { id } }", { id: v(w, "Organization") }),
  ],
  [
    "eventRecord into the victim's organization",
    (w) =>
      attack(
        'mutation($id: ID) { eventRecord(input: { organizationId: $id, event: { kind: FILE_OPENED, filePath: "/x" } }) { id } }',
        { id: v(w, "Organization") },
      ),
  ],
  [
    "eventExport of the victim's organization",
    (w) =>
      attack(
        "mutation($id: ID!) { eventExport(input: { organizationId: $id, dataset: EVENTS, format: CSV }) { url } }",
        { id: v(w, "Organization") },
      ),
  ],
  [
    "eventRetentionCleanup",
    (w) =>
      attack("mutation($id: ID!) { eventRetentionCleanup(organizationId: $id) { __typename } }", {
        id: v(w, "Organization"),
      }),
  ],
  [
    "sessionRevoke of the victim's session",
    (w) => attack("mutation($id: ID!) { sessionRevoke(id: $id) }", { id: v(w, "Session") }),
  ],
  [
    "liveCursor of the victim's audit feed",
    (w) => attack("query($id: ID!) { liveCursor(feed: AUDIT, organizationId: $id) }", { id: v(w, "Organization") }),
  ],
  [
    "the victim's organization as X-Organization-Id",
    (w) => ({
      as: "attacker",
      json: op("{ activeOrganization { id name } }"),
      headers: { "x-organization-id": v(w, "Organization") },
    }),
  ],
  [
    "the attacker's API key updating the victim's workflow",
    (w) =>
      attack(
        'mutation($id: ID!) { workflowUpdate(input: { id: $id, name: "pwned" }) { id } }',
        { id: v(w, "Workflow") },
        "attackerKey",
      ),
  ],
];

const NODE_TYPES = [
  "Organization",
  "PersonalOrganization",
  "User",
  "Membership",
  "ApiKey",
  "Invite",
  "Workflow",
  "Execution",
  "Schedule",
  "Integration",
  "Upload",
  "Suggestion",
  "Event",
  "Pattern",
  "TemporalPattern",
  "Session",
];

function nullNode(d: Record<string, unknown>) {
  if (d.node !== null) throw new Error(`a foreign row answered: ${JSON.stringify(d)}`);
}

export const foreignIds: Case[] = [
  ...foreignMutations.map(
    ([name, request]): Case => ({
      name,
      request,
      expect: {
        ...notFound,
        check: (r) => {
          if (/Victim|victim/.test(r.text)) throw new Error(`shows the victim's data: ${r.text}`);
        },
      },
    }),
  ),
  // Relay's node(id:) answers null for a row the caller cannot see, as for one that does not exist.
  ...NODE_TYPES.map(
    (type): Case => ({
      name: `node(id:) of the victim's ${type}`,
      request: (w) => attack("query($id: ID!) { node(id: $id) { id __typename } }", { id: v(w, type) }),
      expect: { data: nullNode },
    }),
  ),
  {
    // An API key acts for its own organization only: the header cannot move it.
    name: "the attacker's API key naming the victim's organization",
    request: (w) => ({
      as: "attackerKey",
      json: op("{ activeOrganization { id } }"),
      headers: { "x-organization-id": v(w, "Organization") },
    }),
    expect: {
      data: (d, w) => {
        if ((d.activeOrganization as { id: string }).id !== w.attacker.orgId) throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "nodes(ids:) of every victim row",
    request: (w) => attack("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", { ids: NODE_TYPES.map((t) => v(w, t)) }),
    expect: {
      data: (d) => {
        if ((d.nodes as unknown[]).some((n) => n !== null)) throw new Error(JSON.stringify(d));
      },
    },
  },
  {
    name: "the victim's workflow id retyped as the attacker's Organization",
    request: (w) =>
      attack("query($id: ID!) { node(id: $id) { id } }", {
        id: encodeId("Organization", decodeId(v(w, "Workflow")).id),
      }),
    expect: { data: nullNode },
  },
  {
    name: "a members filter naming the victim as userId in the attacker's organization",
    request: (w) =>
      attack(
        "query($id: ID!, $u: ID) { node(id: $id) { ... on Organization { suggestions(filter: { userId: $u }) { edges { node { id } } } } } }",
        { id: w.attacker.orgId, u: v(w, "User") },
      ),
    // Filtering by a user who is no member finds nothing of theirs.
    expect: {
      data: (d) => {
        if ((d.node as { suggestions: { edges: unknown[] } }).suggestions.edges.length)
          throw new Error(JSON.stringify(d));
      },
    },
  },
];

const ids: [string, string][] = [
  ["an empty id", ""],
  ["an id that is not base64", "!!!not-base64!!!"],
  ["base64 of garbage", Buffer.from("garbage").toString("base64")],
  ["a type with no uuid", Buffer.from("Workflow:").toString("base64")],
  [
    "a uuid with SQL after it",
    Buffer.from("Workflow:00000000-0000-0000-0000-000000000000' OR '1'='1").toString("base64"),
  ],
  ["a uuid that is not one", Buffer.from("Workflow:zzzzzzzz-0000-0000-0000-000000000000").toString("base64")],
  ["the type __proto__", Buffer.from("__proto__:00000000-0000-0000-0000-000000000000").toString("base64")],
  ["the type constructor", Buffer.from("constructor:00000000-0000-0000-0000-000000000000").toString("base64")],
  ["a raw uuid, not a global id", "00000000-0000-0000-0000-000000000000"],
  ["constructor", "constructor"],
  ["__proto__", "__proto__"],
  ["toString", "toString"],
  ["hasOwnProperty", "hasOwnProperty"],
  ["a 10 KB id", "A".repeat(10_000)],
  ["a JSON object as an id string", '{"id":{"not":null}}'],
];

export const invalidIds: Case[] = [
  ...ids.map(
    ([name, id]): Case => ({
      name: `workflowDelete of ${name}`,
      request: () => attack("mutation($id: ID!) { workflowDelete(id: $id) }", { id }),
      expect: input,
    }),
  ),
  // Relay's node(id:) decodes the id itself (a type it does not know is BAD_REQUEST).
  ...ids.slice(0, 8).map(
    ([name, id]): Case => ({
      name: `node(id:) of ${name}`,
      request: () => attack("query($id: ID!) { node(id: $id) { id } }", { id }),
      expect: { code: ["BAD_USER_INPUT", "BAD_REQUEST"] },
    }),
  ),
  {
    name: "a nonexistent uuid of a real type",
    request: () =>
      attack("mutation($id: ID!) { workflowDelete(id: $id) }", {
        id: encodeId("Workflow", "00000000-0000-4000-8000-000000000000"),
      }),
    expect: notFound,
  },
  {
    name: "an id given as an Int literal",
    request: () => attack("mutation { workflowDelete(id: 12345) }"),
    expect: input,
  },
  {
    name: "an id given as a float",
    request: () => attack("mutation($id: ID!) { workflowDelete(id: $id) }", { id: 1.5 }),
    expect: input,
  },
  {
    name: "an id given as a boolean",
    request: () => attack("mutation($id: ID!) { workflowDelete(id: $id) }", { id: true }),
    expect: input,
  },
];
