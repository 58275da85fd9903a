// Hostile input, over HTTP and graphql-ws alike: arguments nested thousands of levels deep,
// huge lists, lone surrogates. Each is refused with BAD_USER_INPUT before any root field runs,
// never a 500, and a refused mutation still leaves one audit entry per root field.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { TRUNCATED } from "../src/features/audit/entry.ts";
import { decodeId } from "../src/schema/globalId.ts";
import { errorCode, fieldErrorPaths } from "./helpers/api.ts";
import type { GraphQLResponse } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
/** One that lets a client send far more tokens: the parser itself must not be what overflows. */
let roomy: TestServer;
beforeAll(async () => {
  [server, roomy] = await Promise.all([
    startServer(),
    startServer({ MAX_TOKENS: "100000", MAX_BODY_BYTES: String(4 * 1024 * 1024) }),
  ]);
});
afterAll(() => Promise.all([server.stop(), roomy.stop()]));

type Result = Omit<GraphQLResponse, "headers"> & { requestId?: string };

// Values thousands of levels deep are past what JSON.stringify (and so the usual clients) can
// write: they are spliced into the request text in place of the string DEEP.
const DEEP = "@@deep@@";
const deepObject = (levels: number, leaf = "1") => `${'{"a":'.repeat(levels)}${leaf}${"}".repeat(levels)}`;
const deepList = (levels: number) => `${"[".repeat(levels)}1${"]".repeat(levels)}`;
const variablesText = (variables: Record<string, unknown> = {}, deep?: string) =>
  deep ? JSON.stringify(variables).replace(`"${DEEP}"`, deep) : JSON.stringify(variables);

/** One operation over either transport, as raw text; the request id finds its audit entries. */
const transports = {
  http: async (
    user: TestUser | null,
    query: string,
    variables?: Record<string, unknown>,
    deep?: string,
    target = server,
  ) => {
    const requestId = `hostile-${randomUUID()}`;
    const response = await fetch(target.graphqlUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/graphql-response+json",
        "x-request-id": requestId,
        ...(user ? { authorization: `Bearer ${user.token}` } : {}),
      },
      body: `{"query":${JSON.stringify(query)},"variables":${variablesText(variables, deep)}}`,
    });
    return { status: response.status, requestId, ...((await response.json()) as object) } as Result;
  },
  ws: (user: TestUser | null, query: string, variables?: Record<string, unknown>, deep?: string, target = server) =>
    new Promise<Result>((resolve, reject) => {
      const socket = new WebSocket(target.wsUrl, "graphql-transport-ws");
      let result: Result | undefined;
      const done = (r: Result) => {
        socket.off("close", onClose);
        socket.close();
        resolve({ ...r, status: 200, requestId: r.errors?.[0]?.extensions?.requestId as string | undefined });
      };
      const onClose = (code: number, why: Buffer) => reject(new Error(`closed ${code} ${why}`));
      socket.on("close", onClose);
      socket.on("open", () =>
        socket.send(
          JSON.stringify({ type: "connection_init", payload: user ? { authorization: `Bearer ${user.token}` } : {} }),
        ),
      );
      socket.on("message", (data) => {
        const message = JSON.parse(String(data)) as { type: string; payload: unknown };
        if (message.type === "connection_ack") {
          const payload = `{"query":${JSON.stringify(query)},"variables":${variablesText(variables, deep)}}`;
          socket.send(`{"id":"1","type":"subscribe","payload":${payload}}`);
        } else if (message.type === "next") result = message.payload as Result;
        else if (message.type === "error") done({ status: 200, errors: message.payload as Result["errors"] });
        else if (message.type === "complete") done(result ?? { status: 200 });
      });
    }),
};

const rawId = (globalId: string) => decodeId(globalId).id;

const auditRows = (requestId: string | undefined) =>
  server.app.runtime.db.prisma.auditLog.findMany({ where: { requestId }, orderBy: { action: "asc" } });

const THREE_ROOT_FIELDS = `mutation($org: ID!, $deep: JSONObject!) {
  key: apiKeyCreate(input: { organizationId: $org, name: "backdoor", role: ADMIN }) { secret }
  org: organizationUpdate(input: { id: $org, description: "changed" }) { id }
  wf: workflowCreate(input: { organizationId: $org, name: "deep", definition: $deep }) { id }
}`;

const ORG_STATE = `query($id: ID!) { node(id: $id) { ... on Organization { description apiKeys(first: 5) { edges { node { id } } } } } }`;

// A definition nests at most 32 levels (definition > steps > [0] are levels 1-3, the ignored
// key's value level 4), within MAX_INPUT_DEPTH (40), which also counts the input object.
const WITHIN = 32 - 4;

const WORKFLOW_CREATE = `mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }`;

for (const [name, send] of Object.entries(transports)) {
  describe(`hostile input over ${name}`, () => {
    // A WebSocket message is at most 64 KiB: 5,000 levels fit, 50,000 do not (closed 1009).
    const depths = name === "http" ? [5_000, 50_000] : [5_000];
    for (const depth of depths) {
      it(`refuses a mutation with an argument nested ${depth} levels before any root field runs, and audits each`, async () => {
        const alice = await createUser(server.graphqlUrl);
        const r = await send(alice, THREE_ROOT_FIELDS, { org: alice.org.id, deep: DEEP }, deepObject(depth));
        expect(r.status).not.toBe(500);
        expect(errorCode(r)).toBe("BAD_USER_INPUT");
        expect(r.data ?? null).toBeNull();
        // Nothing ran: no key, no change.
        const state = await send(alice, ORG_STATE, { id: alice.org.id });
        expect(state.data?.node).toEqual({ description: null, apiKeys: { edges: [] } });
        const rows = await auditRows(r.requestId);
        expect(rows.map((e) => [e.action, e.outcome, (e.details as { error?: string }).error])).toEqual([
          ["apiKeyCreate", "FAILED", "BAD_USER_INPUT"],
          ["organizationUpdate", "FAILED", "BAD_USER_INPUT"],
          ["workflowCreate", "FAILED", "BAD_USER_INPUT"],
        ]);
        expect(
          rows.every((e) => e.organizationId === rawId(alice.org.id) && e.actorUserId === rawId(alice.user.id)),
        ).toBe(true);
        // What was sent is kept, cut short where the entry stops copying.
        expect(JSON.stringify(rows[2]?.details)).toContain(TRUNCATED);
      });
    }

    it("refuses deep lists and deep JSON inside an event's details the same way", async () => {
      const alice = await createUser(server.graphqlUrl);
      for (const [details, deep] of [
        [{ a: DEEP }, deepList(5_000)],
        [DEEP, deepObject(40)],
      ] as const) {
        const r = await send(
          alice,
          "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
          { input: { organizationId: alice.org.id, event: { kind: "TOOL_USED", tool: "vim", details } } },
          deep,
        );
        expect(errorCode(r)).toBe("BAD_USER_INPUT");
        expect((await auditRows(r.requestId)).map((e) => [e.action, e.outcome])).toEqual([["eventRecord", "FAILED"]]);
      }
    });

    it("refuses a workflow definition with an ignored key nested 200 levels, and audits it", async () => {
      const alice = await createUser(server.graphqlUrl);
      const definition = { steps: [{ id: "wait", type: "delay", ms: 1, ignored: DEEP }] };
      const r = await send(
        alice,
        WORKFLOW_CREATE,
        { input: { organizationId: alice.org.id, name: "ignored key", definition } },
        deepObject(200),
      );
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
      // MAX_INPUT_DEPTH (40) levels from the argument: input > definition > steps > [0] > ignored, then 36 more.
      expect(fieldErrorPaths(r)[0]).toMatch(/^\$input\.definition\.steps\.0\.ignored(\.a){36}$/);
      expect((await auditRows(r.requestId)).map((e) => [e.action, e.outcome])).toEqual([["workflowCreate", "FAILED"]]);
    });

    it("creates and audits a workflow whose ignored key is nested just within the limit", async () => {
      const alice = await createUser(server.graphqlUrl);
      // input > definition > steps > [0] > ignored, then the value: deepest that is let through.
      const definition = { steps: [{ id: "wait", type: "delay", ms: 1, ignored: DEEP }] };
      const r = await send(
        alice,
        WORKFLOW_CREATE,
        { input: { organizationId: alice.org.id, name: "within", definition } },
        deepObject(WITHIN),
      );
      expect(r.errors).toBeUndefined();
      const rows = await server.app.runtime.db.prisma.auditLog.findMany({
        where: { actorUserId: rawId(alice.user.id), action: "workflowCreate" },
      });
      expect(rows.map((e) => e.outcome)).toEqual(["ALLOWED"]);
    });

    it("takes event details nested the documented 32 levels, in a batch, and refuses deeper", async () => {
      const alice = await createUser(server.graphqlUrl);
      const input = {
        events: [
          { kind: "FILE_CREATED", filePath: "/w/deep.txt", occurredAt: new Date().toISOString(), details: DEEP },
        ],
      };
      const RECORD = "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }";
      // deepObject(n) nests n objects: the details value itself is the first.
      const ok = await send(alice, RECORD, { input }, deepObject(32, "1"));
      expect(ok.errors).toBeUndefined();
      expect(ok.data).toEqual({ eventRecordBatch: { stored: 1 } });
      const over = await send(alice, RECORD, { input }, deepObject(34, "1"));
      expect(errorCode(over)).toBe("BAD_USER_INPUT");
    });

    it("refuses a transform template nested 1,000 levels with BAD_USER_INPUT, not a 500", async () => {
      const alice = await createUser(server.graphqlUrl);
      const definition = { steps: [{ id: "shape", type: "transform", template: DEEP }] };
      const r = await send(
        alice,
        WORKFLOW_CREATE,
        { input: { organizationId: alice.org.id, name: "deep template", definition } },
        deepObject(1_000, '"x"'),
      );
      expect(r.status).not.toBe(500);
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
    });

    it("refuses `nodes` with more ids than its documented maximum, before loading any", async () => {
      const alice = await createUser(server.graphqlUrl);
      // 15,000 ids is 885 KB: more than a WebSocket message may carry.
      const count = name === "http" ? 15_000 : 1_000;
      const many = await send(alice, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {
        ids: Array.from({ length: count }, () => alice.user.id),
      });
      expect(errorCode(many)).toBe("BAD_USER_INPUT");
      const over = await send(alice, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {
        ids: Array.from({ length: 101 }, () => alice.org.id),
      });
      expect(errorCode(over)).toBe("BAD_USER_INPUT");
      const literal = await send(alice, `{ nodes(ids: [${Array(101).fill(`"${alice.org.id}"`).join(",")}]) { id } }`);
      expect(errorCode(literal)).toBe("BAD_USER_INPUT");
      const most = await send(alice, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {
        ids: Array.from({ length: 100 }, () => alice.org.id),
      });
      expect(most.errors).toBeUndefined();
      expect(most.data?.nodes).toHaveLength(100);
    });

    it("refuses any list argument longer than the maximum, and still takes a batch of 1,000 events", async () => {
      const alice = await createUser(server.graphqlUrl);
      const kinds = await send(
        alice,
        `query($id: ID!, $kinds: [EventKind!]) { node(id: $id) { ... on Organization { events(first: 1, filter: { kinds: $kinds }) { totalCount } } } }`,
        { id: alice.org.id, kinds: Array(1_001).fill("TOOL_USED") },
      );
      expect(errorCode(kinds)).toBe("BAD_USER_INPUT");
      if (name === "ws") return; // 1,000 events are more than a WebSocket message carries.
      const events = Array.from({ length: 1_000 }, () => ({ kind: "TOOL_USED", tool: "vim" }));
      const batch = await send(
        alice,
        "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { received } }",
        { input: { organizationId: alice.org.id, events } },
      );
      expect(batch.errors).toBeUndefined();
    });

    it("refuses a lone surrogate in organizationCreate(name:) and viewerUpdate(fullName:) with BAD_USER_INPUT", async () => {
      const alice = await createUser(server.graphqlUrl);
      const cases: [string, Record<string, unknown>, string][] = [
        [
          "mutation($input: OrganizationCreateInput!) { organizationCreate(input: $input) { id } }",
          { input: { name: "Acme \ud800" } },
          "organizationCreate",
        ],
        [
          "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { id } }",
          { input: { fullName: "\udc00 Alice" } },
          "viewerUpdate",
        ],
        [
          "mutation($input: IntegrationCreateInput!) { integrationCreate(input: $input) { id } }",
          { input: { organizationId: alice.org.id, connector: "http", name: "h", config: { "\ud83d": 1 } } },
          "integrationCreate",
        ],
      ];
      for (const [query, variables, action] of cases) {
        const r = await send(alice, query, variables);
        expect(r.status).not.toBe(500);
        expect(errorCode(r)).toBe("BAD_USER_INPUT");
        expect((await auditRows(r.requestId)).map((e) => [e.action, e.outcome])).toEqual([[action, "FAILED"]]);
      }
      // In the document itself the parser refuses it first.
      const literal = await send(alice, 'mutation { organizationCreate(input: { name: "\\ud800" }) { id } }');
      expect(["BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED"]).toContain(errorCode(literal));
      // A well-formed pair is text like any other.
      const emoji = await send(
        alice,
        "mutation($input: ViewerUpdateInput!) { viewerUpdate(input: $input) { fullName } }",
        {
          input: { fullName: "Alice \ud83d\ude00" },
        },
      );
      expect(emoji.data).toEqual({ viewerUpdate: { fullName: "Alice \ud83d\ude00" } });
    });

    it.runIf(name === "ws")("refuses a subscription whose arguments hold a lone surrogate", async () => {
      const alice = await createUser(server.graphqlUrl);
      const r = await send(
        alice,
        "subscription($o: ID!, $after: String) { auditEntryAdded(organizationId: $o, after: $after) { cursor } }",
        { o: alice.org.id, after: "1-\udfff" },
      );
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
    });

    // 5,000 levels of selections are more than a WebSocket message carries.
    const levels = name === "http" ? 5_000 : 3_000;
    it(`refuses a document nested ${levels} levels before parsing it, however many tokens are allowed`, async () => {
      const documents = [
        `mutation { workflowCreate(input: { organizationId: "x", name: "n", definition: ${deepObject(levels).replaceAll('"a"', "a")} }) { id } }`,
        `{ nodes(ids: ${"[".repeat(levels)}"x"${"]".repeat(levels)}) { id } }`,
        `{ viewer ${"{ id ... on User ".repeat(levels)}${"}".repeat(levels)} }`,
      ];
      for (const target of [server, roomy])
        for (const document of documents) {
          const r = await send(null, document, undefined, undefined, target);
          expect(r.status).not.toBe(500);
          expect(["DEPTH_LIMIT_EXCEEDED", "TOKEN_LIMIT_EXCEEDED"]).toContain(errorCode(r));
        }
    });

    it("keeps inherited property names as plain data, in the input and in its audit entry", async () => {
      const alice = await createUser(server.graphqlUrl);
      const definition = JSON.parse(
        '{"steps":[{"id":"wait","type":"delay","ms":1,"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}},"toString":"x"}]}',
      );
      const r = await send(alice, WORKFLOW_CREATE, {
        input: { organizationId: alice.org.id, name: "proto", definition },
      });
      expect(r.status).not.toBe(500);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      const rows = await server.app.runtime.db.prisma.auditLog.findMany({
        where: { actorUserId: rawId(alice.user.id), action: "workflowCreate" },
      });
      expect(rows).toHaveLength(1);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });
}

describe("hostile input on Yoga's own path (GET, multipart)", () => {
  it("refuses too many ids in a GET, a lone surrogate or deep JSON beside an upload, yet takes the upload", async () => {
    const alice = await createUser(server.graphqlUrl);
    const url = new URL(server.graphqlUrl);
    url.searchParams.set("query", "query($ids: [ID!]!) { nodes(ids: $ids) { id } }");
    url.searchParams.set("variables", JSON.stringify({ ids: Array(101).fill(alice.user.id) }));
    const get = await fetch(url, { headers: { authorization: `Bearer ${alice.token}` } });
    expect(errorCode((await get.json()) as Result)).toBe("BAD_USER_INPUT");

    const upload = async (organizationId: string, deep?: string) => {
      const form = new FormData();
      const query = "mutation($input: FileUploadInput!) { fileUpload(input: $input) { status } }";
      // Every variable sent is checked, whether the operation declares it or not.
      const variables = variablesText({ input: { file: null, organizationId }, extra: deep ? DEEP : null }, deep);
      form.set("operations", `{"query":${JSON.stringify(query)},"variables":${variables}}`);
      form.set("map", JSON.stringify({ 0: ["variables.input.file"] }));
      form.set("0", new Blob(["hello"], { type: "text/plain" }), "hello.txt");
      const response = await fetch(server.graphqlUrl, {
        method: "POST",
        headers: { authorization: `Bearer ${alice.token}`, "graphql-preflight": "1" },
        body: form,
      });
      return (await response.json()) as Result;
    };
    expect((await upload(alice.org.id)).data).toEqual({ fileUpload: { status: "COMPLETED" } });
    expect(errorCode(await upload(`${alice.org.id}\ud800`))).toBe("BAD_USER_INPUT");
    expect(errorCode(await upload(alice.org.id, deepList(50_000)))).toBe("BAD_USER_INPUT");
  });
});
