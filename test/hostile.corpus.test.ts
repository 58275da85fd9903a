// A corpus of hostile requests (issue 13, part 7), table-driven: each case is sent over HTTP as
// an attacker would, and each must be refused with a 4xx or a GraphQL error whose code is one
// the server is known to use (or, for reads, answer exactly what it should), never a 5xx, a
// stack or a path. After each category the server must still be live, ready and answering;
// after the whole corpus, no row of any table may have changed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Case } from "./corpus/case.ts";
import { credentials, requestIds } from "./corpus/credentials.ts";
import { aliasBombs, deepNesting, directiveBombs, fragmentBombs } from "./corpus/documents.ts";
import { batchAbuse, contentTypes, getAndMethods } from "./corpus/http.ts";
import { injection } from "./corpus/injection.ts";
import { inheritedNames } from "./corpus/names.ts";
import { judge, send } from "./corpus/send.ts";
import { foreignIds, invalidIds } from "./corpus/tenancy.ts";
import { malformedJson, oversizedBodies, wrongTypes } from "./corpus/transport.ts";
import { multipartUploads, UPLOAD_MAX } from "./corpus/uploads.ts";
import { hugeInputs, hugeStrings } from "./corpus/values.ts";
import { makeWorld, type World } from "./corpus/world.ts";
import { gql } from "./helpers/client.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

const CATEGORIES: [string, Case[]][] = [
  ["deep nesting", deepNesting],
  ["alias bombs", aliasBombs],
  ["fragment bombs", fragmentBombs],
  ["directive bombs", directiveBombs],
  ["malformed JSON", malformedJson],
  ["wrong types", wrongTypes],
  ["huge strings and odd characters", hugeStrings],
  ["huge lists and deep inputs", hugeInputs],
  ["oversized bodies", oversizedBodies],
  ["multipart uploads", multipartUploads],
  ["batch abuse", batchAbuse],
  ["GET, methods and paths", getAndMethods],
  ["content types", contentTypes],
  ["injection in filters and search", injection],
  ["foreign ids", foreignIds],
  ["invalid ids", invalidIds],
  ["inherited property names", inheritedNames],
  ["credentials and headers", credentials],
  ["request ids", requestIds],
];

/**
 * Tables whose rows a refused request adds by design: every refused mutation is audited (and
 * the entry relayed through the live outbox), and failed logins are counted for lockouts.
 */
const WRITTEN_BY_DESIGN = new Set(["audit_logs", "live_outbox", "login_attempts", "_prisma_migrations"]);

let server: TestServer;
let world: World;
let cleanup: () => Promise<void>;
let before: Map<string, string>;

/** Every table's row count and a checksum of its rows, read straight from the database. */
async function snapshot(): Promise<Map<string, string>> {
  const { raw } = server.app.runtime.db;
  const tables = await raw.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`,
  );
  const result = new Map<string, string>();
  for (const { name } of tables) {
    if (WRITTEN_BY_DESIGN.has(name)) continue;
    // Less last_used_at: a request made with a session or an API key records that it was used.
    const [row] = await raw.query<{ n: number; sum: string | null }>(
      `SELECT count(*)::int AS n, md5(string_agg(r, '|' ORDER BY r)) AS sum
       FROM (SELECT (to_jsonb(t) - 'last_used_at')::text AS r FROM "${name}" t) rows`,
    );
    result.set(name, `${row?.n} rows, md5 ${row?.sum}`);
  }
  return result;
}

async function healthy() {
  for (const path of ["/health/liveness", "/health/readiness"]) {
    const r = await fetch(`${server.url}${path}`);
    expect(r.status, path).toBe(200);
  }
  const r = await gql(server.graphqlUrl, "{ viewer { id } }", { token: world.attacker.user.token });
  expect(r.data).toEqual({ viewer: { id: world.attacker.user.user.id } });
  const own = await gql(server.graphqlUrl, "query($id: ID!) { node(id: $id) { ... on Workflow { name } } }", {
    token: world.victim.user.token,
    variables: { id: world.victim.ids.Workflow },
  });
  expect(own.data).toEqual({ node: { name: "Victim payroll" } });
}

beforeAll(async () => {
  // A database of its own in the services mode: other suites' traffic must not move its rows.
  const isolated = await isolatedServices("corpus");
  cleanup = isolated.cleanup;
  server = await startServer({
    ...isolated.env,
    UPLOAD_MAX_BYTES: String(UPLOAD_MAX),
    // Nothing runs in the background (the queued run stays queued): rows change only by request.
    JOBS_ENABLED: "false",
    // Generous rate limits: the corpus checks what each request gets, not the limits (429 would pass, but hide that).
    RATE_LIMIT_POINTS: "1000000",
    RATE_LIMIT_ADDRESS_POINTS: "1000000",
    RATE_LIMIT_ANONYMOUS_POINTS: "1000000",
    AUTH_RATE_LIMIT_ACCOUNT: "1000000/900",
    AUTH_RATE_LIMIT_ADDRESS: "1000000/900",
  });
  world = await makeWorld(server.url);
  before = await snapshot();
});

afterAll(async () => {
  await server?.stop();
  await cleanup?.();
});

for (const [category, cases] of CATEGORIES) {
  describe(category, () => {
    it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
      const reply = await send(world, c.request(world));
      judge(c, reply, world);
    });

    it("leaves the server live, ready and answering", healthy);
  });
}

describe("the whole corpus", () => {
  it("holds at least 200 requests", () => {
    const counts = CATEGORIES.map(([category, cases]) => `${String(cases.length).padStart(4)}  ${category}`);
    const total = CATEGORIES.reduce((n, [, cases]) => n + cases.length, 0);
    console.info(`hostile corpus: ${total} requests\n${counts.join("\n")}`);
    expect(total).toBeGreaterThanOrEqual(200);
  });

  it("changed no row of any table", async () => {
    const after = await snapshot();
    expect(Object.fromEntries(after)).toEqual(Object.fromEntries(before));
  });
});
