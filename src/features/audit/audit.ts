// What mutation resolvers tell the audit trail: the row they acted on, by response key.
import type { GraphQLResolveInfo } from "graphql";
import type { AuditNote, Context } from "../../context.ts";
import type { Notify, Tx } from "../../infra/outbox.ts";
import { entryRow } from "./entry.ts";

export function noteAudit(ctx: Context, info: GraphQLResolveInfo, note: AuditNote) {
  const key = String(info.path.key);
  ctx.auditNotes.set(key, { ...ctx.auditNotes.get(key), ...note });
}

/**
 * The mutation's ALLOWED entry, written inside the transaction of its change (with its AUDIT
 * notice) instead of after it in a second one: for hot paths (ingestion), one commit holds
 * both, and a change is never stored without its entry. The plugin then writes none for this
 * field. Its details are the note's only: use it for fields whose input is not recorded
 * (`auditInput: false`).
 */
export async function auditInTransaction(
  tx: Tx,
  notify: Notify,
  ctx: Context,
  info: GraphQLResolveInfo,
  note: AuditNote & { organizationId: string },
) {
  const [entry] = await tx.auditLog.createManyAndReturn({
    data: [
      entryRow(ctx, {
        action: info.fieldName,
        outcome: "ALLOWED",
        organizationId: note.organizationId,
        resourceType: note.resourceType ?? null,
        resourceId: note.resourceId ?? null,
        actorUserId: note.actorUserId,
        details: note.details ?? {},
      }),
    ],
    select: { id: true },
  });
  if (entry) notify("AUDIT", note.organizationId, { id: entry.id, kind: "CREATED" });
  noteAudit(ctx, info, { ...note, written: true });
}
