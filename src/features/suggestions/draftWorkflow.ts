// The draft workflow an applied suggestion becomes: one step calling the suggested
// connector on the suggestion's files. It has no integration yet; the user connects one
// and activates the workflow.
import type { Suggestion } from "../../generated/prisma/client.ts";
import type { ConnectorKey } from "./rules.ts";

const ACTIONS: Record<ConnectorKey, string> = {
  github: "putFile",
  slack: "postMessage",
  google_drive: "uploadFile",
  dropbox: "uploadFile",
  s3: "putObject",
  smtp: "sendMail",
  http: "request",
};

export function draftWorkflowFor(
  suggestion: Pick<Suggestion, "title" | "reasoning" | "suggestedIntegration" | "filePaths">,
) {
  const connector = suggestion.suggestedIntegration as ConnectorKey;
  return {
    name: suggestion.title.slice(0, 200),
    description: suggestion.reasoning,
    definition: {
      trigger: { type: "manual" },
      steps: [
        {
          id: "step1",
          type: "connector",
          connector,
          action: ACTIONS[connector] ?? "request",
          integrationId: null,
          input: { files: suggestion.filePaths },
        },
      ],
    },
  };
}
