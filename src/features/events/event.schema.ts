import { builder } from "../../schema/builder.ts";
import { encodeId, optionalId } from "../../schema/globalId.ts";
import { orderOf, SortDirectionRef } from "../../schema/sort.ts";
import { auditInTransaction, noteAudit } from "../audit/audit.ts";
import { liveEventType, liveRow, liveSubscription } from "../live/live.schema.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";
import { ingestTarget, recordBatch, recordEvent, validateEvent } from "./event.service.ts";
import { eventWhere } from "./eventFilter.ts";
import { EVENT_KINDS, kindOf, MAX_BATCH } from "./eventInput.ts";
import { visibleAnalytics } from "./visibility.ts";

export const EventKindRef = builder.enumType("EventKind", {
  values: Object.fromEntries(EVENT_KINDS.map((k) => [k, {}])) as Record<(typeof EVENT_KINDS)[number], object>,
});

export const EventRef = builder.prismaNode("Event", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  description: "Something the user did with a file or a tool. Visible to that user and the organization's admins.",
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    kind: t.field({ type: EventKindRef, select: { eventType: true }, resolve: (e) => kindOf(e.eventType) }),
    customType: t.string({
      nullable: true,
      select: { eventType: true },
      resolve: (e) => (e.eventType.startsWith("custom:") ? e.eventType.slice(7) : null),
    }),
    type: t.exposeString("eventType", {
      description: 'The name temporal patterns use: "file_created", or "custom:<customType>".',
    }),
    clientEventId: t.exposeString("clientEventId", { nullable: true }),
    filePath: t.exposeString("filePath", { nullable: true }),
    fileExtension: t.exposeString("fileExtension", { nullable: true }),
    previousPath: t.exposeString("previousPath", { nullable: true }),
    tool: t.exposeString("tool", { nullable: true }),
    operation: t.exposeString("operation", { nullable: true }),
    sizeBytes: t.expose("sizeBytes", { type: "SafeInt", nullable: true }),
    interpreter: t.exposeString("interpreter", { nullable: true }),
    inputs: t.exposeStringList("inputPaths"),
    outputs: t.exposeStringList("outputPaths"),
    details: t.expose("details", { type: "JSONObject" }),
    occurredAt: t.expose("occurredAt", { type: "DateTime" }),
    receivedAt: t.expose("receivedAt", { type: "DateTime" }),
    analyzed: t.boolean({
      description: "Whether the pattern engine has counted it yet.",
      select: { analyzedAt: true },
      resolve: (e) => e.analyzedAt !== null,
    }),
    user: t.relation("user", { type: UserRef, nullable: true }),
    organization: t.relation("organization", { type: OrganizationRef }),
  }),
});

export const EventInputRef = builder.inputType("EventInput", {
  description: "One event, as the local agent sends it.",
  fields: (t) => ({
    clientEventId: t.string({
      required: false,
      description: "Your id for the event: sending it again (a retried request) stores nothing twice.",
    }),
    kind: t.field({ type: EventKindRef, required: true }),
    customType: t.string({ required: false, description: "For CUSTOM events: a lowercase name." }),
    filePath: t.string({ required: false, description: "Required for FILE_* and SCRIPT_RUN events." }),
    previousPath: t.string({ required: false, description: "For FILE_MOVED: where the file was." }),
    tool: t.string({ required: false, description: "Required for TOOL_USED." }),
    operation: t.string({ required: false }),
    sizeBytes: t.field({ type: "SafeInt", required: false }),
    interpreter: t.string({
      required: false,
      description: "For SCRIPT_RUN; inferred from the extension (.py python, .sh bash, .js node…) when omitted.",
    }),
    inputs: t.stringList({ required: false, description: "For SCRIPT_RUN: files the script read." }),
    outputs: t.stringList({ required: false, description: "For SCRIPT_RUN: files the script wrote." }),
    details: t.field({ type: "JSONObject", required: false, description: "Anything else, up to 8 KiB." }),
    occurredAt: t.field({ type: "DateTime", required: false, description: "Defaults to now." }),
  }),
});

const EventRecordInput = builder.inputType("EventRecordInput", {
  fields: (t) => ({
    organizationId: t.id({ required: false, description: "Defaults to the active organization." }),
    event: t.field({ type: EventInputRef, required: true }),
  }),
});

const EventBatchInput = builder.inputType("EventRecordBatchInput", {
  fields: (t) => ({
    organizationId: t.id({ required: false, description: "Defaults to the active organization." }),
    events: t.field({ type: [EventInputRef], required: true, description: `1 to ${MAX_BATCH} events.` }),
  }),
});

const EventBatchResult = builder
  .objectRef<{ received: number; stored: number; duplicates: number }>("EventRecordBatchResult")
  .implement({
    description: "All events are validated before any is stored; all are stored or none.",
    fields: (t) => ({
      received: t.exposeInt("received"),
      stored: t.exposeInt("stored"),
      duplicates: t.exposeInt("duplicates", { description: "Events whose clientEventId was stored before: skipped." }),
    }),
  });

export const EventFilterRef = builder.inputType("EventFilter", {
  fields: (t) => ({
    kinds: t.field({ type: [EventKindRef], required: false }),
    customType: t.string({ required: false }),
    tool: t.string({ required: false }),
    extension: t.string({ required: false, description: 'With the dot: ".py".' }),
    userId: t.id({ required: false }),
    since: t.field({ type: "DateTime", required: false, description: "occurredAt at or after." }),
    until: t.field({ type: "DateTime", required: false, description: "occurredAt before." }),
    search: t.string({ required: false, description: "Text in the path or the operation (any case)." }),
  }),
});

const EventOrderField = builder.enumType("EventOrderField", { values: ["OCCURRED_AT", "RECEIVED_AT"] as const });
const EventOrder = builder.inputType("EventOrder", {
  fields: (t) => ({
    field: t.field({ type: EventOrderField, required: true }),
    direction: t.field({ type: SortDirectionRef, required: false, defaultValue: "DESC" }),
  }),
});

builder.prismaObjectField(OrganizationRef, "events", (t) =>
  t.relatedConnection("events", {
    type: EventRef,
    cursor: "id",
    description: "Events, newest first by default: yours, or everyone's for owners and admins.",
    authScopes: orgPermission("read"),
    totalCount: true,
    args: {
      filter: t.arg({ type: EventFilterRef, required: false }),
      orderBy: t.arg({ type: EventOrder, required: false }),
    },
    query: (args, ctx) => ({
      where: { AND: [visibleAnalytics(ctx), eventWhere(args.filter)] },
      orderBy: orderOf(args.orderBy?.field === "RECEIVED_AT" ? "receivedAt" : "occurredAt", args.orderBy?.direction),
    }),
  }),
);

builder.mutationFields((t) => ({
  eventRecord: t.prismaField({
    type: EventRef,
    authScopes: { authenticated: true },
    description: "Records one event. Returns at once; analysis follows in the background.",
    args: { input: t.arg({ type: EventRecordInput, required: true }) },
    resolve: async (query, _root, { input }, ctx, info) => {
      const target = await ingestTarget(ctx, optionalId(input.organizationId, "Organization"));
      const event = await recordEvent({ ctx, target, draft: validateEvent(target, input.event) });
      noteAudit(ctx, info, { organizationId: target.organizationId, resourceType: "Event", resourceId: event.id });
      return ctx.prisma.event.findUniqueOrThrow({ ...query, where: { id: event.id } });
    },
  }),
  eventRecordBatch: t.field({
    type: EventBatchResult,
    authScopes: { authenticated: true },
    description: `Records up to ${MAX_BATCH} events: all validated first, then all stored or none.`,
    extensions: { auditInput: false },
    args: { input: t.arg({ type: EventBatchInput, required: true }) },
    resolve: async (_root, { input }, ctx, info) => {
      return recordBatch({
        ctx,
        organizationId: optionalId(input.organizationId, "Organization"),
        events: input.events,
        alsoIn: (tx, notify, result) =>
          auditInTransaction(tx, notify, ctx, info, {
            organizationId: result.organizationId,
            details: { received: result.received, stored: result.stored },
          }),
      });
    },
  }),
}));

const EventsRecordedRef = liveEventType(
  "EventsRecorded",
  "Events were stored: one (with the event), or a batch or import (a summary of how many).",
);
builder.objectFields(EventsRecordedRef, (t) => ({
  count: t.int({
    nullable: true,
    description: "How many were stored.",
    resolve: (item) => (item.data ? Number(item.data.count) : null),
  }),
  eventId: t.id({
    nullable: true,
    description: "The event's id, when one was recorded on its own (null for a batch or import).",
    resolve: (item) => (item.data?.single ? encodeId("Event", item.id as string) : null),
  }),
  event: t.prismaField({
    type: EventRef,
    nullable: true,
    description: "The event, when one was recorded on its own and you may see it.",
    resolve: (query, item, _a, ctx) =>
      liveRow(
        ctx,
        item,
        "Event",
        query,
        (where) => ctx.prisma.event.findFirst({ ...query, where }),
        item.data?.single ? item.id : null,
      ),
  }),
  user: t.prismaField({
    type: UserRef,
    nullable: true,
    description: "Whose events they are.",
    resolve: (query, item, _a, ctx) =>
      liveRow(
        ctx,
        item,
        "User",
        query,
        ({ id }) => ctx.prisma.user.findUnique({ ...query, where: { id } }),
        item.data?.userId ? String(item.data.userId) : null,
      ),
  }),
}));

liveSubscription("eventsRecorded", {
  type: EventsRecordedRef,
  description: "Events recorded in an organization that you may see: each one, and a summary per batch or import.",
  feed: "EVENTS",
  permission: "read",
  perUser: true,
});
