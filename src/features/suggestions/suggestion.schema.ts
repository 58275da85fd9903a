import type { Prisma } from "../../generated/prisma/client.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId, optionalId } from "../../schema/globalId.ts";
import { orderOf, SortDirectionRef } from "../../schema/sort.ts";
import { noteAudit } from "../audit/audit.ts";
import { visibleAnalytics } from "../events/visibility.ts";
import { liveEventType, liveRow, liveSubscription, subjectId } from "../live/live.schema.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";
import { WorkflowRef } from "../workflows/workflow.schema.ts";
import {
  applySuggestion,
  bookmarkSuggestion,
  dismissSuggestion,
  generateNow,
  viewSuggestion,
} from "./suggestion.service.ts";

const SuggestionStateRef = builder.enumType("SuggestionState", {
  values: {
    OPEN: {},
    APPLIED: { description: "Turned into a workflow." },
    DISMISSED: { description: "Not offered again." },
  } as const,
});

export const SuggestionRef = builder.prismaNode("Suggestion", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  description: "An automation worth building, from the user's own patterns, with sample code.",
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    title: t.exposeString("title"),
    trigger: t.exposeString("trigger", { description: "What in the patterns led to it." }),
    triggerKey: t.exposeString("triggerKey", { description: "Stable: one open suggestion per trigger." }),
    toolsInvolved: t.exposeStringList("toolsInvolved"),
    suggestedIntegration: t.exposeString("suggestedIntegration", {
      description: "The connector: github, slack, google_drive, dropbox, s3, smtp or http.",
    }),
    sampleCode: t.exposeString("sampleCode"),
    reasoning: t.exposeString("reasoning"),
    filePaths: t.exposeStringList("filePaths", { description: "Up to 3 of the user's real files." }),
    confidence: t.exposeFloat("confidence", { description: "0 to 1, from frequency and recency." }),
    state: t.expose("state", { type: SuggestionStateRef }),
    bookmarked: t.boolean({ select: { bookmarkedAt: true }, resolve: (s) => s.bookmarkedAt !== null }),
    viewedAt: t.expose("viewedAt", { type: "DateTime", nullable: true }),
    dismissedAt: t.expose("dismissedAt", { type: "DateTime", nullable: true }),
    appliedAt: t.expose("appliedAt", { type: "DateTime", nullable: true }),
    workflows: t.relation("workflows", { type: WorkflowRef, description: "Workflows made from it." }),
    user: t.relation("user", { type: UserRef, nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

const SuggestionFilter = builder.inputType("SuggestionFilter", {
  fields: (t) => ({
    minConfidence: t.float({ required: false }),
    states: t.field({ type: [SuggestionStateRef], required: false, description: "Defaults to [OPEN]." }),
    bookmarked: t.boolean({ required: false }),
    userId: t.id({ required: false }),
  }),
});
const SuggestionOrderField = builder.enumType("SuggestionOrderField", {
  values: ["CONFIDENCE", "CREATED_AT"] as const,
});
const SuggestionOrder = builder.inputType("SuggestionOrder", {
  fields: (t) => ({
    field: t.field({ type: SuggestionOrderField, required: true }),
    direction: t.field({ type: SortDirectionRef, required: false, defaultValue: "DESC" }),
  }),
});

type Filter = typeof SuggestionFilter.$inferInput | null | undefined;

function suggestionWhere(filter: Filter): Prisma.SuggestionWhereInput {
  return {
    state: { in: filter?.states ?? ["OPEN"] },
    confidence: filter?.minConfidence != null ? { gte: filter.minConfidence } : undefined,
    bookmarkedAt: filter?.bookmarked == null ? undefined : filter.bookmarked ? { not: null } : null,
    userId: filter?.userId ? decodeId(String(filter.userId), "User").id : undefined,
  };
}

builder.prismaObjectField(OrganizationRef, "suggestions", (t) =>
  t.relatedConnection("suggestions", {
    type: SuggestionRef,
    cursor: "id",
    description: "Suggestions, most confident first by default.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: {
      filter: t.arg({ type: SuggestionFilter, required: false }),
      orderBy: t.arg({ type: SuggestionOrder, required: false }),
    },
    query: ({ filter, orderBy }, ctx) => ({
      where: { AND: [visibleAnalytics(ctx), suggestionWhere(filter)] },
      orderBy: orderOf(orderBy?.field === "CREATED_AT" ? "createdAt" : "confidence", orderBy?.direction),
    }),
  }),
);

const SuggestionApplyPayload = builder
  .objectRef<{ suggestionId: string; workflowId: string }>("SuggestionApplyPayload")
  .implement({
    fields: (t) => ({
      suggestion: t.prismaField({
        type: SuggestionRef,
        resolve: (query, p, _a, ctx) =>
          ctx.prisma.suggestion.findUniqueOrThrow({ ...query, where: { id: p.suggestionId } }),
      }),
      workflow: t.prismaField({
        type: WorkflowRef,
        description: "A draft: connect an integration to its step, then activate it.",
        resolve: (query, p, _a, ctx) =>
          ctx.prisma.workflow.findUniqueOrThrow({ ...query, where: { id: p.workflowId } }),
      }),
    }),
  });

const suggestionId = (id: string | number) => decodeId(String(id), "Suggestion").id;

builder.mutationFields((t) => ({
  suggestionsGenerate: t.prismaField({
    type: [SuggestionRef],
    authScopes: { authenticated: true },
    description:
      "Analyses your waiting events now and regenerates your suggestions; returns your open ones, most confident first.",
    args: { organizationId: t.arg.id({ required: false, description: "Defaults to the active organization." }) },
    resolve: async (query, _root, args, ctx, info) => {
      const { organizationId, userId } = await generateNow({
        ctx,
        organizationId: optionalId(args.organizationId, "Organization"),
      });
      noteAudit(ctx, info, { organizationId });
      if (!userId) return [];
      return ctx.prisma.suggestion.findMany({
        ...query,
        where: { organizationId, userId, state: "OPEN" },
        orderBy: [{ confidence: "desc" }, { id: "asc" }],
      });
    },
  }),
  suggestionApply: t.field({
    type: SuggestionApplyPayload,
    authScopes: { authenticated: true },
    description: "Turns the suggestion into a draft workflow (version 1). Applying twice returns the same workflow.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const result = await applySuggestion({ ctx, id: suggestionId(id) });
      noteAudit(ctx, info, { resourceType: "Workflow", resourceId: result.workflowId });
      return result;
    },
  }),
  suggestionDismiss: t.prismaField({
    type: SuggestionRef,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx) => {
      const s = await dismissSuggestion({ ctx, id: suggestionId(id) });
      return ctx.prisma.suggestion.findUniqueOrThrow({ ...query, where: { id: s.id } });
    },
  }),
  suggestionBookmark: t.prismaField({
    type: SuggestionRef,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }), bookmarked: t.arg.boolean({ required: false, defaultValue: true }) },
    resolve: async (query, _root, { id, bookmarked }, ctx) => {
      const s = await bookmarkSuggestion({ ctx, id: suggestionId(id), bookmarked: bookmarked ?? true });
      return ctx.prisma.suggestion.findUniqueOrThrow({ ...query, where: { id: s.id } });
    },
  }),
  suggestionMarkViewed: t.prismaField({
    type: SuggestionRef,
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx) => {
      const s = await viewSuggestion({ ctx, id: suggestionId(id) });
      return ctx.prisma.suggestion.findUniqueOrThrow({ ...query, where: { id: s.id } });
    },
  }),
}));

const SuggestionCreatedRef = liveEventType("SuggestionCreated", "A suggestion the engine has just made.");
builder.objectFields(SuggestionCreatedRef, (t) => ({
  suggestionId: t.id({ nullable: true, resolve: subjectId("Suggestion") }),
  suggestion: t.prismaField({
    type: SuggestionRef,
    description: "The suggestion as it is now.",
    nullable: true,
    resolve: (query, item, _a, ctx) =>
      liveRow(ctx, item, "Suggestion", query, (where) => ctx.prisma.suggestion.findFirst({ ...query, where })),
  }),
}));

liveSubscription("suggestionCreated", {
  type: SuggestionCreatedRef,
  description: "New suggestions in an organization that you may see, as the engine makes them.",
  feed: "SUGGESTIONS",
  permission: "read",
  perUser: true,
});
