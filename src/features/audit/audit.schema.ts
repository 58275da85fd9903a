import { isSelf } from "../../context.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { liveEventType, liveRow, liveSubscription } from "../live/live.schema.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";

const AuditOutcomeRef = builder.enumType("AuditOutcome", {
  values: {
    ALLOWED: { description: "Done." },
    DENIED: { description: "Refused: not signed in, not allowed, or not found." },
    FAILED: { description: "Allowed, but it failed (invalid input, a conflict, an error)." },
  } as const,
});

export const AuditEntryRef = builder.prismaObject("AuditLog", {
  name: "AuditEntry",
  select: { id: true },
  authScopes: { authenticated: true },
  description: "One mutation, allowed or not. Append-only.",
  fields: (t) => ({
    id: t.exposeID("id"),
    action: t.exposeString("action", { description: "The mutation's name." }),
    outcome: t.expose("outcome", { type: AuditOutcomeRef }),
    actor: t.relation("actorUser", { type: UserRef, nullable: true }),
    actorApiKeyPrefix: t.string({
      nullable: true,
      select: { actorApiKey: { select: { prefix: true } } },
      resolve: (entry) => entry.actorApiKey?.prefix ?? null,
    }),
    resourceType: t.exposeString("resourceType", { nullable: true }),
    resourceId: t.exposeString("resourceId", { nullable: true }),
    details: t.expose("details", {
      type: "JSONObject",
      description: "The input, with secrets redacted, and the error code if any.",
    }),
    ip: t.exposeString("ip", { nullable: true }),
    userAgent: t.exposeString("userAgent", { nullable: true }),
    requestId: t.exposeString("requestId", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

const AuditFilter = builder.inputType("AuditFilter", {
  fields: (t) => ({
    actorId: t.id({ required: false, description: "A User id." }),
    action: t.string({ required: false }),
    outcome: t.field({ type: AuditOutcomeRef, required: false }),
    resourceType: t.string({ required: false }),
    resourceId: t.string({ required: false }),
    since: t.field({ type: "DateTime", required: false }),
    until: t.field({ type: "DateTime", required: false }),
  }),
});

type Filter = typeof AuditFilter.$inferInput;

function where(filter: Filter | null | undefined): Prisma.AuditLogWhereInput {
  if (!filter) return {};
  return {
    actorUserId: filter.actorId ? decodeId(String(filter.actorId), "User").id : undefined,
    action: filter.action ?? undefined,
    outcome: filter.outcome ?? undefined,
    resourceType: filter.resourceType ?? undefined,
    resourceId: filter.resourceId ?? undefined,
    createdAt:
      filter.since || filter.until ? { gte: filter.since ?? undefined, lt: filter.until ?? undefined } : undefined,
  };
}

const newestFirst = [{ createdAt: "desc" as const }, { id: "desc" as const }];

builder.prismaObjectField(OrganizationRef, "auditLogs", (t) =>
  t.relatedConnection("auditEntries", {
    type: AuditEntryRef,
    cursor: "id",
    description: "Every mutation in this organization, newest first (owners and admins).",
    authScopes: orgPermission("audit:read"),
    args: { filter: t.arg({ type: AuditFilter, required: false }) },
    query: (args) => ({ where: where(args.filter), orderBy: newestFirst }),
  }),
);

builder.prismaObjectField(UserRef, "auditLogs", (t) =>
  t.relatedConnection("auditEntries", {
    type: AuditEntryRef,
    cursor: "id",
    description: "Your own actions, newest first; visible to you only.",
    authScopes: isSelf,
    args: { filter: t.arg({ type: AuditFilter, required: false }) },
    query: (args) => ({ where: where(args.filter), orderBy: newestFirst }),
  }),
);

const AuditEntryAddedRef = liveEventType("AuditEntryAdded", "An entry was added to the organization's audit trail.");
builder.objectFields(AuditEntryAddedRef, (t) => ({
  entryId: t.id({ nullable: true, description: "The entry's id (AuditEntry.id).", resolve: (item) => item.id }),
  entry: t.prismaField({
    type: AuditEntryRef,
    description: "The audit entry.",
    nullable: true,
    resolve: (query, item, _a, ctx) =>
      liveRow(ctx, item, "AuditLog", query, (where) => ctx.prisma.auditLog.findFirst({ ...query, where })),
  }),
}));

liveSubscription("auditEntryAdded", {
  type: AuditEntryAddedRef,
  description: "The organization's audit trail as it grows. For owners and admins.",
  feed: "AUDIT",
  permission: "audit:read",
});
