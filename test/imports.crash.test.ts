// Imports that do not finish: a process killed mid-import leaves nothing of the import
// behind (the next leader's sweep fails the upload and deletes what it stored), and the
// analysis pipeline never counts an import's events before the import has COMPLETED.
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { collect, gql, gqlUpload, wsClient } from "./helpers/client.ts";
import { recordBatch, suggestionsGenerate } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { isolatedServices } from "./helpers/isolated.ts";
import { liveCursor } from "./helpers/live.ts";
import { spawnServer } from "./helpers/process.ts";
import { startServer } from "./helpers/server.ts";
import { until } from "./helpers/wait.ts";

const IMPORT = `mutation($input: EventImportInput!) {
  eventImport(input: $input) { upload { id status importedCount } }
}`;

/** n lines over ten files of the extension .imp, none of which anything else uses. */
function csv(n: number) {
  const base = Date.now() - 86_400_000 * 2;
  const rows = ["kind,filePath,occurredAt"];
  for (let i = 0; i < n; i++) rows.push(`FILE_MODIFIED,/imp/f${i % 10}.imp,${new Date(base + i * 1000).toISOString()}`);
  return `${rows.join("\n")}\n`;
}

function startImport(url: string, user: TestUser, content: string) {
  return gqlUpload<{ eventImport: { upload: { id: string; status: string; importedCount: number } } }>(
    url,
    IMPORT,
    { input: { file: null, organizationId: user.org.id } },
    { path: "input.file", name: "big.csv", content },
    { token: user.token },
  );
}

type Progress = { eventImportProgress: { upload: { id: string }; phase: string; processedLines: number } };

/** The organization's import progress from now on, as a dashboard follows it. */
async function followImports(url: string, user: TestUser) {
  const after = await liveCursor(url, user.token, user.org.id, "IMPORTS");
  const ws = wsClient(url.replace(/^http/, "ws"), { authorization: `Bearer ${user.token}` });
  const progress = collect<Progress>(
    ws,
    "subscription($org: ID!, $after: String) { eventImportProgress(organizationId: $org, after: $after) { upload { id } phase processedLines } }",
    { org: user.org.id, after },
  );
  /** Resolves with the upload's id once some of its lines are stored (the IMPORTING phase). */
  const importing = async () => {
    await progress.until((items) => items.some((p) => p.eventImportProgress.phase === "IMPORTING"));
    const first = progress.items.find((p) => p.eventImportProgress.phase === "IMPORTING");
    return first?.eventImportProgress.upload.id as string;
  };
  return { importing, dispose: () => ws.dispose() };
}

type UploadState = { status: string; completedAt: string | null; errors: { path: string; message: string }[] };

async function uploadState(url: string, user: TestUser, id: string) {
  const r = await gql<{ node: UploadState }>(
    url,
    "query($id: ID!) { node(id: $id) { ... on Upload { status completedAt errors { path message } } } }",
    { token: user.token, variables: { id } },
  );
  if (!r.data?.node) throw new Error(JSON.stringify(r.errors));
  return r.data.node;
}

async function insights(url: string, user: TestUser) {
  const r = await gql<{
    node: {
      eventInsights: { pending: number; total: number };
      patterns: { edges: { node: { fileExtension: string; count: number } }[] };
    };
  }>(
    url,
    `query($id: ID!) { node(id: $id) { ... on Organization {
      eventInsights { pending total }
      patterns(first: 50) { edges { node { fileExtension count } } }
    } } }`,
    { token: user.token, variables: { id: user.org.id } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  const patterns = Object.fromEntries(r.data.node.patterns.edges.map((e) => [e.node.fileExtension, e.node.count]));
  return { ...r.data.node.eventInsights, patterns };
}

/** Once nothing waits: read again then, as patterns and the pending count are read side by side. */
async function settled(url: string, user: TestUser) {
  await until(
    () => insights(url, user),
    (i) => i.pending === 0,
  );
  return insights(url, user);
}

describe("an import whose process is killed part-way", () => {
  it("ends FAILED on the next start, with none of its events kept and none counted", async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), "floyo-import-crash-"));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    // One database and Redis prefix for both lives, as after a real restart.
    const own = await isolatedServices("importcrash");
    onTestFinished(() => own.cleanup());
    const env = {
      ...own.env,
      DATA_DIR: dataDir,
      // The bound after which a silent import counts as interrupted; the scheduler's lease
      // short enough that the second process leads soon after the first one's death.
      IMPORT_STALE_MS: "4000",
      SCHEDULER_LOCK_TTL_MS: "2000",
      // The pipeline looks for work all the time: it must leave the import's rows alone.
      ANALYSIS_POLL_MS: "100",
    };
    const first = await spawnServer(env);
    onTestFinished(() => first.kill("SIGKILL").then(() => undefined));
    const user = await createUser(first.graphqlUrl);
    // An event of the user's own, so that the pipeline has something to count.
    await recordBatch(first.graphqlUrl, user, [{ kind: "FILE_OPENED", filePath: "/w/notes.md" }]);

    const feed = await followImports(first.graphqlUrl, user);
    const request = startImport(first.graphqlUrl, user, csv(100_000)).catch((err: unknown) => err);
    const uploadId = await feed.importing();
    await feed.dispose();
    expect(await first.kill("SIGKILL")).toBe(null);
    // The request dies with its server.
    expect(await request).toBeInstanceOf(Error);

    const second = await spawnServer(env);
    onTestFinished(() => second.kill("SIGKILL").then(() => undefined));
    // The session outlives the process: the same token works on the new one.
    const failed = await until(
      () => uploadState(second.graphqlUrl, user, uploadId),
      (u) => u.status === "FAILED" && u.completedAt !== null,
    );
    expect(failed.errors).toEqual([
      { path: "input.file", message: expect.stringMatching(/interrupted.*nothing was kept/) },
    ]);
    const after = await settled(second.graphqlUrl, user);
    // Only the user's own event is left, and counted; nothing of the import is.
    expect(after).toEqual({ pending: 0, total: 1, patterns: { ".md": 1 } });
    expect(await second.kill("SIGTERM")).toBe(0);
    // Two servers and a 100,000-line file on the embedded database: minutes on a loaded machine.
  }, 180_000);
});

describe("the events of an import", () => {
  it("are not analysed while the import runs, and are once it has completed", async () => {
    // No polling: what wakes the pipeline for the import's events is its completion.
    const server = await startServer({ ANALYSIS_POLL_MS: "3600000", SUGGESTION_DEBOUNCE_MS: "0" });
    onTestFinished(() => server.stop());
    const user = await createUser(server.graphqlUrl);
    const other = await createUser(server.graphqlUrl);
    await recordBatch(server.graphqlUrl, user, [{ kind: "FILE_OPENED", filePath: "/w/notes.md" }]);

    const feed = await followImports(server.graphqlUrl, user);
    onTestFinished(() => feed.dispose());
    const lines = 40_000;
    const request = startImport(server.graphqlUrl, user, csv(lines));
    const uploadId = await feed.importing();
    // Analysis on demand, while part of the import is stored: it counts everything else.
    await suggestionsGenerate(server.graphqlUrl, user, user.org.id);
    await recordBatch(server.graphqlUrl, other, [{ kind: "FILE_OPENED", filePath: "/o/a.py" }]);
    const during = await insights(server.graphqlUrl, user);
    // Still running after the look at the patterns: what they show was counted during the import.
    expect((await uploadState(server.graphqlUrl, user, uploadId)).status).toBe("PROCESSING");
    expect(during.patterns).toEqual({ ".md": 1 });
    expect(during.pending).toBeGreaterThan(0);
    // Another organization's events are analysed meanwhile, not held up behind the import.
    expect((await settled(server.graphqlUrl, other)).patterns).toEqual({ ".py": 1 });

    const done = await request;
    expect(done.errors).toBeUndefined();
    expect(done.data?.eventImport.upload).toMatchObject({ status: "COMPLETED", importedCount: lines });
    const after = await settled(server.graphqlUrl, user);
    expect(after).toEqual({ pending: 0, total: lines + 1, patterns: { ".md": 1, ".imp": lines } });
    // 40,000 lines stored, then analysed, by the embedded database: minutes on a loaded machine.
  }, 240_000);

  it("of a plain file upload is analysed once the upload has completed", async () => {
    const server = await startServer({ ANALYSIS_POLL_MS: "3600000" });
    onTestFinished(() => server.stop());
    const user = await createUser(server.graphqlUrl);
    const r = await gqlUpload<{ fileUpload: { status: string } }>(
      server.graphqlUrl,
      "mutation($input: FileUploadInput!) { fileUpload(input: $input) { status } }",
      { input: { file: null } },
      { path: "input.file", name: "report.pdf", content: "%PDF-1.4\n" },
      { token: user.token },
    );
    expect(r.data?.fileUpload.status).toBe("COMPLETED");
    expect(await settled(server.graphqlUrl, user)).toEqual({ pending: 0, total: 1, patterns: { ".pdf": 1 } });
  });
});
