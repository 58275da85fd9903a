import { builder } from "../../schema/builder.ts";
import { decodeId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { visibleOrganizations } from "../organizations/organization.schema.ts";
import { createSchedule, deleteSchedule, SCHEDULER_LOCK, specOf, updateSchedule } from "./schedule.service.ts";
import { upcoming } from "./scheduleTimes.ts";
import { WorkflowRef } from "./workflow.schema.ts";

const CatchUpRef = builder.enumType("CatchUpPolicy", {
  values: {
    LATEST: { description: "After an outage, run the most recent missed occurrence once." },
    SKIP: { description: "Run nothing that was missed." },
    ALL: { description: "Run every missed occurrence (up to 100), oldest first." },
  } as const,
});

export const ScheduleRef = builder.prismaNode("WorkflowSchedule", {
  name: "Schedule",
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, organization: visibleOrganizations(ctx) }),
  description: "Runs an ACTIVE workflow on a cron expression (in a time zone) or an interval.",
  fields: (t) => ({
    cron: t.exposeString("cron", { nullable: true }),
    intervalSeconds: t.exposeInt("intervalSeconds", { nullable: true }),
    timezone: t.exposeString("timezone"),
    catchUp: t.expose("catchUp", { type: CatchUpRef }),
    isPaused: t.exposeBoolean("isPaused"),
    nextRunAt: t.expose("nextRunAt", { type: "DateTime", nullable: true }),
    lastRunAt: t.expose("lastRunAt", { type: "DateTime", nullable: true }),
    nextRuns: t.field({
      type: ["DateTime"],
      description: "The next occurrences (empty while paused).",
      args: { count: t.arg.int({ required: false, defaultValue: 5 }) },
      select: { cron: true, intervalSeconds: true, timezone: true, createdAt: true, isPaused: true },
      resolve: (s, { count }) => (s.isPaused ? [] : upcoming(specOf(s), Math.min(Math.max(count ?? 5, 1), 50))),
    }),
    workflow: t.relation("workflow", { type: WorkflowRef }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
  }),
});

builder.prismaObjectField(WorkflowRef, "schedules", (t) =>
  t.relation("schedules", { type: ScheduleRef, query: { orderBy: { createdAt: "asc" } } }),
);

const CreateInput = builder.inputType("ScheduleCreateInput", {
  fields: (t) => ({
    workflowId: t.id({ required: true }),
    cron: t.string({ required: false, description: '"0 9 * * 1-5", or six fields with seconds first.' }),
    intervalSeconds: t.int({ required: false }),
    timezone: t.string({ required: false, description: 'IANA, e.g. "Europe/Paris"; UTC by default.' }),
    catchUp: t.field({ type: CatchUpRef, required: false }),
    isPaused: t.boolean({ required: false }),
  }),
});
const UpdateInput = builder.inputType("ScheduleUpdateInput", {
  fields: (t) => ({
    id: t.id({ required: true }),
    cron: t.string({ required: false }),
    intervalSeconds: t.int({ required: false }),
    timezone: t.string({ required: false }),
    catchUp: t.field({ type: CatchUpRef, required: false }),
    isPaused: t.boolean({ required: false, description: "Pause or resume." }),
  }),
});

const scheduleId = (id: string | number) => decodeId(String(id), "Schedule").id;

builder.mutationFields((t) => ({
  scheduleCreate: t.prismaField({
    type: ScheduleRef,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateInput, required: true }) },
    resolve: async (query, _root, { input: { workflowId, ...input } }, ctx, info) => {
      const row = await createSchedule({ ctx, workflowId: decodeId(String(workflowId), "Workflow").id, input });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Schedule", resourceId: row.id });
      return ctx.prisma.workflowSchedule.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  scheduleUpdate: t.prismaField({
    type: ScheduleRef,
    authScopes: { authenticated: true },
    description: "Changes the timing, or pauses and resumes (occurrences that fell due while paused are skipped).",
    args: { input: t.arg({ type: UpdateInput, required: true }) },
    resolve: async (query, _root, { input: { id, ...input } }, ctx, info) => {
      const row = await updateSchedule({ ctx, id: scheduleId(id), input });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Schedule", resourceId: row.id });
      return ctx.prisma.workflowSchedule.findUniqueOrThrow({ ...query, where: { id: row.id } });
    },
  }),
  scheduleDelete: t.id({
    authScopes: { authenticated: true },
    description: "Deletes a schedule (owners and admins; a member can pause it with `scheduleUpdate`).",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const row = await deleteSchedule({ ctx, id: scheduleId(id) });
      noteAudit(ctx, info, { organizationId: row.organizationId, resourceType: "Schedule", resourceId: row.id });
      return id;
    },
  }),
}));

const InstanceStatus = builder
  .objectRef<{ instanceId: string; isLeader: boolean; fencingToken: string | null; leaderSince: Date | null }>(
    "SchedulerInstance",
  )
  .implement({
    fields: (t) => ({
      instanceId: t.exposeString("instanceId"),
      isLeader: t.exposeBoolean("isLeader"),
      fencingToken: t.exposeString("fencingToken", { nullable: true }),
      leaderSince: t.expose("leaderSince", { type: "DateTime", nullable: true }),
    }),
  });

const SchedulerStatus = builder
  .objectRef<{
    instance: { instanceId: string; isLeader: boolean; fencingToken: string | null; leaderSince: Date | null } | null;
    lastHolderId: string | null;
    lastFencingToken: string | null;
    lastRecordedAt: Date | null;
  }>("SchedulerStatus")
  .implement({
    fields: (t) => ({
      instance: t.field({
        type: InstanceStatus,
        nullable: true,
        description: "The instance that answered.",
        resolve: (s) => s.instance,
      }),
      lastHolderId: t.exposeString("lastHolderId", {
        nullable: true,
        description: "The leader that last recorded runs.",
      }),
      lastFencingToken: t.exposeString("lastFencingToken", { nullable: true }),
      lastRecordedAt: t.expose("lastRecordedAt", { type: "DateTime", nullable: true }),
    }),
  });

builder.queryField("schedulerStatus", (t) =>
  t.field({
    type: SchedulerStatus,
    // Changes without a mutation: never kept by the response cache.
    extensions: { responseCache: false },
    description: "Operators only (superusers): who leads the scheduler.",
    authScopes: (_root, _args, ctx) => ctx.principal?.kind === "user" && ctx.principal.isSuperuser,
    resolve: async (_root, _args, ctx) => {
      const fence = await ctx.prisma.leaderFence.findUnique({ where: { name: SCHEDULER_LOCK } });
      return {
        instance: ctx.leaderStatus(),
        lastHolderId: fence?.holderId ?? null,
        lastFencingToken: fence ? String(fence.fencingToken) : null,
        lastRecordedAt: fence?.updatedAt ?? null,
      };
    },
  }),
);
