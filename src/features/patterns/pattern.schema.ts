import type { Prisma } from "../../generated/prisma/client.ts";
import { builder } from "../../schema/builder.ts";
import { optionalId } from "../../schema/globalId.ts";
import { orderOf, SortDirectionRef } from "../../schema/sort.ts";
import { visibleAnalytics } from "../events/visibility.ts";
import { liveEventType, liveRow, liveSubscription, subjectId } from "../live/live.schema.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";

export const PatternRef = builder.prismaNode("Pattern", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  description: "How one user works with one file extension.",
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    fileExtension: t.exposeString("fileExtension"),
    count: t.exposeInt("count", { description: "Events on files with this extension." }),
    lastUsedAt: t.expose("lastUsedAt", { type: "DateTime" }),
    tools: t.exposeStringList("tools"),
    recentPaths: t.exposeStringList("recentPaths", { description: "The newest few files with this extension." }),
    user: t.relation("user", { type: UserRef, nullable: true }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

export const TemporalPatternRef = builder.prismaNode("TemporalPattern", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  description: 'Event type A followed by B within 300 s, e.g. "file_modified -> script_run".',
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    sequence: t.string({
      select: { fromType: true, toType: true },
      resolve: (p) => `${p.fromType} -> ${p.toType}`,
    }),
    fromType: t.exposeString("fromType"),
    toType: t.exposeString("toType"),
    count: t.exposeInt("count"),
    meanGapSeconds: t.float({
      description: "The mean time between the two events, over every occurrence.",
      select: { gapTotalMs: true, count: true },
      resolve: (p) => Number(p.gapTotalMs) / p.count / 1000,
    }),
    files: t.exposeStringList("files", { description: "A few files seen in this sequence." }),
    lastSeenAt: t.expose("lastSeenAt", {
      type: "DateTime",
      description:
        "When the sequence was last seen. Counts and mean gaps are exact; this and files may still reflect an occurrence that a late, out-of-order event later split.",
    }),
    user: t.relation("user", { type: UserRef, nullable: true }),
  }),
});

const RelationTypeRef = builder.enumType("RelationType", {
  values: {
    ACCESSED_TOGETHER: { description: "One file used right after another, under 30 s later (both ways)." },
    GENERATES: { description: "A script run wrote the target." },
    CONSUMES: { description: "The script (target) read the source." },
  } as const,
});

export const FileRelationshipRef = builder.prismaNode("FileRelationship", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    sourcePath: t.exposeString("sourcePath"),
    targetPath: t.exposeString("targetPath"),
    relationType: t.expose("relationType", { type: RelationTypeRef }),
    weight: t.exposeInt("weight", { description: "How many times it was seen." }),
    firstSeenAt: t.expose("firstSeenAt", { type: "DateTime" }),
    lastSeenAt: t.expose("lastSeenAt", { type: "DateTime" }),
    user: t.relation("user", { type: UserRef, nullable: true }),
  }),
});

const PatternFilter = builder.inputType("PatternFilter", {
  fields: (t) => ({
    extensions: t.stringList({ required: false, description: 'With the dot: [".py", ".csv"].' }),
    userId: t.id({ required: false }),
    usedSince: t.field({ type: "DateTime", required: false }),
    minCount: t.int({ required: false }),
  }),
});
const PatternOrderField = builder.enumType("PatternOrderField", {
  values: ["COUNT", "LAST_USED_AT", "FILE_EXTENSION"] as const,
});
const PatternOrder = builder.inputType("PatternOrder", {
  fields: (t) => ({
    field: t.field({ type: PatternOrderField, required: true }),
    direction: t.field({ type: SortDirectionRef, required: false, defaultValue: "DESC" }),
  }),
});

const userOf = (id: string | number | null | undefined) => optionalId(id, "User") ?? undefined;

builder.prismaObjectField(OrganizationRef, "patterns", (t) =>
  t.relatedConnection("patterns", {
    type: PatternRef,
    cursor: "id",
    description: "Extension patterns, most used first by default.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: {
      filter: t.arg({ type: PatternFilter, required: false }),
      orderBy: t.arg({ type: PatternOrder, required: false }),
    },
    query: ({ filter, orderBy }, ctx) => ({
      where: {
        AND: [
          visibleAnalytics(ctx),
          {
            fileExtension: filter?.extensions ? { in: filter.extensions.map((e) => e.toLowerCase()) } : undefined,
            userId: userOf(filter?.userId),
            lastUsedAt: filter?.usedSince ? { gte: filter.usedSince } : undefined,
            count: filter?.minCount != null ? { gte: filter.minCount } : undefined,
          },
        ],
      } satisfies Prisma.PatternWhereInput,
      orderBy: orderOf(
        orderBy?.field === "LAST_USED_AT"
          ? "lastUsedAt"
          : orderBy?.field === "FILE_EXTENSION"
            ? "fileExtension"
            : "count",
        orderBy?.direction,
      ),
    }),
  }),
);

const TemporalFilter = builder.inputType("TemporalPatternFilter", {
  fields: (t) => ({
    fromType: t.string({ required: false }),
    toType: t.string({ required: false }),
    userId: t.id({ required: false }),
    minCount: t.int({ required: false }),
  }),
});
const TemporalOrderField = builder.enumType("TemporalPatternOrderField", {
  values: ["COUNT", "LAST_SEEN_AT"] as const,
});
const TemporalOrder = builder.inputType("TemporalPatternOrder", {
  fields: (t) => ({
    field: t.field({ type: TemporalOrderField, required: true }),
    direction: t.field({ type: SortDirectionRef, required: false, defaultValue: "DESC" }),
  }),
});

builder.prismaObjectField(OrganizationRef, "temporalPatterns", (t) =>
  t.relatedConnection("temporalPatterns", {
    type: TemporalPatternRef,
    cursor: "id",
    description: "Sequences of event types, most frequent first by default.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: {
      filter: t.arg({ type: TemporalFilter, required: false }),
      orderBy: t.arg({ type: TemporalOrder, required: false }),
    },
    query: ({ filter, orderBy }, ctx) => ({
      where: {
        AND: [
          visibleAnalytics(ctx),
          {
            fromType: filter?.fromType ?? undefined,
            toType: filter?.toType ?? undefined,
            userId: userOf(filter?.userId),
            count: filter?.minCount != null ? { gte: filter.minCount } : undefined,
          },
        ],
      } satisfies Prisma.TemporalPatternWhereInput,
      orderBy: orderOf(orderBy?.field === "LAST_SEEN_AT" ? "lastSeenAt" : "count", orderBy?.direction),
    }),
  }),
);

const RelationDirection = builder.enumType("RelationDirection", {
  values: {
    OUTGOING: { description: "The file is the source." },
    INCOMING: { description: "The file is the target." },
    BOTH: {},
  } as const,
});
const RelationOrderField = builder.enumType("FileRelationshipOrderField", {
  values: ["WEIGHT", "LAST_SEEN_AT"] as const,
});
const RelationOrder = builder.inputType("FileRelationshipOrder", {
  fields: (t) => ({
    field: t.field({ type: RelationOrderField, required: true }),
    direction: t.field({ type: SortDirectionRef, required: false, defaultValue: "DESC" }),
  }),
});

builder.prismaObjectField(OrganizationRef, "fileRelationships", (t) =>
  t.relatedConnection("fileRelationships", {
    type: FileRelationshipRef,
    cursor: "id",
    description: "The files related to one file, strongest first by default.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: {
      path: t.arg.string({ required: true }),
      direction: t.arg({ type: RelationDirection, required: false, defaultValue: "BOTH" }),
      relationTypes: t.arg({ type: [RelationTypeRef], required: false }),
      userId: t.arg.id({ required: false }),
      orderBy: t.arg({ type: RelationOrder, required: false }),
    },
    query: (args, ctx) => ({
      where: {
        AND: [
          visibleAnalytics(ctx),
          args.direction === "OUTGOING"
            ? { sourcePath: args.path }
            : args.direction === "INCOMING"
              ? { targetPath: args.path }
              : { OR: [{ sourcePath: args.path }, { targetPath: args.path }] },
          {
            relationType: args.relationTypes ? { in: args.relationTypes } : undefined,
            userId: userOf(args.userId),
          },
        ],
      } satisfies Prisma.FileRelationshipWhereInput,
      orderBy: orderOf(args.orderBy?.field === "LAST_SEEN_AT" ? "lastSeenAt" : "weight", args.orderBy?.direction),
    }),
  }),
);

const PatternUpdatedRef = liveEventType(
  "PatternUpdated",
  "An extension pattern that analysis created or changed (temporal patterns and relationships follow with it).",
);
builder.objectFields(PatternUpdatedRef, (t) => ({
  patternId: t.id({ nullable: true, resolve: subjectId("Pattern") }),
  pattern: t.prismaField({
    type: PatternRef,
    description: "The pattern as it is now.",
    nullable: true,
    resolve: (query, item, _a, ctx) =>
      liveRow(ctx, item, "Pattern", query, (where) => ctx.prisma.pattern.findFirst({ ...query, where })),
  }),
}));

liveSubscription("patternUpdated", {
  type: PatternUpdatedRef,
  description: "Patterns you may see in an organization, as analysis changes them.",
  feed: "PATTERNS",
  permission: "read",
  perUser: true,
});
