// The detection rules on crafted sequences, checked against exact expected patterns,
// sequences and relationships, however the events arrive: at once, out of order, retried.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gql } from "./helpers/client.ts";
import { recordBatch, scenario, snapshot, suggestionsGenerate } from "./helpers/events.ts";
import { createUser } from "./helpers/factories.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let url: string;
beforeAll(async () => {
  // A long poll: the tests drive analysis on demand, so counts are read at known moments.
  server = await startServer({ ANALYSIS_POLL_MS: "3600000", SUGGESTION_DEBOUNCE_MS: "0" });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const EXPECTED = {
  patterns: [
    { fileExtension: ".py", count: 4, tools: ["python", "vscode"] },
    { fileExtension: ".csv", count: 1, tools: ["python"] },
    { fileExtension: ".docx", count: 1, tools: ["word"] },
  ],
  sequences: [
    { sequence: "file_modified -> script_run", count: 2, meanGapSeconds: 10 },
    { sequence: "file_created -> file_opened", count: 1, meanGapSeconds: 80 },
    { sequence: "script_run -> file_created", count: 1, meanGapSeconds: 10 },
  ],
  relationsOfScript: [
    { sourcePath: "/w/config.json", targetPath: "/w/scrape.py", relationType: "CONSUMES", weight: 1 },
    { sourcePath: "/w/out.csv", targetPath: "/w/scrape.py", relationType: "ACCESSED_TOGETHER", weight: 1 },
    { sourcePath: "/w/scrape.py", targetPath: "/w/out.csv", relationType: "ACCESSED_TOGETHER", weight: 1 },
    { sourcePath: "/w/scrape.py", targetPath: "/w/out.csv", relationType: "GENERATES", weight: 2 },
  ],
};

describe("pattern engine", () => {
  it("finds the exact extension patterns, sequences and relationships of a crafted sequence", async () => {
    const user = await createUser(url);
    const events = scenario("all");
    const result = await recordBatch(url, user, events);
    expect(result).toEqual({ received: 6, stored: 6, duplicates: 0 });
    await suggestionsGenerate(url, user);
    expect(await snapshot(url, user)).toEqual(EXPECTED);
  });

  it("gives the same result when events arrive out of order, across analyses", async () => {
    const user = await createUser(url);
    const events = scenario("ooo");
    // Every other event first, analysed; then the rest, which split pairs counted before.
    await recordBatch(url, user, events.filter((_, i) => i % 2 === 1).reverse());
    await suggestionsGenerate(url, user);
    const partial = await snapshot(url, user);
    expect(partial.sequences).not.toEqual(EXPECTED.sequences);
    await recordBatch(
      url,
      user,
      events.filter((_, i) => i % 2 === 0),
    );
    await suggestionsGenerate(url, user);
    expect(await snapshot(url, user)).toEqual(EXPECTED);
  });

  it("stores nothing twice when a batch is retried, and counts nothing twice", async () => {
    const user = await createUser(url);
    const events = scenario("retry");
    await recordBatch(url, user, events);
    await suggestionsGenerate(url, user);
    expect(await recordBatch(url, user, events)).toEqual({ received: 6, stored: 0, duplicates: 6 });
    await suggestionsGenerate(url, user);
    expect(await snapshot(url, user)).toEqual(EXPECTED);
    const count = await gql<{ node: { events: { totalCount: number } } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Organization { events { totalCount } } } }",
      { token: user.token, variables: { id: user.org.id } },
    );
    expect(count.data?.node.events.totalCount).toBe(6);
  });

  it("keeps users apart: another member's events never enter your patterns", async () => {
    const a = await createUser(url);
    const b = await createUser(url);
    await recordBatch(url, a, scenario("a"));
    await recordBatch(url, b, [{ kind: "FILE_OPENED", filePath: "/b/notes.md", clientEventId: "b-1" }]);
    await suggestionsGenerate(url, a);
    await suggestionsGenerate(url, b);
    expect((await snapshot(url, a)).patterns.map((p) => p.fileExtension)).toEqual([".py", ".csv", ".docx"]);
    expect((await snapshot(url, b)).patterns).toEqual([{ fileExtension: ".md", count: 1, tools: [] }]);
  });
});
