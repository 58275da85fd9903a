import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { type CleanupResult, cleanupNow } from "./retention.service.ts";

const CleanupResultRef = builder.objectRef<CleanupResult>("RetentionCleanupResult").implement({
  fields: (t) => ({
    cutoff: t.expose("cutoff", { type: "DateTime", description: "Everything before this went." }),
    events: t.exposeInt("events", { description: "Events deleted." }),
    patterns: t.exposeInt("patterns"),
    sequences: t.exposeInt("sequences"),
    relationships: t.exposeInt("relationships"),
  }),
});

builder.mutationField("eventRetentionCleanup", (t) =>
  t.field({
    type: CleanupResultRef,
    authScopes: { authenticated: true },
    description:
      "Deletes what is older than the organization's retention now (owners and admins); the scheduler also runs it.",
    args: { organizationId: t.arg.id({ required: true }) },
    resolve: async (_root, args, ctx, info) => {
      const result = await cleanupNow({
        ctx,
        organizationId: decodeId(String(args.organizationId), "Organization").id,
      });
      noteAudit(ctx, info, { details: { deleted: { events: result.events, patterns: result.patterns } } });
      return result;
    },
  }),
);
