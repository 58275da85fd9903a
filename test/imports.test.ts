// Files in: imports of events (CSV, JSON lines) through GraphQL multipart requests, all or
// nothing, with progress published while they run; plain uploads recorded as events.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode, fieldErrorPaths } from "./helpers/api.ts";
import { collect, gql, gqlUpload, wsClient } from "./helpers/client.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { liveCursor } from "./helpers/live.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let url: string;
const MAX_BYTES = 2 * 1024 * 1024;
beforeAll(async () => {
  server = await startServer({ UPLOAD_MAX_BYTES: String(MAX_BYTES), SUGGESTION_DEBOUNCE_MS: "0" });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const IMPORT = `mutation($input: EventImportInput!) {
  eventImport(input: $input) { duplicates upload { id status kind totalLines importedCount errorCount filename } }
}`;

interface ImportResult {
  eventImport: {
    duplicates: number;
    upload: { id: string; status: string; totalLines: number; importedCount: number; errorCount: number };
  };
}

function importFile(user: TestUser, name: string, content: string | Uint8Array, format?: string) {
  return gqlUpload<ImportResult>(
    url,
    IMPORT,
    { input: { file: null, organizationId: user.org.id, format } },
    { path: "input.file", name, content },
    { token: user.token },
  );
}

async function eventCount(user: TestUser) {
  const r = await gql<{ node: { events: { totalCount: number } } }>(
    url,
    "query($id: ID!) { node(id: $id) { ... on Organization { events { totalCount } } } }",
    { token: user.token, variables: { id: user.org.id } },
  );
  return r.data?.node.events.totalCount;
}

const base = Date.now() - 86_400_000;
const at = (i: number) => new Date(base + i * 7_000).toISOString();

describe("event imports", () => {
  it("imports 10,000 CSV lines in one go, publishing progress while it runs", async () => {
    const user = await createUser(url);
    const extensions = [".py", ".csv", ".md", ".sql"];
    const rows = ["clientEventId,kind,filePath,tool,occurredAt,details,outputs"];
    for (let i = 0; i < 10_000; i++) {
      const ext = extensions[i % 4];
      // Quoted cells with commas, escaped quotes and a line break inside: the parser must cope.
      const details = i % 1000 === 0 ? `"{""note"": ""line, with comma""}"` : "";
      const outputs = i % 4 === 0 ? `/data/out${i % 7}.csv;/data/log.txt` : "";
      const kind = outputs ? "SCRIPT_RUN" : "FILE_MODIFIED";
      rows.push(`imp-${i},${kind},"/data/file ${i % 50}${ext}",vim,${at(i)},${details},${outputs}`);
    }
    const csv = `${rows.join("\r\n")}\r\n`;

    // Progress of every import in the organization, as the dashboard would follow it.
    type Progress = { upload: { id: string }; phase: string; processedLines: number; totalLines: number | null };
    const after = await liveCursor(url, user.token, user.org.id, "IMPORTS");
    const ws = wsClient(server.wsUrl, { authorization: `Bearer ${user.token}` });
    const progress = collect<{ eventImportProgress: Progress }>(
      ws,
      "subscription($org: ID!, $after: String) { eventImportProgress(organizationId: $org, after: $after) { upload { id } phase processedLines totalLines } }",
      { org: user.org.id, after },
    );

    const r = await importFile(user, "events.csv", csv);
    expect(r.errors).toBeUndefined();
    expect(r.data?.eventImport.upload).toMatchObject({ status: "COMPLETED", importedCount: 10_000, errorCount: 0 });
    const importId = r.data?.eventImport.upload.id;
    await progress.until((items) =>
      items.some((p) => p.eventImportProgress.upload.id === importId && p.eventImportProgress.phase === "COMPLETED"),
    );
    await ws.dispose();
    const phases = progress.items
      .map((p) => p.eventImportProgress)
      .filter((p) => p.upload.id === importId)
      .map(({ upload: _, ...p }) => p);
    expect(phases.at(-1)).toEqual({ phase: "COMPLETED", processedLines: 10_000, totalLines: 10_000 });
    expect(phases.filter((p) => p.phase === "VALIDATING").map((p) => p.processedLines)).toEqual(
      Array.from({ length: 10 }, (_, i) => (i + 1) * 1000),
    );
    const importing = phases.filter((p) => p.phase === "IMPORTING").map((p) => p.processedLines);
    expect(importing).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 1000));
    expect(await eventCount(user)).toBe(10_000);

    // Analysed in full: every event counted once into its extension's pattern.
    await gql(url, "mutation($org: ID) { suggestionsGenerate(organizationId: $org) { id } }", {
      token: user.token,
      variables: { org: user.org.id },
    });
    const patterns = await gql<{ node: { patterns: { edges: { node: { fileExtension: string; count: number } }[] } } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Organization { patterns(first: 10) { edges { node { fileExtension count } } } } } }",
      { token: user.token, variables: { id: user.org.id } },
    );
    const counts = Object.fromEntries(
      patterns.data?.node.patterns.edges.map((e) => [e.node.fileExtension, e.node.count]) ?? [],
    );
    expect(counts).toEqual({ ".py": 2500, ".csv": 2500, ".md": 2500, ".sql": 2500 });

    // The same file again: every id is known, nothing is stored twice.
    const again = await importFile(user, "events.csv", csv);
    expect(again.data?.eventImport).toMatchObject({ duplicates: 10_000, upload: { importedCount: 0 } });
    expect(await eventCount(user)).toBe(10_000);
  });

  it("rejects a file with bad lines whole, reporting each one, and keeps the report", async () => {
    const user = await createUser(url);
    const lines = [
      JSON.stringify({ clientEventId: "ok-1", kind: "FILE_OPENED", filePath: "/a.md", occurredAt: at(1) }),
      "{ not json",
      JSON.stringify({ clientEventId: "bad-2", kind: "FILE_OPENED", occurredAt: at(2) }),
      "",
      JSON.stringify({ clientEventId: "bad-3", kind: "TELEPORTED", filePath: "/b.md" }),
      JSON.stringify({ clientEventId: "ok-1", kind: "FILE_OPENED", filePath: "/c.md" }),
      JSON.stringify({ kind: "FILE_OPENED", filePath: "/d.md", occurredAt: "2099-01-01T00:00:00Z" }),
    ];
    const r = await importFile(user, "events.jsonl", lines.join("\n"));
    expect(errorCode(r)).toBe("IMPORT_INVALID");
    const paths = fieldErrorPaths(r);
    expect(paths).toEqual(["line 2", "line 3.filePath", "line 5.kind", "line 6.clientEventId", "line 7.occurredAt"]);
    expect(await eventCount(user)).toBe(0);

    const upload = await gql<{ node: { status: string; errorCount: number; errors: { path: string }[] } }>(
      url,
      "query($id: ID!) { node(id: $id) { ... on Upload { status errorCount errors { path message } } } }",
      { token: user.token, variables: { id: r.errors?.[0]?.extensions?.uploadId } },
    );
    expect(upload.data?.node).toMatchObject({ status: "FAILED", errorCount: 5 });
    expect(upload.data?.node.errors.map((e) => e.path)).toEqual(paths);
  });

  it("refuses binary, unknown and oversized files, and unknown CSV columns, importing nothing", async () => {
    const user = await createUser(url);
    const binary = await importFile(user, "events.csv", new Uint8Array([0x6b, 0x69, 0x6e, 0x64, 0x0a, 0x00, 0xff]));
    expect(errorCode(binary)).toBe("IMPORT_INVALID");
    expect(binary.errors?.[0]?.message).toMatch(/binary|UTF-8/);

    const unknown = await importFile(user, "events.xlsx", "kind\nFILE_OPENED\n");
    expect(errorCode(unknown)).toBe("UNSUPPORTED_FILE_TYPE");

    const columns = await importFile(user, "events.csv", "kind,colour\nFILE_OPENED,red\n");
    expect(errorCode(columns)).toBe("IMPORT_INVALID");
    expect(columns.errors?.[0]?.message).toContain("colour");

    const big = await importFile(user, "events.jsonl", "x".repeat(MAX_BYTES + 1));
    expect(errorCode(big)).toBe("PAYLOAD_TOO_LARGE");
    expect(big.status).toBe(413);
    expect(await eventCount(user)).toBe(0);
  });

  it("stores a plain file and records it as an event", async () => {
    const user = await createUser(url);
    const content = "a report\n";
    const r = await gqlUpload<{
      fileUpload: {
        id: string;
        status: string;
        sha256: string;
        sizeBytes: number;
        events: { edges: { node: { kind: string; filePath: string; sizeBytes: number } }[] };
      };
    }>(
      url,
      `mutation($input: FileUploadInput!) { fileUpload(input: $input) { id status sha256 sizeBytes events { edges { node { kind filePath sizeBytes } } } } }`,
      { input: { file: null } },
      { path: "input.file", name: "../../etc/report.txt", content },
      { token: user.token },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data?.fileUpload).toMatchObject({
      status: "COMPLETED",
      sizeBytes: content.length,
      sha256: createHash("sha256").update(content).digest("hex"),
    });
    expect(r.data?.fileUpload.events.edges.map((e) => e.node)).toEqual([
      { kind: "FILE_UPLOADED", filePath: "report.txt", sizeBytes: content.length },
    ]);
  });
});
