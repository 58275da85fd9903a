// The draft workflow an applied suggestion becomes: one step calling the suggested
// connector, with an input its action accepts. It has no integration yet: the user connects
// one (workflowUpdate) and activates the workflow.
import type { Suggestion } from "../../generated/prisma/client.ts";
import type { ConnectorKey } from "./rules.ts";

type Draft = Pick<Suggestion, "title" | "reasoning" | "suggestedIntegration" | "filePaths">;

const baseName = (path: string | undefined) => path?.split(/[\\/]/).pop() || "floyo-report.txt";

const STEPS: Record<ConnectorKey, (s: Draft) => { action: string; input: Record<string, unknown> }> = {
  github: (s) => ({
    action: "putFile",
    input: { path: `floyo/${baseName(s.filePaths[0])}`, content: s.reasoning, message: s.title },
  }),
  slack: (s) => ({ action: "postMessage", input: { text: `${s.title}: ${s.reasoning}` } }),
  google_drive: (s) => ({
    action: "uploadFile",
    input: { name: baseName(s.filePaths[0]), content: s.reasoning, mimeType: "text/plain" },
  }),
  dropbox: (s) => ({ action: "uploadFile", input: { name: baseName(s.filePaths[0]), content: s.reasoning } }),
  s3: (s) => ({ action: "putObject", input: { key: `floyo/${baseName(s.filePaths[0])}`, body: s.reasoning } }),
  smtp: (s) => ({ action: "sendMail", input: { to: [], subject: s.title, text: s.reasoning } }),
  http: (s) => ({
    action: "request",
    input: { method: "POST", path: "/", body: { title: s.title, files: s.filePaths } },
  }),
};

export function draftWorkflowFor(suggestion: Draft) {
  // A stored string, looked up among STEPS' own keys only ("constructor" is not a connector).
  const connector = (
    Object.hasOwn(STEPS, suggestion.suggestedIntegration) ? suggestion.suggestedIntegration : "http"
  ) as ConnectorKey;
  const step = STEPS[connector](suggestion);
  return {
    name: suggestion.title.slice(0, 200),
    description: suggestion.reasoning,
    definition: {
      trigger: { type: "manual" },
      steps: [{ id: "step1", type: "connector", connector, integrationId: null, ...step }],
    },
  };
}
