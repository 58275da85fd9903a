// Events as the local agent sends them, and reads of what the engine made of them.
import { randomUUID } from "node:crypto";
import { gql } from "./client.ts";
import type { TestUser } from "./factories.ts";

export type EventInput = Record<string, unknown> & { kind: string };

/**
 * Edit a script, run it (reading config.json, writing out.csv), the output appears, a report
 * is opened; 15 minutes later, edit and run again. Ids are unique per call.
 */
export function scenario(label: string, base = new Date(Date.now() - 3_600_000)): EventInput[] {
  const at = (seconds: number) => new Date(base.getTime() + seconds * 1000).toISOString();
  const run = randomUUID().slice(0, 8);
  const id = (n: number) => `${label}-${run}-${n}`;
  return [
    { clientEventId: id(1), kind: "FILE_MODIFIED", filePath: "/w/scrape.py", tool: "VSCode", occurredAt: at(0) },
    {
      clientEventId: id(2),
      kind: "SCRIPT_RUN",
      filePath: "/w/scrape.py",
      inputs: ["/w/config.json"],
      outputs: ["/w/out.csv"],
      occurredAt: at(10),
    },
    { clientEventId: id(3), kind: "FILE_CREATED", filePath: "/w/out.csv", tool: "python", occurredAt: at(20) },
    { clientEventId: id(4), kind: "FILE_OPENED", filePath: "/w/report.docx", tool: "word", occurredAt: at(100) },
    { clientEventId: id(5), kind: "FILE_MODIFIED", filePath: "/w/scrape.py", tool: "vscode", occurredAt: at(1000) },
    {
      clientEventId: id(6),
      kind: "SCRIPT_RUN",
      filePath: "/w/scrape.py",
      outputs: ["/w/out.csv"],
      occurredAt: at(1010),
    },
  ];
}

export async function recordBatch(
  url: string,
  user: Pick<TestUser, "token">,
  events: EventInput[],
  organizationId?: string,
) {
  const r = await gql<{ eventRecordBatch: { received: number; stored: number; duplicates: number } }>(
    url,
    "mutation($input: EventRecordBatchInput!) { eventRecordBatch(input: $input) { received stored duplicates } }",
    { token: user.token, variables: { input: { events, organizationId } } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.eventRecordBatch;
}

export interface Suggestion {
  id: string;
  triggerKey: string;
  title: string;
  suggestedIntegration: string;
  sampleCode: string;
  reasoning: string;
  filePaths: string[];
  confidence: number;
  state: string;
}

/** Analyses what waits and regenerates suggestions, on demand; returns the open ones. */
export async function suggestionsGenerate(url: string, user: Pick<TestUser, "token">, organizationId?: string) {
  const r = await gql<{ suggestionsGenerate: Suggestion[] }>(
    url,
    "mutation($org: ID) { suggestionsGenerate(organizationId: $org) { id triggerKey title suggestedIntegration sampleCode reasoning filePaths confidence state } }",
    { token: user.token, variables: { org: organizationId } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.suggestionsGenerate;
}

const SNAPSHOT = `query($id: ID!, $path: String!, $after: String) { node(id: $id) { ... on Organization {
  patterns(first: 50) { edges { node { fileExtension count tools } } }
  temporalPatterns(first: 50) { edges { node { sequence count meanGapSeconds } } }
  fileRelationships(first: 100, after: $after, path: $path) {
    pageInfo { hasNextPage endCursor } edges { node { sourcePath targetPath relationType weight } }
  }
} } }`;

interface Snapshot {
  patterns: { fileExtension: string; count: number; tools: string[] }[];
  sequences: { sequence: string; count: number; meanGapSeconds: number }[];
  relationsOfScript: { sourcePath: string; targetPath: string; relationType: string; weight: number }[];
}

/** Patterns, sequences and the relationships of /w/scrape.py, in an order independent of row ids. */
export async function snapshot(url: string, user: TestUser, path = "/w/scrape.py"): Promise<Snapshot> {
  type Edges<T> = { edges: { node: T }[]; pageInfo?: { hasNextPage: boolean; endCursor: string } };
  type Result = {
    node: {
      patterns: Edges<Snapshot["patterns"][number]>;
      temporalPatterns: Edges<Snapshot["sequences"][number]>;
      fileRelationships: Edges<Snapshot["relationsOfScript"][number]>;
    };
  };
  const r = await gql<Result>(url, SNAPSHOT, { token: user.token, variables: { id: user.org.id, path } });
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  const nodes = <T>(c: Edges<T>) => c.edges.map((e) => e.node);
  // Relationships can be many: every page of them.
  const relations = nodes(r.data.node.fileRelationships);
  for (let page = r.data.node.fileRelationships.pageInfo; page?.hasNextPage; ) {
    const next = await gql<Result>(url, SNAPSHOT, {
      token: user.token,
      variables: { id: user.org.id, path, after: page.endCursor },
    });
    if (!next.data) throw new Error(JSON.stringify(next.errors));
    relations.push(...nodes(next.data.node.fileRelationships));
    page = next.data.node.fileRelationships.pageInfo;
  }
  const text = (...parts: unknown[]) => parts.join("\u0000");
  return {
    patterns: nodes(r.data.node.patterns).sort(
      (a, b) => b.count - a.count || a.fileExtension.localeCompare(b.fileExtension),
    ),
    sequences: nodes(r.data.node.temporalPatterns).sort(
      (a, b) => b.count - a.count || a.sequence.localeCompare(b.sequence),
    ),
    relationsOfScript: relations.sort((a, b) =>
      text(a.sourcePath, a.targetPath, a.relationType) < text(b.sourcePath, b.targetPath, b.relationType) ? -1 : 1,
    ),
  };
}
