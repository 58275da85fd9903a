import type { ExecutionStatus } from "../../generated/prisma/client.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { liveEventType, liveRow, liveSubscription, subjectId } from "../live/live.schema.ts";
import { visibleOrganizations } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";
import { cancelExecution, runNow } from "./execution.service.ts";
import { WorkflowRef, WorkflowVersionRef } from "./workflow.schema.ts";

const ExecutionStatusRef = builder.enumType("ExecutionStatus", {
  values: ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "SKIPPED"] as const,
});
const ExecutionTriggerRef = builder.enumType("ExecutionTrigger", { values: ["MANUAL", "SCHEDULE", "API"] as const });

const duration = (start: Date | null, end: Date | null) => (start && end ? end.getTime() - start.getTime() : null);

const StepResultRef = builder.prismaObject("WorkflowStepResult", {
  name: "ExecutionStep",
  select: { id: true },
  authScopes: { authenticated: true },
  fields: (t) => ({
    index: t.exposeInt("stepIndex"),
    key: t.exposeString("stepKey", { description: "The step's id in the definition." }),
    type: t.exposeString("stepType"),
    status: t.expose("status", { type: ExecutionStatusRef }),
    attempts: t.exposeInt("attempts"),
    output: t.expose("output", { type: "JSON", nullable: true }),
    logs: t.exposeStringList("logs"),
    error: t.exposeString("error", { nullable: true }),
    startedAt: t.expose("startedAt", { type: "DateTime", nullable: true }),
    finishedAt: t.expose("finishedAt", { type: "DateTime", nullable: true }),
    durationMs: t.int({
      nullable: true,
      select: { startedAt: true, finishedAt: true },
      resolve: (s) => duration(s.startedAt, s.finishedAt),
    }),
  }),
});

export const ExecutionRef = builder.prismaNode("WorkflowExecution", {
  name: "Execution",
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, organization: visibleOrganizations(ctx) }),
  fields: (t) => ({
    status: t.expose("status", { type: ExecutionStatusRef }),
    trigger: t.expose("trigger", { type: ExecutionTriggerRef }),
    attempt: t.exposeInt("attempt", { description: "Above 1 when a worker died and the run started again." }),
    error: t.exposeString("error", { nullable: true }),
    scheduledFor: t.expose("scheduledFor", { type: "DateTime", nullable: true }),
    queuedAt: t.expose("queuedAt", { type: "DateTime" }),
    startedAt: t.expose("startedAt", { type: "DateTime", nullable: true }),
    finishedAt: t.expose("finishedAt", { type: "DateTime", nullable: true }),
    durationMs: t.int({
      nullable: true,
      select: { startedAt: true, finishedAt: true },
      resolve: (e) => duration(e.startedAt, e.finishedAt),
    }),
    cancelRequested: t.boolean({ select: { cancelRequestedAt: true }, resolve: (e) => e.cancelRequestedAt !== null }),
    workflow: t.relation("workflow", { type: WorkflowRef }),
    version: t.relation("version", { type: WorkflowVersionRef, nullable: true }),
    triggeredBy: t.relation("triggeredBy", { type: UserRef, nullable: true }),
    steps: t.relation("steps", { type: StepResultRef, query: { orderBy: { stepIndex: "asc" } } }),
  }),
});

const ExecutionFilter = builder.inputType("ExecutionFilter", {
  fields: (t) => ({ statuses: t.field({ type: [ExecutionStatusRef], required: false }) }),
});

builder.prismaObjectField(WorkflowRef, "executions", (t) =>
  t.relatedConnection("executions", {
    type: ExecutionRef,
    cursor: "id",
    description: "Newest first.",
    totalCount: true,
    args: { filter: t.arg({ type: ExecutionFilter, required: false }) },
    query: ({ filter }) => ({
      where: { status: filter?.statuses ? { in: filter.statuses } : undefined },
      orderBy: [{ queuedAt: "desc" as const }, { id: "desc" as const }],
    }),
  }),
);

builder.mutationFields((t) => ({
  workflowRun: t.prismaField({
    type: ExecutionRef,
    authScopes: { authenticated: true },
    description: "Queues a run of the current version now; a worker runs it off the request path.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx, info) => {
      const execution = await runNow({ ctx, workflowId: decodeId(String(id), "Workflow").id });
      noteAudit(ctx, info, {
        organizationId: execution.organizationId,
        resourceType: "Execution",
        resourceId: execution.id,
      });
      return ctx.prisma.workflowExecution.findUniqueOrThrow({ ...query, where: { id: execution.id } });
    },
  }),
  executionCancel: t.prismaField({
    type: ExecutionRef,
    authScopes: { authenticated: true },
    description: "A queued run ends at once; a running one stops at once, its in-flight call aborted.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, { id }, ctx, info) => {
      const execution = await cancelExecution({ ctx, id: decodeId(String(id), "Execution").id });
      noteAudit(ctx, info, {
        organizationId: execution.organizationId,
        resourceType: "Execution",
        resourceId: execution.id,
      });
      return ctx.prisma.workflowExecution.findUniqueOrThrow({ ...query, where: { id: execution.id } });
    },
  }),
}));

const ExecutionUpdatedRef = liveEventType(
  "WorkflowExecutionUpdated",
  "A run was queued, started, moved a step, or ended.",
);
builder.objectFields(ExecutionUpdatedRef, (t) => ({
  executionId: t.id({ nullable: true, resolve: subjectId("Execution") }),
  stepKey: t.string({
    nullable: true,
    description: "The step that moved, when this event is step progress.",
    resolve: (item) => (item.data?.stepKey as string | undefined) ?? null,
  }),
  stepStatus: t.field({
    type: ExecutionStatusRef,
    nullable: true,
    description: "That step's status at this event.",
    resolve: (item) => (item.data?.stepStatus as ExecutionStatus | undefined) ?? null,
  }),
  execution: t.prismaField({
    type: ExecutionRef,
    nullable: true,
    description: "The run as it is now.",
    resolve: (query, item, _a, ctx) =>
      liveRow(ctx, item, "WorkflowExecution", query, (where) =>
        ctx.prisma.workflowExecution.findFirst({ ...query, where }),
      ),
  }),
}));

liveSubscription("workflowExecutionUpdated", {
  type: ExecutionUpdatedRef,
  description: "Runs of an organization's workflows: status changes and step progress.",
  feed: "EXECUTIONS",
  permission: "read",
  narrow: {
    arg: "executionId",
    typename: "Execution",
    exists: async (ctx, id, organizationId) =>
      (await ctx.prisma.workflowExecution.count({ where: { id, organizationId } })) > 0,
  },
});
