// Events through to suggestions: real file paths and sample code, one open suggestion per
// trigger, regeneration in the background and on demand, and apply / dismiss / bookmark /
// mark viewed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorCode } from "./helpers/api.ts";
import { collect, gql, wsClient } from "./helpers/client.ts";
import { recordBatch, type Suggestion, scenario, suggestionsGenerate } from "./helpers/events.ts";
import { createUser, type TestUser } from "./helpers/factories.ts";
import { liveCursor } from "./helpers/live.ts";
import { startServer, type TestServer } from "./helpers/server.ts";

let server: TestServer;
let url: string;
beforeAll(async () => {
  server = await startServer({ SUGGESTION_DEBOUNCE_MS: "50" });
  url = server.graphqlUrl;
});
afterAll(() => server.stop());

const PATHS = ["/w/scrape.py", "/w/out.csv", "/w/report.docx"];

async function list(user: TestUser, filter: Record<string, unknown> = {}) {
  const r = await gql<{ node: { suggestions: { edges: { node: Suggestion & { bookmarked: boolean } }[] } } }>(
    url,
    `query($id: ID!, $filter: SuggestionFilter) { node(id: $id) { ... on Organization {
      suggestions(first: 50, filter: $filter) { edges { node { id triggerKey state confidence bookmarked } } } } } }`,
    { token: user.token, variables: { id: user.org.id, filter } },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.node.suggestions.edges.map((e) => e.node);
}

describe("suggestions", () => {
  it("suggests integrations from the user's own patterns, with real paths and sample code", async () => {
    const alice = await createUser(url);
    await gql(url, "mutation { viewerConfigUpdate(input: { maxSuggestions: 20 }) { maxSuggestions } }", {
      token: alice.token,
    });
    await recordBatch(url, alice, scenario("s"));
    const suggestions = await suggestionsGenerate(url, alice);
    expect(suggestions.length).toBeGreaterThan(5);
    expect(suggestions.length).toBeLessThanOrEqual(20);
    expect(new Set(suggestions.map((s) => s.triggerKey)).size).toBe(suggestions.length);
    const confidences = suggestions.map((s) => s.confidence);
    expect(confidences).toEqual([...confidences].sort((a, b) => b - a));
    for (const s of suggestions) {
      expect(s.confidence).toBeGreaterThan(0);
      expect(s.confidence).toBeLessThanOrEqual(0.95);
      expect(["github", "slack", "google_drive", "dropbox", "s3", "smtp", "http"]).toContain(s.suggestedIntegration);
      expect(s.filePaths.length).toBeGreaterThan(0);
      for (const path of s.filePaths) expect(PATHS).toContain(path);
      expect(s.sampleCode).toContain(s.filePaths[0]);
      expect(s.sampleCode).toMatch(/process\.env/);
    }
    const python = suggestions.find((s) => s.triggerKey.startsWith("ext:.py:"));
    expect(python?.reasoning).toMatch(/\.py files 4 times/);
    expect(suggestions.some((s) => s.triggerKey.startsWith("chain:"))).toBe(true);

    // On demand again: the same suggestions, refreshed, never a second open one per trigger.
    const again = await suggestionsGenerate(url, alice);
    expect(again.map((s) => s.id).sort()).toEqual(suggestions.map((s) => s.id).sort());
    expect((await list(alice)).length).toBe(suggestions.length);
  });

  it("applies a suggestion as a draft workflow, once; dismissed ideas are not offered again", async () => {
    const alice = await createUser(url);
    await recordBatch(url, alice, scenario("apply"));
    const [first, second] = await suggestionsGenerate(url, alice);
    if (!first || !second) throw new Error("expected two suggestions");

    const APPLY = `mutation($id: ID!) { suggestionApply(id: $id) {
      suggestion { id state appliedAt workflows { id } }
      workflow { id name status currentVersion definition }
    } }`;
    const applied = await gql<{
      suggestionApply: {
        suggestion: { state: string; workflows: { id: string }[] };
        workflow: {
          id: string;
          status: string;
          currentVersion: number;
          definition: { steps: { connector: string; integrationId: string | null; action: string }[] };
        };
      };
    }>(url, APPLY, { token: alice.token, variables: { id: first.id } });
    expect(applied.errors).toBeUndefined();
    const { suggestion, workflow } = applied.data?.suggestionApply ?? {};
    expect(suggestion?.state).toBe("APPLIED");
    expect(workflow).toMatchObject({ status: "DRAFT", currentVersion: 1 });
    expect(workflow?.definition.steps[0]).toMatchObject({
      type: "connector",
      connector: first.suggestedIntegration,
      integrationId: null,
    });
    expect(suggestion?.workflows).toEqual([{ id: workflow?.id }]);
    const twice = await gql<{ suggestionApply: { workflow: { id: string } } }>(url, APPLY, {
      token: alice.token,
      variables: { id: first.id },
    });
    expect(twice.data?.suggestionApply.workflow.id).toBe(workflow?.id);

    const dismissed = await gql<{ suggestionDismiss: { state: string; dismissedAt: string } }>(
      url,
      "mutation($id: ID!) { suggestionDismiss(id: $id) { state dismissedAt } }",
      { token: alice.token, variables: { id: second.id } },
    );
    expect(dismissed.data?.suggestionDismiss.state).toBe("DISMISSED");
    const regenerated = await suggestionsGenerate(url, alice);
    const keys = regenerated.map((s) => s.triggerKey);
    expect(keys).not.toContain(first.triggerKey);
    expect(keys).not.toContain(second.triggerKey);
    expect((await list(alice, { states: ["DISMISSED"] })).map((s) => s.id)).toEqual([second.id]);
    // An applied suggestion is a workflow now: dismissing it is refused, and applying stays idempotent.
    const late = await gql(url, "mutation($id: ID!) { suggestionDismiss(id: $id) { state } }", {
      token: alice.token,
      variables: { id: first.id },
    });
    expect(errorCode(late)).toBe("SUGGESTION_APPLIED");
    expect((await list(alice, { states: ["APPLIED"] })).map((s) => s.id)).toEqual([first.id]);
  });

  it("bookmarks, marks viewed, and filters by confidence and bookmark", async () => {
    const alice = await createUser(url);
    await recordBatch(url, alice, scenario("mark"));
    const [top] = await suggestionsGenerate(url, alice);
    if (!top) throw new Error("expected a suggestion");
    const marked = await gql<{
      suggestionBookmark: { bookmarked: boolean };
      suggestionMarkViewed: { viewedAt: string };
    }>(
      url,
      "mutation($id: ID!) { suggestionBookmark(id: $id) { bookmarked } suggestionMarkViewed(id: $id) { viewedAt } }",
      { token: alice.token, variables: { id: top.id } },
    );
    expect(marked.data?.suggestionBookmark.bookmarked).toBe(true);
    expect(Date.parse(marked.data?.suggestionMarkViewed.viewedAt ?? "")).not.toBeNaN();
    expect((await list(alice, { bookmarked: true })).map((s) => s.id)).toEqual([top.id]);
    const all = await list(alice);
    const threshold = top.confidence;
    expect((await list(alice, { minConfidence: threshold })).length).toBe(
      all.filter((s) => s.confidence >= threshold).length,
    );
    const unmarked = await gql<{ suggestionBookmark: { bookmarked: boolean } }>(
      url,
      "mutation($id: ID!) { suggestionBookmark(id: $id, bookmarked: false) { bookmarked } }",
      { token: alice.token, variables: { id: top.id } },
    );
    expect(unmarked.data?.suggestionBookmark.bookmarked).toBe(false);

    const mallory = await createUser(url);
    for (const m of [
      "suggestionApply(id: $id) { workflow { id } }",
      "suggestionDismiss(id: $id) { id }",
      "suggestionBookmark(id: $id) { id }",
    ]) {
      const r = await gql(url, `mutation($id: ID!) { ${m} }`, { token: mallory.token, variables: { id: top.id } });
      expect(errorCode(r), m).toBe("NOT_FOUND");
    }
  });

  it("regenerates in the background after new events, and publishes new suggestions", async () => {
    const alice = await createUser(url);
    const after = await liveCursor(url, alice.token, alice.org.id, "SUGGESTIONS");
    const ws = wsClient(server.wsUrl, { authorization: `Bearer ${alice.token}` });
    const created = collect<{ suggestionCreated: { suggestion: { triggerKey: string } } }>(
      ws,
      "subscription($org: ID!, $after: String) { suggestionCreated(organizationId: $org, after: $after) { suggestion { triggerKey } } }",
      { org: alice.org.id, after },
    );

    // Then SQL work that nobody asks about: the pipeline analyses it, and suggestions follow.
    const now = Date.now();
    await recordBatch(
      url,
      alice,
      Array.from({ length: 12 }, (_, i) => ({
        kind: "FILE_MODIFIED",
        filePath: `/w/queries/report-${i % 3}.sql`,
        tool: "psql",
        occurredAt: new Date(now - (12 - i) * 60_000).toISOString(),
      })),
    );
    await created.until((items) => items.some((i) => i.suggestionCreated.suggestion.triggerKey.includes(".sql")));
    await ws.dispose();
    const open = await list(alice);
    expect(open.some((s) => s.triggerKey.includes(".sql"))).toBe(true);
  });
});
