// What a nested read costs PostgreSQL, counted on the wire (a TCP proxy reading the protocol):
// the deep read (organization -> workflows -> executions) is at most 2 statements at any page
// size, and connections count rows only when a client asks for totalCount. Services mode: the
// embedded database has no wire to read.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeWorkflow } from "./helpers/api.ts";
import { gql } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { type Statement, startPgTap } from "./helpers/pgTap.ts";
import { services, startServer, type TestServer } from "./helpers/server.ts";

const WORKFLOWS = 60;
const RUNS_OF_FIRST = 30;

/**
 * The statements of the request itself: not the outbox relay's, which polls on its own, in
 * transactions of its own: each tries the relay's advisory lock and, holding it, reads
 * live_outbox (another server of the suite on the same database may hold it instead).
 */
const RELAY = /live_outbox|pg_try_advisory_xact_lock/;
function ofRequest(statements: Statement[], all: Statement[]) {
  // From every statement seen: a relay transaction may have begun before the request.
  const relay = new Set(all.filter((s) => s.transaction !== null && RELAY.test(s.sql)).map((s) => s.transaction));
  return statements.filter((s) => !relay.has(s.transaction));
}

describe.runIf(services)("statements per read", () => {
  let tap: Awaited<ReturnType<typeof startPgTap>>;
  let server: TestServer;
  let url: string;
  let user: TestUser;

  beforeAll(async () => {
    const target = new URL(services!.databaseUrl);
    tap = await startPgTap({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${tap.proxy.port}`;
    // No background jobs (their polling would share the wire) and no response cache (every
    // request must reach the database).
    server = await startServer({ DATABASE_URL: target.toString(), JOBS_ENABLED: "false", RESPONSE_CACHE: "off" });
    url = server.graphqlUrl;
    user = await createUser(url);
    const ids: string[] = [];
    for (let i = 0; i < WORKFLOWS; i++) ids.push(await activeWorkflow(url, user, { name: `wf ${i}` }));
    // The last created is changed last, so it comes first (most recently changed first).
    for (let i = 0; i < RUNS_OF_FIRST; i++) {
      const r = await gql(url, "mutation($id: ID!) { workflowRun(id: $id) { id } }", {
        token: user.token,
        variables: { id: ids[WORKFLOWS - 1] },
      });
      expect(r.errors).toBeUndefined();
    }
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    tap?.proxy.close();
  });

  interface Page<T> {
    totalCount?: number;
    edges: { node: T }[];
  }
  type Deep = { node: { workflows: Page<{ id: string; executions: Page<{ id: string }> }> } };

  /** Runs `query` once to warm the credential cache, then again, counting its statements. */
  async function count(query: string) {
    const warm = await gql(url, query, { token: user.token });
    expect(warm.errors).toBeUndefined();
    const from = tap.executed.length;
    const r = await gql<Deep>(url, query, { token: user.token });
    expect(r.errors).toBeUndefined();
    // Transactions begun meanwhile (the relay's) are read whole before they are told apart.
    await tap.settled();
    return { data: r.data as Deep, statements: ofRequest(tap.executed.slice(from), tap.executed) };
  }

  const deep = (workflows: number, executions: number, extra = "") =>
    `{ node(id: "ORG") { ... on Organization { workflows(first: ${workflows}) { ${extra} edges { node { id name executions(first: ${executions}) { ${extra} edges { node { id status queuedAt } } } } } } } } }`;

  it.each([
    [1, 1],
    [20, 5],
    [WORKFLOWS, RUNS_OF_FIRST],
    // The largest page the cost limit lets through with executions beneath.
    [100, 10],
  ])("reads organization -> workflows(first: %i) -> executions(first: %i) in at most 2 statements", async (w, e) => {
    const { data, statements } = await count(deep(w, e).replace("ORG", user.org.id));
    const edges = data.node.workflows.edges;
    expect(edges).toHaveLength(Math.min(w, WORKFLOWS));
    expect(edges[0]!.node.executions.edges).toHaveLength(Math.min(e, RUNS_OF_FIRST));
    // At least one: the answer came from the database, through the proxy, and was counted.
    expect(statements.length, statements.map((s) => s.sql).join("\n")).toBeGreaterThanOrEqual(1);
    expect(statements.length, statements.map((s) => s.sql).join("\n")).toBeLessThanOrEqual(2);
  });

  it("counts rows only for a client that asks for totalCount", async () => {
    const without = await count(deep(20, 5).replace("ORG", user.org.id));
    expect(without.statements.some((s) => /count\(/i.test(s.sql))).toBe(false);
    const asked = await count(deep(20, 5, "totalCount").replace("ORG", user.org.id));
    expect(asked.data.node.workflows.totalCount).toBe(WORKFLOWS);
    expect(asked.data.node.workflows.edges[0]?.node.executions.totalCount).toBe(RUNS_OF_FIRST);
    expect(asked.statements.some((s) => /count\(/i.test(s.sql))).toBe(true);
  });
});
