// Ingestion and reading: one event, batches, validation (nothing stored on bad input), API
// keys, tenant isolation, who sees whose events, the events connection, insights, exports,
// and retention.
import { describe, expect, it } from "vitest";
import { addMember, createOrg, errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { gql, gqlUpload } from "./helpers/client.ts";
import { type EventInput, recordBatch, scenario } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail({ ANALYSIS_POLL_MS: "3600000" });

const RECORD = `mutation($input: EventRecordInput!) {
  eventRecord(input: $input) { id kind type tool interpreter fileExtension sizeBytes inputs outputs analyzed user { id } }
}`;

async function events(
  user: Pick<TestUser, "token">,
  orgId: string,
  args = "",
  variables: Record<string, unknown> = {},
) {
  return gql<{
    node: {
      events: {
        totalCount: number;
        pageInfo: { hasNextPage: boolean; endCursor: string };
        edges: { node: { id: string; filePath: string | null; kind: string; occurredAt: string } }[];
      };
    } | null;
  }>(
    suite.url,
    `query($id: ID!, $filter: EventFilter, $orderBy: EventOrder, $first: Int, $after: String) { node(id: $id) { ... on Organization {
      events(filter: $filter, orderBy: $orderBy, first: $first, after: $after ${args}) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id filePath kind occurredAt } }
      } } } }`,
    { token: user.token, variables: { id: orgId, ...variables } },
  );
}

const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();

describe("recording events", () => {
  it("records one event, inferring the interpreter, and returns the same event when retried", async () => {
    const alice = await createUser(suite.url);
    const input = {
      event: {
        clientEventId: "one-1",
        kind: "SCRIPT_RUN",
        filePath: "/home/a/jobs/nightly.SH",
        sizeBytes: 9_007_199_254_740_991,
        outputs: ["/home/a/out.log"],
      },
    };
    const first = await gql<{ eventRecord: Record<string, unknown> }>(suite.url, RECORD, {
      token: alice.token,
      variables: { input },
    });
    expect(first.errors).toBeUndefined();
    expect(first.data?.eventRecord).toMatchObject({
      kind: "SCRIPT_RUN",
      type: "script_run",
      interpreter: "bash",
      tool: "bash",
      fileExtension: ".sh",
      sizeBytes: 9_007_199_254_740_991,
      inputs: [],
      outputs: ["/home/a/out.log"],
      user: { id: alice.user.id },
    });
    const again = await gql<{ eventRecord: { id: string } }>(suite.url, RECORD, {
      token: alice.token,
      variables: { input },
    });
    expect(again.data?.eventRecord.id).toBe(first.data?.eventRecord.id);
    expect((await events(alice, alice.org.id)).data?.node?.events.totalCount).toBe(1);
  });

  it("refuses bad events with field paths and stores nothing", async () => {
    const alice = await createUser(suite.url);
    const bad: [Record<string, unknown>, string][] = [
      [{ kind: "FILE_CREATED" }, "event.filePath"],
      [{ kind: "FILE_CREATED", filePath: "/a\u0000b" }, "event.filePath"],
      [{ kind: "FILE_CREATED", filePath: "x".repeat(1025) }, "event.filePath"],
      [{ kind: "TOOL_USED" }, "event.tool"],
      [{ kind: "TOOL_USED", tool: "<script>" }, "event.tool"],
      [{ kind: "FILE_MOVED", filePath: "/b" }, "event.previousPath"],
      [{ kind: "CUSTOM" }, "event.customType"],
      [{ kind: "SCRIPT_RUN", filePath: "/run.exe" }, "event.interpreter"],
      [{ kind: "FILE_OPENED", filePath: "/a", inputs: ["/b"] }, "event.inputs"],
      [{ kind: "FILE_OPENED", filePath: "/a", occurredAt: "2099-01-01T00:00:00Z" }, "event.occurredAt"],
      [{ kind: "FILE_OPENED", filePath: "/a", occurredAt: hoursAgo(24 * 91) }, "event.occurredAt"],
      [{ kind: "FILE_OPENED", filePath: "/a", sizeBytes: -1 }, "event.sizeBytes"],
      [{ kind: "FILE_OPENED", filePath: "/a", details: { blob: "x".repeat(9000) } }, "event.details"],
    ];
    for (const [event, path] of bad) {
      const r = await gql(suite.url, RECORD, { token: alice.token, variables: { input: { event } } });
      expect(errorCode(r), JSON.stringify(event).slice(0, 80)).toBe("BAD_USER_INPUT");
      expect(fieldErrorPaths(r)[0]).toBe(path);
    }
    expect((await events(alice, alice.org.id)).data?.node?.events.totalCount).toBe(0);
  });

  it("stores a batch whole or not at all", async () => {
    const alice = await createUser(suite.url);
    const good = scenario("batch");
    const mixed = [...good, { kind: "TELEPORT" }];
    const invalid = await gql(
      suite.url,
      "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }",
      { token: alice.token, variables: { input: { events: mixed } } },
    );
    // An unknown enum value is refused by GraphQL itself, before any resolver.
    expect(errorCode(invalid)).toBe("BAD_USER_INPUT");

    const repeated = [...good, { ...(good[0] as EventInput) }, { kind: "FILE_OPENED" }];
    const r = await gql(
      suite.url,
      "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }",
      { token: alice.token, variables: { input: { events: repeated } } },
    );
    expect(errorCode(r)).toBe("BAD_USER_INPUT");
    expect(fieldErrorPaths(r)).toEqual(["events.6.clientEventId", "events.7.filePath"]);

    const tooMany = Array.from({ length: 1001 }, (_, i) => ({
      kind: "TOOL_USED",
      tool: "vim",
      clientEventId: `m-${i}`,
    }));
    const big = await gql(
      suite.url,
      "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }",
      { token: alice.token, variables: { input: { events: tooMany } } },
    );
    expect(errorCode(big)).toBe("BAD_USER_INPUT");
    expect((await events(alice, alice.org.id)).data?.node?.events.totalCount).toBe(0);
    expect(await recordBatch(suite.url, alice, good)).toEqual({ received: 6, stored: 6, duplicates: 0 });
  });

  it("takes events from an API key, as its creator's, and refuses a read-only key", async () => {
    const alice = await createUser(suite.url);
    const key = async (role: string) => {
      const r = await gql<{ apiKeyCreate: { secret: string } }>(
        suite.url,
        "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
        { token: alice.token, variables: { input: { organizationId: alice.org.id, name: role, role } } },
      );
      return r.data?.apiKeyCreate.secret as string;
    };
    const agent = { "x-api-key": await key("MEMBER") };
    const r = await gql<{ eventRecord: { user: { id: string } } }>(suite.url, RECORD, {
      headers: agent,
      variables: { input: { event: { kind: "TOOL_USED", tool: "excel" } } },
    });
    expect(r.data?.eventRecord.user.id).toBe(alice.user.id);
    const readOnly = await gql(suite.url, RECORD, {
      headers: { "x-api-key": await key("VIEWER") },
      variables: { input: { event: { kind: "TOOL_USED", tool: "excel" } } },
    });
    expect(errorCode(readOnly)).toBe("FORBIDDEN");
  });

  it("keeps organizations apart: another tenant's events and organization are NOT_FOUND", async () => {
    const alice = await createUser(suite.url);
    const mallory = await createUser(suite.url);
    const recorded = await gql<{ eventRecord: { id: string } }>(suite.url, RECORD, {
      token: alice.token,
      variables: { input: { event: { kind: "FILE_OPENED", filePath: "/secret.docx" } } },
    });
    const eventId = recorded.data?.eventRecord.id;
    const into = await gql(suite.url, RECORD, {
      token: mallory.token,
      variables: { input: { organizationId: alice.org.id, event: { kind: "FILE_OPENED", filePath: "/x" } } },
    });
    expect(errorCode(into)).toBe("NOT_FOUND");
    const batch = await gql(
      suite.url,
      "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }",
      { token: mallory.token, variables: { input: { organizationId: alice.org.id, events: scenario("m") } } },
    );
    expect(errorCode(batch)).toBe("NOT_FOUND");
    const node = await gql(suite.url, "query($id: ID!) { node(id: $id) { id } }", {
      token: mallory.token,
      variables: { id: eventId },
    });
    expect(node.data).toEqual({ node: null });
    expect((await events(mallory, alice.org.id)).data).toEqual({ node: null });
    for (const m of [
      "suggestionsGenerate(organizationId: $org) { id }",
      "eventRetentionCleanup(organizationId: $org) { events }",
    ]) {
      const r = await gql(suite.url, `mutation($org: ID!) { ${m} }`, {
        token: mallory.token,
        variables: { org: alice.org.id },
      });
      expect(errorCode(r), m).toBe("NOT_FOUND");
    }
    const exported = await gql(
      suite.url,
      "mutation($input: EventExportInput!) { eventExport(input: $input) { url } }",
      {
        token: mallory.token,
        variables: { input: { organizationId: alice.org.id, dataset: "EVENTS", format: "CSV" } },
      },
    );
    expect(errorCode(exported)).toBe("NOT_FOUND");
    const upload = await gqlUpload(
      suite.url,
      "mutation($input: EventImportInput!) { eventImport(input: $input) { duplicates } }",
      { input: { file: null, organizationId: alice.org.id } },
      { path: "input.file", name: "x.jsonl", content: '{"kind":"TOOL_USED","tool":"vim"}' },
      { token: mallory.token },
    );
    expect(errorCode(upload)).toBe("NOT_FOUND");
  });

  it("shows members their own events and owners everyone's", async () => {
    const owner = await createUser(suite.url);
    const org = await gql<{ organizationCreate: { id: string } }>(
      suite.url,
      'mutation { organizationCreate(input: { name: "Team" }) { id } }',
      { token: owner.token },
    );
    const orgId = org.data?.organizationCreate.id as string;
    const member = await addMember(suite.url, suite.mail, owner.token, orgId, "MEMBER");
    await recordBatch(suite.url, owner, [{ kind: "TOOL_USED", tool: "vim" }], orgId);
    await recordBatch(suite.url, member, [{ kind: "TOOL_USED", tool: "emacs" }], orgId);
    expect((await events(member, orgId)).data?.node?.events.totalCount).toBe(1);
    expect((await events(owner, orgId)).data?.node?.events.totalCount).toBe(2);
  });
});

describe("reading events", () => {
  it("filters, sorts and pages through events by cursor", async () => {
    const alice = await createUser(suite.url);
    const batch: EventInput[] = Array.from({ length: 25 }, (_, i) => ({
      clientEventId: `p-${i}`,
      kind: i % 5 === 0 ? "TOOL_USED" : "FILE_MODIFIED",
      tool: i % 5 === 0 ? "Excel" : "vim",
      filePath: i % 5 === 0 ? undefined : `/proj/${i % 2 ? "Report" : "notes"}-${i}.${i % 2 ? "md" : "py"}`,
      operation: i === 7 ? "rename to Quarterly" : undefined,
      occurredAt: hoursAgo(25 - i),
    }));
    await recordBatch(suite.url, alice, batch);

    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 10; page++) {
      const r = await events(alice, alice.org.id, "", {
        first: 10,
        after,
        orderBy: { field: "OCCURRED_AT", direction: "ASC" },
      });
      const conn = r.data?.node?.events;
      seen.push(...(conn?.edges.map((e) => e.node.occurredAt) ?? []));
      if (!conn?.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toHaveLength(25);
    expect(seen).toEqual([...seen].sort());
    const newest = await events(alice, alice.org.id, "", { first: 1 });
    expect(newest.data?.node?.events.edges[0]?.node.occurredAt).toBe(seen.at(-1));

    const count = async (filter: Record<string, unknown>) =>
      (await events(alice, alice.org.id, "", { filter })).data?.node?.events.totalCount;
    expect(await count({ kinds: ["TOOL_USED"] })).toBe(5);
    expect(await count({ tool: "excel" })).toBe(5);
    expect(await count({ extension: ".MD" })).toBe(10);
    expect(await count({ search: "report" })).toBe(10);
    expect(await count({ search: "QUARTERLY" })).toBe(1);
    expect(await count({ since: hoursAgo(10.5), until: hoursAgo(4.5) })).toBe(6);
    expect(await count({ kinds: ["FILE_MODIFIED"], extension: ".py", search: "notes" })).toBe(10);
  });

  it("gives insights: counts per kind, top tools and extensions, activity by hour and by day", async () => {
    const alice = await createUser(suite.url);
    const day = new Date(Date.now() - 2 * 86_400_000);
    day.setUTCHours(10, 0, 0, 0);
    const at = (h: number) => new Date(day.getTime() + h * 3_600_000).toISOString();
    await recordBatch(suite.url, alice, [
      { kind: "FILE_OPENED", filePath: "/a.py", tool: "vim", occurredAt: at(0) },
      { kind: "FILE_OPENED", filePath: "/b.py", tool: "vim", occurredAt: at(0.5) },
      { kind: "FILE_MODIFIED", filePath: "/c.md", tool: "code", occurredAt: at(1) },
      { kind: "CUSTOM", customType: "deploy", occurredAt: at(15) },
    ]);
    const r = await gql<{
      node: { eventInsights: Record<string, unknown> & { byHour: { hour: number; count: number }[] } };
    }>(
      suite.url,
      `query($id: ID!) { node(id: $id) { ... on Organization { eventInsights(timeZone: "Asia/Tokyo", top: 1) {
        total pending byType { type kind count } topTools { name count } topExtensions { name count }
        byHour { hour count } byDay { date count } } } } }`,
      { token: alice.token, variables: { id: alice.org.id } },
    );
    expect(r.errors).toBeUndefined();
    const insights = r.data?.node.eventInsights;
    expect(insights).toMatchObject({
      total: 4,
      byType: [
        { type: "file_opened", kind: "FILE_OPENED", count: 2 },
        { type: "custom:deploy", kind: "CUSTOM", count: 1 },
        { type: "file_modified", kind: "FILE_MODIFIED", count: 1 },
      ],
      topTools: [{ name: "vim", count: 2 }],
      topExtensions: [{ name: ".py", count: 2 }],
    });
    // 10:00 UTC is 19:00 in Tokyo; 01:00 UTC the next day is 10:00 there.
    expect(insights?.byHour.filter((h) => h.count > 0)).toEqual([
      { hour: 10, count: 1 },
      { hour: 19, count: 2 },
      { hour: 20, count: 1 },
    ]);
    const tokyoDay = (iso: string) => new Date(new Date(iso).getTime() + 9 * 3_600_000).toISOString().slice(0, 10);
    expect(insights?.byDay).toEqual([
      { date: tokyoDay(at(0)), count: 3 },
      { date: tokyoDay(at(15)), count: 1 },
    ]);
    const bad = await gql(
      suite.url,
      `query($id: ID!) { node(id: $id) { ... on Organization { eventInsights(timeZone: "Mars/Olympus") { total } } } }`,
      { token: alice.token, variables: { id: alice.org.id } },
    );
    expect(errorCode(bad)).toBe("BAD_USER_INPUT");
  });
});

describe("exports and retention", () => {
  async function exportLink(user: TestUser, orgId: string, dataset: string, format: string, filter?: unknown) {
    const r = await gql<{ eventExport: { url: string } }>(
      suite.url,
      "mutation($input: EventExportInput!) { eventExport(input: $input) { url expiresAt } }",
      { token: user.token, variables: { input: { organizationId: orgId, dataset, format, filter } } },
    );
    if (!r.data) throw new Error(JSON.stringify(r.errors));
    return new URL(r.data.eventExport.url, suite.url).toString();
  }

  it("exports events as CSV that imports as it is, and as JSON; patterns too", async () => {
    const alice = await createUser(suite.url);
    await recordBatch(suite.url, alice, scenario("export"));
    await recordBatch(suite.url, alice, [
      { kind: "FILE_OPENED", filePath: '/odd, "name".txt', details: { a: [1, "b"] } },
    ]);

    const csv = await fetch(await exportLink(alice, alice.org.id, "EVENTS", "CSV"));
    expect(csv.headers.get("content-type")).toMatch(/text\/csv/);
    const text = await csv.text();
    expect(text.trim().split("\r\n")).toHaveLength(8);

    const bob = await createUser(suite.url);
    const imported = await gqlUpload<{ eventImport: { upload: { importedCount: number } } }>(
      suite.url,
      "mutation($input: EventImportInput!) { eventImport(input: $input) { upload { importedCount } } }",
      { input: { file: null } },
      { path: "input.file", name: "export.csv", content: text },
      { token: bob.token },
    );
    expect(imported.errors).toBeUndefined();
    expect(imported.data?.eventImport.upload.importedCount).toBe(7);
    const original = (await events(alice, alice.org.id, "", { first: 10 })).data?.node?.events.edges.map(
      (e) => e.node.filePath,
    );
    const copied = (await events(bob, bob.org.id, "", { first: 10 })).data?.node?.events.edges.map(
      (e) => e.node.filePath,
    );
    expect(copied).toEqual(original);

    const json = await fetch(await exportLink(alice, alice.org.id, "EVENTS", "JSON", { kinds: ["SCRIPT_RUN"] }));
    const rows = (await json.json()) as { kind: string; outputs: string[] }[];
    expect(rows.map((r) => r.kind)).toEqual(["SCRIPT_RUN", "SCRIPT_RUN"]);
    expect(rows[0]?.outputs).toEqual(["/w/out.csv"]);

    await gql(suite.url, "mutation { suggestionsGenerate { id } }", { token: alice.token });
    const patterns = (await (await fetch(await exportLink(alice, alice.org.id, "PATTERNS", "JSON"))).json()) as {
      fileExtension: string;
      count: number;
    }[];
    expect(patterns.map((p) => [p.fileExtension, p.count]).sort()).toEqual([
      [".csv", 1],
      [".docx", 1],
      [".py", 4],
      [".txt", 1],
    ]);
    expect((await fetch(`${new URL(suite.url).origin}/downloads/analytics?token=forged`)).status).toBe(401);
  });

  it("deletes events past the organization's retention, and refuses events older than it", async () => {
    const alice = await createUser(suite.url);
    await recordBatch(suite.url, alice, [
      { kind: "FILE_OPENED", filePath: "/old.py", occurredAt: hoursAgo(24 * 10) },
      { kind: "FILE_OPENED", filePath: "/new.md", occurredAt: hoursAgo(1) },
    ]);
    await gql(suite.url, "mutation { suggestionsGenerate { id } }", { token: alice.token });
    const update = await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { eventRetentionDays } }",
      { token: alice.token, variables: { input: { id: alice.org.id, eventRetentionDays: 7 } } },
    );
    expect(update.data).toEqual({ organizationUpdate: { eventRetentionDays: 7 } });
    const cleanup = await gql<{ eventRetentionCleanup: Record<string, number> }>(
      suite.url,
      "mutation($org: ID!) { eventRetentionCleanup(organizationId: $org) { events patterns sequences relationships } }",
      { token: alice.token, variables: { org: alice.org.id } },
    );
    expect(cleanup.data?.eventRetentionCleanup).toEqual({ events: 1, patterns: 1, sequences: 0, relationships: 0 });
    const left = await events(alice, alice.org.id, "", { first: 5 });
    expect(left.data?.node?.events.edges.map((e) => e.node.filePath)).toEqual(["/new.md"]);
    const late = await gql(suite.url, RECORD, {
      token: alice.token,
      variables: { input: { event: { kind: "FILE_OPENED", filePath: "/a", occurredAt: hoursAgo(24 * 8) } } },
    });
    expect(errorCode(late)).toBe("BAD_USER_INPUT");
    const invalid = await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { eventRetentionDays } }",
      { token: alice.token, variables: { input: { id: alice.org.id, eventRetentionDays: 0 } } },
    );
    expect(errorCode(invalid)).toBe("BAD_USER_INPUT");
  });
});

describe("ingestion's one transaction", () => {
  const AUDIT = `query($id: ID!) { node(id: $id) { ... on Organization {
    auditLogs(first: 10, filter: { action: "eventRecordBatch" }) { edges { node { outcome actor { id } actorApiKeyPrefix details } } }
  } } }`;
  type Entries = {
    node: {
      auditLogs: {
        edges: {
          node: { outcome: string; actor: { id: string } | null; actorApiKeyPrefix: string | null; details: unknown };
        }[];
      };
    } | null;
  };
  const BATCH = "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { stored } }";

  it("writes a batch's audit entry with it: one ALLOWED entry with what was stored, for a user and for a key", async () => {
    const alice = await createUser(suite.url);
    const batch = scenario("tx");
    await recordBatch(suite.url, alice, batch);
    // Part of it again: all duplicates, still an entry of its own.
    await recordBatch(suite.url, alice, batch.slice(0, 2));
    const key = await gql<{ apiKeyCreate: { secret: string } }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
      { token: alice.token, variables: { input: { organizationId: alice.org.id, name: "agent", role: "MEMBER" } } },
    );
    const secret = key.data?.apiKeyCreate.secret as string;
    const byKey = await gql(suite.url, BATCH, {
      headers: { "x-api-key": secret },
      variables: { input: { events: [{ kind: "TOOL_USED", tool: "vim", clientEventId: "k-1" }] } },
    });
    expect(byKey.errors).toBeUndefined();
    const log = await gql<Entries>(suite.url, AUDIT, { token: alice.token, variables: { id: alice.org.id } });
    const entries = log.data?.node?.auditLogs.edges.map((e) => e.node);
    expect(entries).toEqual([
      // A key's entry names the key; its events are its creator's.
      { outcome: "ALLOWED", actor: null, actorApiKeyPrefix: secret.split("_")[1], details: { received: 1, stored: 1 } },
      {
        outcome: "ALLOWED",
        actor: { id: alice.user.id },
        actorApiKeyPrefix: null,
        details: { received: 2, stored: 0 },
      },
      {
        outcome: "ALLOWED",
        actor: { id: alice.user.id },
        actorApiKeyPrefix: null,
        details: { received: 6, stored: 6 },
      },
    ]);
  });

  it("asks the role afresh: a removed member and a demoted one are refused, and each refusal is audited", async () => {
    const owner = await createUser(suite.url);
    const org = await createOrg(suite.url, owner.token);
    const member = await addMember(suite.url, suite.mail, owner.token, org.id, "MEMBER");
    const send = (who: TestUser, id: string) =>
      gql(suite.url, BATCH, {
        token: who.token,
        variables: {
          input: { organizationId: org.id, events: [{ kind: "TOOL_USED", tool: "vim", clientEventId: id }] },
        },
      });
    expect((await send(member, "m-1")).errors).toBeUndefined();
    const demoted = await gql(
      suite.url,
      "mutation($id: ID!) { membershipUpdateRole(id: $id, role: VIEWER) { role } }",
      { token: owner.token, variables: { id: member.membershipId } },
    );
    expect(demoted.errors).toBeUndefined();
    expect(errorCode(await send(member, "m-2"))).toBe("FORBIDDEN");
    const removed = await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(removed.errors).toBeUndefined();
    expect(errorCode(await send(member, "m-3"))).toBe("NOT_FOUND");
    const log = await gql<Entries>(suite.url, AUDIT, { token: owner.token, variables: { id: org.id } });
    // The removed member's attempt is in their own log, not the organization's they left.
    expect(log.data?.node?.auditLogs.edges.map((e) => e.node.outcome)).toEqual(["DENIED", "ALLOWED"]);
  });

  it("uses a new retention at once, for a key's batches too", async () => {
    const alice = await createUser(suite.url);
    const key = await gql<{ apiKeyCreate: { secret: string } }>(
      suite.url,
      "mutation($input: ApiKeyCreateInput!) { apiKeyCreate(input: $input) { secret } }",
      { token: alice.token, variables: { input: { organizationId: alice.org.id, name: "agent", role: "MEMBER" } } },
    );
    const agent = { "x-api-key": key.data?.apiKeyCreate.secret as string };
    const old = (id: string) => ({
      input: { events: [{ kind: "TOOL_USED", tool: "vim", clientEventId: id, occurredAt: hoursAgo(24 * 5) }] },
    });
    expect((await gql(suite.url, BATCH, { headers: agent, variables: old("r-1") })).errors).toBeUndefined();
    await gql(
      suite.url,
      "mutation($input: OrganizationUpdateInput!) { organizationUpdate(input: $input) { eventRetentionDays } }",
      { token: alice.token, variables: { input: { id: alice.org.id, eventRetentionDays: 3 } } },
    );
    const late = await gql(suite.url, BATCH, { headers: agent, variables: old("r-2") });
    expect(errorCode(late)).toBe("BAD_USER_INPUT");
  });
});

describe("what review found", () => {
  it("keeps client ids per user: a member reusing another's id gets an event of their own", async () => {
    const owner = await createUser(suite.url);
    const org = await gql<{ organizationCreate: { id: string } }>(
      suite.url,
      'mutation { organizationCreate(input: { name: "Ids" }) { id } }',
      { token: owner.token },
    );
    const orgId = org.data?.organizationCreate.id as string;
    const member = await addMember(suite.url, suite.mail, owner.token, orgId, "MEMBER");
    const record = (user: TestUser, filePath: string) =>
      gql<{ eventRecord: { id: string; filePath: string; user: { id: string } } }>(
        suite.url,
        "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id filePath user { id } } }",
        {
          token: user.token,
          variables: {
            input: { organizationId: orgId, event: { clientEventId: "evt-1", kind: "FILE_OPENED", filePath } },
          },
        },
      );
    const mine = await record(owner, "/home/o/salaries.xlsx");
    const theirs = await record(member, "/home/m/notes.md");
    expect(theirs.data?.eventRecord).toMatchObject({ filePath: "/home/m/notes.md", user: { id: member.user.id } });
    expect(theirs.data?.eventRecord.id).not.toBe(mine.data?.eventRecord.id);
  });

  it("refuses text PostgreSQL cannot store, and over-long paths in bytes, with BAD_USER_INPUT", async () => {
    const alice = await createUser(suite.url);
    const cases: [Record<string, unknown>, string][] = [
      [{ kind: "TOOL_USED", tool: "vim", operation: "a\u0000b" }, "event.operation"],
      [{ kind: "TOOL_USED", tool: "vim", details: { note: "a\u0000b" } }, "event.details"],
      [{ kind: "FILE_OPENED", filePath: `/${"語".repeat(400)}` }, "event.filePath"],
    ];
    for (const [event, path] of cases) {
      const r = await gql(suite.url, RECORD, { token: alice.token, variables: { input: { event } } });
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
      expect(fieldErrorPaths(r)).toEqual([path]);
    }
    const search = await events(alice, alice.org.id, "", { filter: { search: "a\u0000" } });
    expect(errorCode(search)).toBe("BAD_USER_INPUT");
    const exported = await gql(
      suite.url,
      "mutation($input: EventExportInput!) { eventExport(input: $input) { url } }",
      {
        token: alice.token,
        variables: {
          input: { organizationId: alice.org.id, dataset: "EVENTS", format: "CSV", filter: { userId: "nope" } },
        },
      },
    );
    expect(errorCode(exported)).toBe("BAD_USER_INPUT");
  });

  it("stores a file whose name is only spaces under a safe name, and completes it", async () => {
    const alice = await createUser(suite.url);
    const r = await gqlUpload<{ fileUpload: { status: string; filename: string } }>(
      suite.url,
      "mutation($input: FileUploadInput!) { fileUpload(input: $input) { status filename } }",
      { input: { file: null } },
      { path: "input.file", name: "   ", content: "x" },
      { token: alice.token },
    );
    expect(r.data?.fileUpload).toEqual({ status: "COMPLETED", filename: "upload" });
  });
});

describe("what a new user's trial found", () => {
  it("refuses text PostgreSQL cannot store and unknown zones with BAD_USER_INPUT, never a 500", async () => {
    const alice = await createUser(suite.url);
    for (const event of [
      { kind: "FILE_MODIFIED", filePath: "/a\ud800.txt" },
      { kind: "TOOL_USED", tool: "vim", details: JSON.parse(`${"[".repeat(40)}1${"]".repeat(40)}`) },
    ]) {
      const r = await gql(suite.url, RECORD, { token: alice.token, variables: { input: { event } } });
      expect(errorCode(r)).toBe("BAD_USER_INPUT");
    }
    const zone = await gql(
      suite.url,
      `query($id: ID!) { node(id: $id) { ... on Organization { eventInsights(timeZone: "US/Pacific-New") { total } } } }`,
      { token: alice.token, variables: { id: alice.org.id } },
    );
    // Refused, or known to the database after all (PGlite's zone list differs): never a 500.
    expect([undefined, "BAD_USER_INPUT"]).toContain(errorCode(zone));
    const header = await gql(suite.url, "{ viewer { id } }", {
      token: alice.token,
      headers: { "x-organization-id": "garbage" },
    });
    expect(header.status).toBe(400);
    expect(errorCode(header)).toBe("BAD_USER_INPUT");
  });

  it("audits a mutation refused for its variables as refused, not allowed", async () => {
    const alice = await createUser(suite.url);
    const r = await gql(suite.url, RECORD, { token: alice.token, variables: { input: { event: { kind: "FOO" } } } });
    expect(errorCode(r)).toBe("BAD_USER_INPUT");
    const log = await gql<{ viewer: { auditLogs: { edges: { node: { action: string; outcome: string } }[] } } }>(
      suite.url,
      '{ viewer { auditLogs(first: 5, filter: { action: "eventRecord" }) { edges { node { action outcome } } } } }',
      { token: alice.token },
    );
    expect(log.data?.viewer.auditLogs.edges.map((e) => e.node.outcome)).toEqual(["FAILED"]);
  });

  it("searches text literally, and exports formula-like cells safely and back", async () => {
    const alice = await createUser(suite.url);
    await recordBatch(suite.url, alice, [
      { kind: "FILE_OPENED", filePath: '=HYPERLINK("http://evil","x").py', operation: "@SUM(1+1)" },
      { kind: "FILE_OPENED", filePath: "/plain.txt" },
    ]);
    expect((await events(alice, alice.org.id, "", { filter: { search: "_" } })).data?.node?.events.totalCount).toBe(0);
    expect((await events(alice, alice.org.id, "", { filter: { search: "%" } })).data?.node?.events.totalCount).toBe(0);
    const link = await gql<{ eventExport: { url: string } }>(
      suite.url,
      "mutation($input: EventExportInput!) { eventExport(input: $input) { url } }",
      { token: alice.token, variables: { input: { organizationId: alice.org.id, dataset: "EVENTS", format: "CSV" } } },
    );
    const csv = await (await fetch(new URL(link.data?.eventExport.url as string, suite.url))).text();
    expect(csv).toContain(`"'=HYPERLINK(""http://evil"",""x"").py"`);
    expect(csv).toContain("'@SUM(1+1)");
    expect(csv).not.toMatch(/(^|,)[=@]/m);
    const bob = await createUser(suite.url);
    await gqlUpload(
      suite.url,
      "mutation($input: EventImportInput!) { eventImport(input: $input) { duplicates } }",
      { input: { file: null } },
      { path: "input.file", name: "x.csv", content: csv },
      { token: bob.token },
    );
    const paths = (await events(bob, bob.org.id, "", { first: 5 })).data?.node?.events.edges.map(
      (e) => e.node.filePath,
    );
    expect(paths?.sort()).toEqual(["/plain.txt", '=HYPERLINK("http://evil","x").py']);
  });
});
