import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { ANALYTICS_PATH } from "../../server/downloads.ts";
import { requireUser } from "../auth/access.ts";
import { signDownloadToken } from "../auth/tokens.ts";
import { EventFilterRef } from "./event.schema.ts";
import { checkExport, type ExportParams } from "./eventExport.ts";

const ExportFormatRef = builder.enumType("ExportFormat", {
  values: {
    CSV: { description: "A header row; lists joined by ';'; details as JSON. Importable as it is." },
    JSON: { description: "An array of objects." },
  } as const,
});
const ExportDatasetRef = builder.enumType("ExportDataset", { values: ["EVENTS", "PATTERNS"] as const });

const DownloadLink = builder.objectRef<{ url: string; expiresAt: Date }>("DownloadLink").implement({
  fields: (t) => ({
    url: t.exposeString("url", {
      description:
        "Path on this API; GET it once, within five minutes. No header needed; credentials sent along must be the same user's.",
    }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
  }),
});

const EventExportInput = builder.inputType("EventExportInput", {
  fields: (t) => ({
    organizationId: t.id({ required: true }),
    dataset: t.field({ type: ExportDatasetRef, required: true }),
    format: t.field({ type: ExportFormatRef, required: true }),
    filter: t.field({ type: EventFilterRef, required: false, description: "For EVENTS." }),
  }),
});

builder.mutationField("eventExport", (t) =>
  t.field({
    type: DownloadLink,
    authScopes: { user: true },
    description: "A link to download events or patterns you may read, as CSV or JSON, streamed.",
    args: { input: t.arg({ type: EventExportInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const viewer = requireUser(ctx);
      const params: ExportParams = {
        organizationId: decodeId(String(input.organizationId), "Organization").id,
        dataset: input.dataset,
        format: input.format,
        filter: input.filter as Record<string, unknown> | null,
      };
      await checkExport(ctx, params);
      const { token, expiresAt } = signDownloadToken(
        { sub: viewer.userId, sid: viewer.sessionId, purpose: "analytics", params: { ...params } },
        ctx.config.jwt,
      );
      return { url: `${ANALYTICS_PATH}?token=${encodeURIComponent(token)}`, expiresAt };
    },
  }),
);
