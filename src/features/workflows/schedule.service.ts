// Schedules: a cron expression with a time zone, or an interval; paused and resumed. The
// scheduler leader turns due occurrences into executions, each occurrence exactly once:
// a unique key on (schedule, occurrence) and a fencing token checked in the same
// transaction refuse a deposed leader's late writes.
import { z } from "zod";
import type { Context } from "../../context.ts";
import { AppError, NotFoundError, ValidationError } from "../../errors.ts";
import type { PrismaClient, WorkflowSchedule } from "../../generated/prisma/client.ts";
import type { Lease } from "../../infra/lock.ts";
import { parseInput } from "../../validation.ts";
import { authorize } from "../auth/access.ts";
import { enqueue, noticeExecution, wakeWorkers } from "./execution.service.ts";
import { cronProblem, latestAtOrBefore, nextAfter, occurrences, type ScheduleSpec } from "./scheduleTimes.ts";

export const SCHEDULER_LOCK = "scheduler";
const MAX_CATCH_UP = 100;
/** SKIP still runs an occurrence this late: the tick that finds it due is not a miss. */
const ON_TIME_MS = 5_000;

export class StaleLeaderError extends AppError {
  constructor() {
    super("STALE_LEADER", "A newer scheduler leader has taken over; this run was not recorded.");
  }
}

export const specOf = (
  s: Pick<WorkflowSchedule, "cron" | "intervalSeconds" | "timezone" | "createdAt">,
): ScheduleSpec => ({
  cron: s.cron,
  intervalSeconds: s.intervalSeconds,
  timezone: s.timezone,
  anchor: s.createdAt,
});

const fields = z.object({
  cron: z.string().trim().max(200).nullish(),
  intervalSeconds: z.number().int().min(1).max(31_536_000).nullish(),
  timezone: z.string().default("UTC"),
  catchUp: z.enum(["LATEST", "SKIP", "ALL"]).default("LATEST"),
  isPaused: z.boolean().optional(),
});

function checkTiming(data: { cron?: string | null; intervalSeconds?: number | null; timezone: string }) {
  const errors: { path: string; message: string }[] = [];
  try {
    new Intl.DateTimeFormat("en", { timeZone: data.timezone });
  } catch {
    errors.push({ path: "input.timezone", message: 'must be an IANA time zone, e.g. "Europe/Paris"' });
  }
  if (!data.cron === !data.intervalSeconds) {
    errors.push({ path: "input.cron", message: "give either cron or intervalSeconds, not both or neither" });
  } else if (data.cron && !errors.length) {
    const problem = cronProblem(data.cron, data.timezone);
    if (problem) errors.push({ path: "input.cron", message: problem });
  }
  if (errors.length) {
    throw new ValidationError(`Invalid schedule: ${errors.map((e) => `${e.path}: ${e.message}`).join("; ")}`, errors);
  }
}

export async function createSchedule({ ctx, workflowId, input }: { ctx: Context; workflowId: string; input: unknown }) {
  const workflow = await ctx.prisma.workflow.findUnique({ where: { id: workflowId } });
  if (!workflow) throw new NotFoundError("Workflow");
  await authorize(ctx, workflow.organizationId, "update", "Workflow");
  const data = parseInput(fields, input);
  checkTiming(data);
  const createdAt = new Date();
  const spec = {
    cron: data.cron ?? null,
    intervalSeconds: data.intervalSeconds ?? null,
    timezone: data.timezone,
    anchor: createdAt,
  };
  return ctx.prisma.workflowSchedule.create({
    data: {
      organizationId: workflow.organizationId,
      workflowId,
      cron: spec.cron,
      intervalSeconds: spec.intervalSeconds,
      timezone: spec.timezone,
      catchUp: data.catchUp,
      isPaused: data.isPaused ?? false,
      createdAt,
      nextRunAt: nextAfter(spec, createdAt),
    },
  });
}

async function ownSchedule(ctx: Context, id: string, permission: "update" | "delete" = "update") {
  const schedule = await ctx.prisma.workflowSchedule.findUnique({ where: { id } });
  if (!schedule) throw new NotFoundError("Schedule");
  await authorize(ctx, schedule.organizationId, permission, "Schedule");
  return schedule;
}

/** Timing changes restart the count from now; resuming skips what fell due while paused. */
export async function updateSchedule({ ctx, id, input }: { ctx: Context; id: string; input: unknown }) {
  const schedule = await ownSchedule(ctx, id);
  // Its own schema: defaults (UTC, LATEST) must not overwrite what is stored.
  const data = parseInput(
    z.object({
      cron: z.string().trim().max(200).nullish(),
      intervalSeconds: z.number().int().min(1).max(31_536_000).nullish(),
      timezone: z.string().optional(),
      catchUp: z.enum(["LATEST", "SKIP", "ALL"]).optional(),
      isPaused: z.boolean().optional(),
    }),
    input,
  );
  const merged = {
    cron: data.cron !== undefined ? data.cron : schedule.cron,
    intervalSeconds: data.intervalSeconds !== undefined ? data.intervalSeconds : schedule.intervalSeconds,
    timezone: data.timezone ?? schedule.timezone,
  };
  checkTiming(merged);
  const now = new Date();
  const retimed = data.cron !== undefined || data.intervalSeconds !== undefined || data.timezone !== undefined;
  const resumed = schedule.isPaused && data.isPaused === false;
  const anchor = retimed ? now : schedule.createdAt;
  return ctx.prisma.workflowSchedule.update({
    where: { id },
    data: {
      ...merged,
      catchUp: data.catchUp,
      isPaused: data.isPaused,
      ...(retimed ? { createdAt: anchor } : {}),
      ...(retimed || resumed ? { nextRunAt: nextAfter({ ...merged, anchor }, now) } : {}),
    },
  });
}

/** Deleting is deleting domain data: owners and admins, as the README's role table says (members pause). */
export async function deleteSchedule({ ctx, id }: { ctx: Context; id: string }) {
  const schedule = await ownSchedule(ctx, id, "delete");
  await ctx.prisma.workflowSchedule.delete({ where: { id } });
  return schedule;
}

/**
 * The leader's part: every schedule that is due gets its occurrences recorded, as its
 * catch-up policy says (ALL: every missed one; LATEST: the last; SKIP: only one on time).
 */
export async function recordDueOccurrences(
  deps: { prisma: PrismaClient; pubsub: Context["pubsub"]; outbox: Context["outbox"]; logger: Context["logger"] },
  lease: Lease,
  holderId: string,
  now = new Date(),
): Promise<number> {
  const due = await deps.prisma.workflowSchedule.findMany({
    where: { isPaused: false, nextRunAt: { lte: now } },
    include: { workflow: true },
    orderBy: { nextRunAt: "asc" },
    take: 200,
  });
  let recorded = 0;
  for (const schedule of due) {
    const spec = specOf(schedule);
    const latest = latestAtOrBefore(spec, now);
    const chosen =
      schedule.workflow.status !== "ACTIVE"
        ? []
        : schedule.catchUp === "ALL"
          ? occurrences(spec, schedule.nextRunAt ?? now, now, MAX_CATCH_UP)
          : schedule.catchUp === "LATEST"
            ? [latest]
            : now.getTime() - latest.getTime() <= ON_TIME_MS
              ? [latest]
              : [];
    // ALL, capped: the rest follow on the next ticks.
    const nextRunAt = chosen.length === MAX_CATCH_UP ? nextAfter(spec, chosen.at(-1) as Date) : nextAfter(spec, now);
    let created: Awaited<ReturnType<typeof enqueue>>[];
    try {
      created = await deps.outbox.transaction(async (tx, notify) => {
        await fence(tx, lease, holderId);
        // Re-read under a lock: a pause, a retime or a delete since the list was read wins.
        await tx.$executeRaw`SELECT 1 FROM workflow_schedules WHERE id = ${schedule.id}::uuid FOR UPDATE`;
        const current = await tx.workflowSchedule.findUnique({
          where: { id: schedule.id },
          select: { nextRunAt: true, isPaused: true },
        });
        if (!current || current.isPaused || current.nextRunAt?.getTime() !== schedule.nextRunAt?.getTime()) return [];
        const made = [];
        for (const scheduledFor of chosen) {
          const exists = await tx.workflowExecution.findFirst({
            where: { scheduleId: schedule.id, scheduledFor },
            select: { id: true },
          });
          if (exists) continue;
          made.push(
            await enqueue(tx, schedule.workflow, {
              trigger: "SCHEDULE",
              triggeredById: null,
              scheduleId: schedule.id,
              scheduledFor,
              fencingToken: lease.fencingToken,
            }),
          );
        }
        await tx.workflowSchedule.update({
          where: { id: schedule.id },
          data: { nextRunAt, lastRunAt: chosen.at(-1) ?? schedule.lastRunAt },
        });
        for (const execution of made) noticeExecution(notify, execution, "CREATED");
        return made;
      });
    } catch (err) {
      if (err instanceof StaleLeaderError) throw err;
      // One schedule's trouble must not hold up the others.
      deps.logger.error({ err, scheduleId: schedule.id }, "scheduler: could not record a schedule's occurrence");
      continue;
    }
    for (const execution of created) wakeWorkers(deps, execution);
    recorded += created.length;
  }
  return recorded;
}

/**
 * The fencing check, inside the recording transaction: the highest token seen wins, and the
 * row lock orders two leaders' transactions, so a deposed leader's write is refused.
 */
export async function fence(tx: Pick<PrismaClient, "$queryRaw">, lease: Lease, holderId: string) {
  const rows = await tx.$queryRaw<{ name: string }[]>`
    INSERT INTO leader_fences (name, fencing_token, holder_id, updated_at)
    VALUES (${lease.name}, ${lease.fencingToken}, ${holderId}, now())
    ON CONFLICT (name) DO UPDATE SET fencing_token = EXCLUDED.fencing_token, holder_id = EXCLUDED.holder_id, updated_at = now()
    WHERE leader_fences.fencing_token <= EXCLUDED.fencing_token
    RETURNING name`;
  if (rows.length === 0) throw new StaleLeaderError();
}
