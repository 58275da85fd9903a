// Live updates on one instance: every feed, who receives what, resuming, gaps, and access
// kept true while subscribed. Limits: live.limits.test.ts; two instances: live.instances.test.ts.
import jwt from "jsonwebtoken";
import { describe, expect, it } from "vitest";
import { addMember, errorCode } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { recordBatch } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { liveCursor, rawSocket, subscribe } from "./helpers/live.ts";
import { TEST_JWT_KEYS, useServerWithMail } from "./helpers/server.ts";

const suite = useServerWithMail({ SUGGESTION_DEBOUNCE_MS: "0", ANALYSIS_POLL_MS: "100" });

const EVENTS = `subscription($org: ID!, $after: String) {
  eventsRecorded(organizationId: $org, after: $after) { cursor kind count eventId event { filePath } }
}`;
type Recorded = {
  cursor: string;
  kind: string;
  count: number | null;
  eventId: string | null;
  event: { filePath: string } | null;
};

const bearer = (user: Pick<TestUser, "token">) => ({ authorization: `Bearer ${user.token}` });

async function record(user: Pick<TestUser, "token">, filePath: string, organizationId?: string) {
  const r = await gql<{ eventRecord: { id: string } }>(
    suite.url,
    "mutation($input: EventRecordInput!) { eventRecord(input: $input) { id } }",
    { token: user.token, variables: { input: { organizationId, event: { kind: "FILE_OPENED", filePath } } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.eventRecord.id;
}

async function sharedOrg(owner: TestUser) {
  const r = await gql<{ organizationCreate: { id: string } }>(
    suite.url,
    'mutation { organizationCreate(input: { name: "Live Co" }) { id } }',
    { token: owner.token },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.organizationCreate.id;
}

async function createWorkflow(user: TestUser, name: string, steps: Record<string, unknown>[]) {
  const r = await gql<{ workflowCreate: { id: string } }>(
    suite.url,
    "mutation($input: WorkflowCreateInput!) { workflowCreate(input: $input) { id } }",
    { token: user.token, variables: { input: { organizationId: user.org.id, name, definition: { steps } } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowCreate.id;
}

async function runWorkflow(user: TestUser, id: string) {
  const r = await gql<{ workflowRun: { id: string } }>(
    suite.url,
    "mutation($id: ID!) { workflowRun(id: $id) { id } }",
    {
      token: user.token,
      variables: { id },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.workflowRun.id;
}

function eventsFeed(user: Pick<TestUser, "token">, org: string, after?: string | null) {
  return subscribe<Recorded>(suite.server.wsUrl, bearer(user), EVENTS, { org, after });
}

describe("feeds", () => {
  it("eventsRecorded: each event, and a summary per batch, from the cursor read with the data", async () => {
    const alice = await createUser(suite.url);
    const after = await liveCursor(suite.url, alice.token, alice.org.id, "EVENTS");
    const feed = eventsFeed(alice, alice.org.id, after);
    const id = await record(alice, "/a/one.txt");
    await recordBatch(suite.url, alice, [
      { kind: "FILE_OPENED", filePath: "/a/two.txt" },
      { kind: "FILE_OPENED", filePath: "/a/three.txt" },
    ]);
    const [single, batch] = await feed.next(2);
    expect(single).toMatchObject({ kind: "CREATED", count: 1, eventId: id, event: { filePath: "/a/one.txt" } });
    expect(batch).toMatchObject({ kind: "CREATED", count: 2, eventId: null, event: null });
    await feed.close();
  });

  it("patternUpdated: patterns as analysis creates and changes them", async () => {
    const alice = await createUser(suite.url);
    const after = await liveCursor(suite.url, alice.token, alice.org.id, "PATTERNS");
    const feed = subscribe<{ kind: string; pattern: { fileExtension: string; count: number } }>(
      suite.server.wsUrl,
      bearer(alice),
      "subscription($org: ID!, $after: String) { patternUpdated(organizationId: $org, after: $after) { kind pattern { fileExtension count } } }",
      { org: alice.org.id, after },
    );
    await recordBatch(suite.url, alice, [{ kind: "FILE_OPENED", filePath: "/p/a.rs" }]);
    const [created] = await feed.next();
    expect(created).toMatchObject({ kind: "CREATED", pattern: { fileExtension: ".rs" } });
    await recordBatch(suite.url, alice, [{ kind: "FILE_OPENED", filePath: "/p/b.rs" }]);
    const [updated] = await feed.next();
    expect(updated).toMatchObject({ kind: "UPDATED", pattern: { fileExtension: ".rs", count: 2 } });
    await feed.close();
  });

  it("workflowExecutionUpdated: a run from queued to done, step by step", async () => {
    const alice = await createUser(suite.url);
    const workflow = await createWorkflow(alice, "two steps", [
      { id: "first", type: "transform", template: { n: 1 } },
      { id: "second", type: "transform", template: { n: 2 } },
    ]);
    const after = await liveCursor(suite.url, alice.token, alice.org.id, "EXECUTIONS");
    const feed = subscribe<{ kind: string; stepKey: string | null; stepStatus: string | null; executionId: string }>(
      suite.server.wsUrl,
      bearer(alice),
      "subscription($org: ID!, $after: String) { workflowExecutionUpdated(organizationId: $org, after: $after) { kind stepKey stepStatus executionId } }",
      { org: alice.org.id, after },
    );
    const run = await runWorkflow(alice, workflow);
    const events = await feed.next(6);
    expect(events.every((e) => e.executionId === run)).toBe(true);
    expect(events.map((e) => [e.kind, e.stepKey, e.stepStatus])).toEqual([
      ["CREATED", null, null],
      ["UPDATED", "first", "RUNNING"],
      ["UPDATED", "first", "SUCCEEDED"],
      ["UPDATED", "second", "RUNNING"],
      ["UPDATED", "second", "SUCCEEDED"],
      ["UPDATED", null, null],
    ]);
    const status = await gql<{ node: { status: string } }>(
      suite.url,
      "query($id: ID!) { node(id: $id) { ... on Execution { status } } }",
      {
        token: alice.token,
        variables: { id: run },
      },
    );
    expect(status.data?.node.status).toBe("SUCCEEDED");
    await feed.close();

    // Narrowed to one run, resuming from the same cursor: only that run's events.
    const second = await runWorkflow(alice, workflow);
    const narrowed = subscribe<{ executionId: string }>(
      suite.server.wsUrl,
      bearer(alice),
      "subscription($org: ID!, $after: String, $run: ID) { workflowExecutionUpdated(organizationId: $org, after: $after, executionId: $run) { executionId } }",
      { org: alice.org.id, after, run: second },
    );
    const secondEvents = await narrowed.next(6);
    expect(secondEvents.every((e) => e.executionId === second)).toBe(true);
    await narrowed.close();
  });

  it("auditEntryAdded and organizationMembershipChanged: owners see the trail; everyone sees who joins", async () => {
    const owner = await createUser(suite.url);
    const org = await sharedOrg(owner);
    const auditAfter = await liveCursor(suite.url, owner.token, org, "AUDIT");
    const membersAfter = await liveCursor(suite.url, owner.token, org, "MEMBERSHIPS");
    const audit = subscribe<{ kind: string; entry: { action: string } }>(
      suite.server.wsUrl,
      bearer(owner),
      "subscription($org: ID!, $after: String) { auditEntryAdded(organizationId: $org, after: $after) { kind entry { action } } }",
      { org, after: auditAfter },
    );
    const members = subscribe<{ kind: string; membership: { role: string } | null; membershipId: string }>(
      suite.server.wsUrl,
      bearer(owner),
      "subscription($org: ID!, $after: String) { organizationMembershipChanged(organizationId: $org, after: $after) { kind membershipId membership { role } } }",
      { org, after: membersAfter },
    );
    const member = await addMember(suite.url, suite.mail, owner.token, org, "MEMBER");
    const [joined] = await members.next();
    expect(joined).toMatchObject({
      kind: "CREATED",
      membershipId: member.membershipId,
      membership: { role: "MEMBER" },
    });
    // Notices are relayed after commit: the organization's creation, committed before the
    // cursor was read, may still come after it (as the README says, a repeat of what the data shows).
    const actions: string[] = [];
    while (actions.at(-1) !== "organizationInvite") actions.push(...(await audit.next(1)).map((e) => e.entry.action));
    expect(["organizationInvite", "organizationCreate,organizationInvite"]).toContain(actions.join());

    // A member may not follow the audit trail.
    const refused = subscribe(
      suite.server.wsUrl,
      bearer(member),
      "subscription($org: ID!) { auditEntryAdded(organizationId: $org) { kind } }",
      { org },
    );
    expect(errorCode({ errors: (await refused.ended()) as never })).toBe("FORBIDDEN");

    await gql(suite.url, "mutation($id: ID!) { membershipUpdateRole(id: $id, role: ADMIN) { id } }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(await members.next()).toMatchObject([{ kind: "UPDATED", membership: { role: "ADMIN" } }]);
    await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    expect(await members.next()).toMatchObject([
      { kind: "DELETED", membershipId: member.membershipId, membership: null },
    ]);
    await Promise.all([audit.close(), members.close(), refused.close()]);
  });
});

describe("who receives what", () => {
  it("puts every mutation in the organization it acted in, personal included, on the audit feed", async () => {
    const alice = await createUser(suite.url);
    const after = await liveCursor(suite.url, alice.token, alice.org.id, "AUDIT");
    const audit = subscribe<{ entry: { action: string } }>(
      suite.server.wsUrl,
      bearer(alice),
      "subscription($org: ID!, $after: String) { auditEntryAdded(organizationId: $org, after: $after) { entry { action } } }",
      { org: alice.org.id, after },
    );
    await record(alice, "/audit/no-org-named.txt");
    expect((await audit.next()).map((e) => e.entry.action)).toEqual(["eventRecord"]);
    await audit.close();
  });

  it("answers NOT_FOUND for one run of another organization", async () => {
    const alice = await createUser(suite.url);
    const mallory = await createUser(suite.url);
    const run = await runWorkflow(
      alice,
      await createWorkflow(alice, "w", [{ id: "t", type: "transform", template: {} }]),
    );
    const snooping = subscribe(
      suite.server.wsUrl,
      bearer(mallory),
      "subscription($org: ID!, $run: ID) { workflowExecutionUpdated(organizationId: $org, executionId: $run) { kind } }",
      { org: mallory.org.id, run },
    );
    expect(errorCode({ errors: (await snooping.ended()) as never })).toBe("NOT_FOUND");
    await snooping.close();
  });

  it("never delivers another organization's rows, and refuses its feeds as NOT_FOUND", async () => {
    const alice = await createUser(suite.url);
    const mallory = await createUser(suite.url);
    const snooping = subscribe(suite.server.wsUrl, bearer(mallory), EVENTS, { org: alice.org.id });
    expect(errorCode({ errors: (await snooping.ended()) as never })).toBe("NOT_FOUND");

    const own = eventsFeed(
      mallory,
      mallory.org.id,
      await liveCursor(suite.url, mallory.token, mallory.org.id, "EVENTS"),
    );
    await record(alice, "/alice/secret.txt");
    await record(mallory, "/mallory/own.txt");
    const [first] = await own.next();
    expect(first?.event?.filePath).toBe("/mallory/own.txt");
    await Promise.all([own.close(), snooping.close()]);
  });

  it("shows a member their own analytics and an admin everyone's", async () => {
    const owner = await createUser(suite.url);
    const org = await sharedOrg(owner);
    const member = await addMember(suite.url, suite.mail, owner.token, org, "MEMBER");
    const other = await addMember(suite.url, suite.mail, owner.token, org, "MEMBER");
    const after = await liveCursor(suite.url, owner.token, org, "EVENTS");
    const ownerFeed = eventsFeed(owner, org, after);
    const memberFeed = eventsFeed(member, org, after);
    await record(other, "/other/1.txt", org);
    await record(member, "/member/1.txt", org);
    expect((await ownerFeed.next(2)).map((e) => e.event?.filePath)).toEqual(["/other/1.txt", "/member/1.txt"]);
    expect((await memberFeed.next()).map((e) => e.event?.filePath)).toEqual(["/member/1.txt"]);
    await Promise.all([ownerFeed.close(), memberFeed.close()]);
  });
});

describe("resuming", () => {
  it("sends what a dropped client missed, in order and once, then carries on live", async () => {
    const alice = await createUser(suite.url);
    const first = eventsFeed(alice, alice.org.id, await liveCursor(suite.url, alice.token, alice.org.id, "EVENTS"));
    await record(alice, "/r/0.txt");
    const [seen] = await first.next();
    await first.close();
    for (let i = 1; i <= 5; i++) await record(alice, `/r/${i}.txt`);

    const resumed = eventsFeed(alice, alice.org.id, seen?.cursor);
    const missed = await resumed.next(5);
    expect(missed.map((e) => e.event?.filePath)).toEqual([1, 2, 3, 4, 5].map((i) => `/r/${i}.txt`));
    await record(alice, "/r/6.txt");
    const [live] = await resumed.next();
    expect(live?.event?.filePath).toBe("/r/6.txt");
    const cursors = [seen, ...missed, live].map((e) => e?.cursor);
    expect(new Set(cursors).size).toBe(7);
    expect(resumed.items).toHaveLength(6);
    await resumed.close();
  });

  it("refuses a cursor that is not one", async () => {
    const alice = await createUser(suite.url);
    const feed = eventsFeed(alice, alice.org.id, "yesterday");
    expect(errorCode({ errors: (await feed.ended()) as never })).toBe("BAD_USER_INPUT");
    await feed.close();
  });
});

describe("access while subscribed", () => {
  it("ends a removed member's subscriptions with MEMBERSHIP_REVOKED", async () => {
    const owner = await createUser(suite.url);
    const org = await sharedOrg(owner);
    const member = await addMember(suite.url, suite.mail, owner.token, org, "MEMBER");
    const feed = eventsFeed(member, org, await liveCursor(suite.url, member.token, org, "EVENTS"));
    await record(member, "/m/1.txt", org);
    await feed.next();
    await gql(suite.url, "mutation($id: ID!) { membershipRemove(id: $id) }", {
      token: owner.token,
      variables: { id: member.membershipId },
    });
    const [ended] = (await feed.ended()) as { extensions: Record<string, unknown> }[];
    expect(ended?.extensions).toMatchObject({ code: "MEMBERSHIP_REVOKED", requestId: expect.any(String) });
    await feed.close();
  });

  it("closes the socket with 4403 when the session is revoked, or the token expires", async () => {
    const alice = await createUser(suite.url);
    const socket = rawSocket(suite.server.wsUrl);
    await socket.opened;
    socket.send({ type: "connection_init", payload: bearer(alice) });
    await socket.message((m) => m.type === "connection_ack");
    await gql(suite.url, "mutation { authLogout }", { token: alice.token });
    expect(await socket.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^SESSION_REVOKED/) });

    const bob = await createUser(suite.url);
    const claims = jwt.decode(bob.token) as { sub: string; sid: string };
    const [kid, ...secret] = TEST_JWT_KEYS.split(":");
    const shortLived = jwt.sign({ sid: claims.sid }, secret.join(":"), {
      algorithm: "HS256",
      keyid: kid,
      subject: claims.sub,
      issuer: "floyo",
      audience: "floyo-api",
      // Whole seconds: 3 leaves at least 2 to connect in.
      expiresIn: 3,
    });
    const expiring = rawSocket(suite.server.wsUrl);
    await expiring.opened;
    expiring.send({ type: "connection_init", payload: { authorization: `Bearer ${shortLived}` } });
    await expiring.message((m) => m.type === "connection_ack");
    expect(await expiring.closed).toEqual({ code: 4403, reason: expect.stringMatching(/^TOKEN_EXPIRED/) });
  });

  it("refuses bad credentials at connect, and asks for them on subscribe", async () => {
    const bad = rawSocket(suite.server.wsUrl);
    await bad.opened;
    bad.send({ type: "connection_init", payload: { authorization: "Bearer not-a-token" } });
    expect((await bad.closed).code).toBe(4403);

    const anonymous = subscribe(suite.server.wsUrl, {}, EVENTS, { org: "T3JnYW5pemF0aW9uOng=" });
    expect(errorCode({ errors: (await anonymous.ended()) as never })).toBe("UNAUTHENTICATED");
    await anonymous.close();

    const notAString = rawSocket(suite.server.wsUrl);
    await notAString.opened;
    notAString.send({ type: "connection_init", payload: { authorization: 42 } });
    expect((await notAString.closed).code).toBe(4403);
  });
});

describe("GraphQL over SSE", () => {
  it("serves the same resumable feeds to clients without WebSocket", async () => {
    const alice = await createUser(suite.url);
    const after = await liveCursor(suite.url, alice.token, alice.org.id, "EVENTS");
    const controller = new AbortController();
    const response = await fetch(suite.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "text/event-stream",
        authorization: `Bearer ${alice.token}`,
      },
      body: JSON.stringify({ query: EVENTS, variables: { org: alice.org.id, after } }),
      signal: controller.signal,
    });
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await record(alice, "/sse/1.txt");
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("/sse/1.txt")) text += decoder.decode((await reader.read()).value, { stream: true });
    const data = JSON.parse(/event: next\ndata: (.*)\n/.exec(text)?.[1] ?? "null");
    expect(data.data.eventsRecorded).toMatchObject({ kind: "CREATED", event: { filePath: "/sse/1.txt" } });
    controller.abort();
  });
});
