// The analysis pipeline: a crash mid-analysis resumes without counting anything twice, and
// one organization's flood does not hold up the others. Results are checked against a
// naive full rescan of the same events.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { gql, gqlUpload } from "./helpers/client.ts";
import { type EventInput, recordBatch, snapshot } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { spawnServer } from "./helpers/process.ts";
import { startServer, type TestServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

type Crafted = EventInput & { filePath: string; occurredAt: string };

/** n events 10 s apart, alternating kinds, over ten files of two extensions. */
function crafted(n: number): Crafted[] {
  const base = Date.now() - 86_400_000 * 4;
  return Array.from({ length: n }, (_, i) => ({
    kind: i % 2 ? "FILE_MODIFIED" : "FILE_OPENED",
    filePath: `/c/f${i % 10}${i % 4 < 2 ? ".py" : ".md"}`,
    occurredAt: new Date(base + i * 10_000).toISOString(),
  }));
}

/** The rules as a plain rescan: what any order of incremental analysis must end up with. */
function rescan(events: Crafted[], relatedTo: string) {
  const sorted = [...events].sort((a, b) => a.occurredAt.localeCompare(b.occurredAt));
  const ext = new Map<string, number>();
  const seq = new Map<string, { count: number; gap: number }>();
  const rel = new Map<string, number>();
  sorted.forEach((e, i) => {
    const x = path.extname(e.filePath);
    ext.set(x, (ext.get(x) ?? 0) + 1);
    const prev = sorted[i - 1];
    const t = Date.parse(e.occurredAt);
    if (prev && t - Date.parse(prev.occurredAt) < 300_000) {
      const key = `${prev.kind.toLowerCase()} -> ${e.kind.toLowerCase()}`;
      const s = seq.get(key) ?? { count: 0, gap: 0 };
      seq.set(key, { count: s.count + 1, gap: s.gap + t - Date.parse(prev.occurredAt) });
    }
    // Consecutive file events (every event here has a file) under 30 s apart, different files.
    if (prev && prev.filePath !== e.filePath && t - Date.parse(prev.occurredAt) < 30_000) {
      for (const [a, b] of [
        [prev.filePath, e.filePath],
        [e.filePath, prev.filePath],
      ])
        if (a === relatedTo || b === relatedTo) rel.set(`${a}>${b}`, (rel.get(`${a}>${b}`) ?? 0) + 1);
    }
  });
  return {
    patterns: [...ext]
      .map(([fileExtension, count]) => ({ fileExtension, count }))
      .sort((a, b) => b.count - a.count || a.fileExtension.localeCompare(b.fileExtension)),
    sequences: [...seq]
      .map(([sequence, s]) => ({ sequence, count: s.count, meanGapSeconds: s.gap / s.count / 1000 }))
      .sort((a, b) => b.count - a.count || a.sequence.localeCompare(b.sequence)),
    relations: [...rel].map(([k, weight]) => `${k}=${weight}`).sort(),
  };
}

async function analysed(url: string, user: TestUser, relatedTo = "/c/f0.py") {
  const s = await snapshot(url, user, relatedTo);
  return {
    patterns: s.patterns.map(({ fileExtension, count }) => ({ fileExtension, count })),
    sequences: s.sequences,
    relations: s.relationsOfScript.map((r) => `${r.sourcePath}>${r.targetPath}=${r.weight}`).sort(),
  };
}

function csvOf(events: Crafted[]) {
  return `kind,filePath,occurredAt\n${events.map((e) => `${e.kind},${e.filePath},${e.occurredAt}`).join("\n")}\n`;
}

async function importCsv(url: string, user: TestUser, events: Crafted[]) {
  const r = await gqlUpload(
    url,
    "mutation($input: EventImportInput!) { eventImport(input: $input) { upload { importedCount } } }",
    { input: { file: null } },
    { path: "input.file", name: "flood.csv", content: csvOf(events) },
    { token: user.token },
  );
  if (r.errors) throw new Error(JSON.stringify(r.errors));
}

async function pending(url: string, user: TestUser) {
  const r = await gql<{ node: { eventInsights: { pending: number; total: number } } }>(
    url,
    "query($id: ID!) { node(id: $id) { ... on Organization { eventInsights { pending total } } } }",
    { token: user.token, variables: { id: user.org.id } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.eventInsights;
}

describe("analysis pipeline", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ ANALYSIS_CONCURRENCY: "1" });
  });
  afterAll(() => server.stop());

  it("works through one organization's flood alongside the others, not before them", async () => {
    const flooder = await createUser(server.graphqlUrl);
    const other = await createUser(server.graphqlUrl);
    await importCsv(server.graphqlUrl, flooder, crafted(20_000));
    await recordBatch(server.graphqlUrl, other, [{ kind: "FILE_OPENED", filePath: "/o/a.md" }]);
    await until(
      () => pending(server.graphqlUrl, other),
      (p) => p.pending === 0,
    );
    // The other organization is done while the flood (40 chunks) is still being worked through.
    expect((await pending(server.graphqlUrl, flooder)).pending).toBeGreaterThan(0);
    await until(
      () => pending(server.graphqlUrl, flooder),
      (p) => p.pending === 0,
    );
    const expected = rescan(crafted(20_000), "/c/f0.py");
    const result = await analysed(server.graphqlUrl, flooder);
    expect(result.patterns).toEqual(expected.patterns);
    expect(result.sequences.map((s) => s.sequence)).toEqual(expected.sequences.map((s) => s.sequence));
  });
});

describe("a burst", () => {
  it("relates a burst's consecutive files exactly, not every pair of them", async () => {
    const server = await startServer();
    onTestFinished(() => server.stop());
    const user = await createUser(server.graphqlUrl);
    const base = Date.now() - 3_600_000;
    // 900 events 10 ms apart over 150 files, all within 30 s of each other: 899 consecutive
    // pairs, where every pair in the window would have made about 400,000.
    const burst: Crafted[] = Array.from({ length: 900 }, (_, i) => ({
      kind: "FILE_MODIFIED",
      filePath: `/b/f${i % 150}.txt`,
      occurredAt: new Date(base + i * 10).toISOString(),
    }));
    await recordBatch(server.graphqlUrl, user, burst);
    await until(
      () => pending(server.graphqlUrl, user),
      (p) => p.pending === 0,
    );
    const expected = rescan(burst, "/b/f0.txt");
    const result = await analysed(server.graphqlUrl, user, "/b/f0.txt");
    expect(result.patterns).toEqual(expected.patterns);
    expect(result.relations).toEqual(expected.relations);
  });
});

describe("a crash mid-analysis", () => {
  it("resumes on restart and counts every event exactly once", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-crash-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    // The same database (and Redis prefix) for both lives, as after a real restart, and no
    // other suite's server analysing in their place.
    const own = await isolatedServices("crash");
    onTestFinished(() => own.cleanup());
    const env = { ...own.env, DATA_DIR: dataDir, ANALYSIS_CONCURRENCY: "1" };
    const first = await spawnServer(env);
    onTestFinished(() => first.kill("SIGKILL").then(() => undefined));
    const user = await createUser(first.graphqlUrl);
    const events = crafted(12_000);
    await importCsv(first.graphqlUrl, user, events);
    // Killed while the pipeline is part-way through the events.
    await until(
      () => pending(first.graphqlUrl, user),
      (p) => p.pending < p.total,
    );
    expect(await first.kill("SIGKILL")).toBe(null);

    const second = await spawnServer(env);
    onTestFinished(() => second.kill("SIGKILL").then(() => undefined));
    // The session outlives the process: the same token works on the new one.
    await until(
      () => pending(second.graphqlUrl, user),
      (p) => p.pending === 0,
    );
    const expected = rescan(events, "/c/f0.py");
    expect(await analysed(second.graphqlUrl, user)).toEqual(expected);
    expect(await second.kill("SIGTERM")).toBe(0);
  });
});
