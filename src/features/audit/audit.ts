// What mutation resolvers tell the audit trail: the row they acted on, by response key.
import type { GraphQLResolveInfo } from "graphql";
import type { AuditNote, Context } from "../../context.ts";

export function noteAudit(ctx: Context, info: GraphQLResolveInfo, note: AuditNote) {
  const key = String(info.path.key);
  ctx.auditNotes.set(key, { ...ctx.auditNotes.get(key), ...note });
}
