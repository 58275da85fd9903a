// Executions: queued by "run now" or by the scheduler, run by the worker off the request
// path, cancelled on request. A queued run is a row; a worker claims it, so a run survives
// any one process.
import type { Context } from "../../context.ts";
import { ConflictError, NotFoundError } from "../../errors.ts";
import type { ExecutionTrigger, Prisma } from "../../generated/prisma/client.ts";
import type { Notify } from "../../infra/outbox.ts";
import type { PubSub } from "../../infra/pubsub.ts";
import { authorize } from "../auth/access.ts";
import { actingUserId } from "../events/visibility.ts";
import { definitionSchema } from "./definition.ts";
import { checkDefinition } from "./workflow.service.ts";

/** Wakes the execution workers on every instance. */
export const EXECUTION_QUEUE = "execution:queued";

type Db = Context["prisma"] | Prisma.TransactionClient;

/** A queued run of the workflow's current version, with a row per step. */
export async function enqueue(
  db: Db,
  workflow: { id: string; organizationId: string; definition: unknown; currentVersion: number },
  run: {
    trigger: ExecutionTrigger;
    triggeredById: string | null;
    scheduleId?: string;
    scheduledFor?: Date;
    fencingToken?: bigint;
  },
) {
  const version = await db.workflowVersion.findUniqueOrThrow({
    where: { workflowId_number: { workflowId: workflow.id, number: workflow.currentVersion } },
    select: { id: true },
  });
  const steps = definitionSchema.parse(workflow.definition).steps;
  return db.workflowExecution.create({
    data: {
      organizationId: workflow.organizationId,
      workflowId: workflow.id,
      workflowVersionId: version.id,
      trigger: run.trigger,
      triggeredById: run.triggeredById,
      scheduleId: run.scheduleId,
      scheduledFor: run.scheduledFor,
      fencingToken: run.fencingToken,
      steps: {
        create: steps.map((step, stepIndex) => ({
          organizationId: workflow.organizationId,
          stepIndex,
          stepKey: step.id,
          stepType: step.type,
        })),
      },
    },
  });
}

/**
 * Tells subscribers that a run changed (with the step that moved, for step progress), in the
 * transaction of the change.
 */
export function noticeExecution(
  notify: Notify,
  execution: { id: string; organizationId: string },
  kind: "CREATED" | "UPDATED",
  step?: { key: string; status: string },
) {
  const data = step ? { stepKey: step.key, stepStatus: step.status } : undefined;
  notify("EXECUTIONS", execution.organizationId, { id: execution.id, kind, data });
}

/** Tells the workers on every instance that a run waits (after its commit); they also poll. */
export function wakeWorkers(deps: { pubsub: PubSub }, execution: { id: string }) {
  deps.pubsub.publish(EXECUTION_QUEUE, "all", { id: execution.id, kind: "CREATED" });
}

export async function runNow({ ctx, workflowId }: { ctx: Context; workflowId: string }) {
  const workflow = await ctx.prisma.workflow.findUnique({ where: { id: workflowId } });
  if (!workflow) throw new NotFoundError("Workflow");
  await authorize(ctx, workflow.organizationId, "execute", "Workflow");
  if (workflow.status === "ARCHIVED")
    throw new ConflictError("WORKFLOW_ARCHIVED", "An archived workflow does not run.");
  // Every integration must be there now; a draft from a suggestion may still lack one.
  await checkDefinition(ctx.prisma, workflow.organizationId, workflow.definition, { runnable: true });
  const execution = await ctx.outbox.transaction(async (tx, notify) => {
    const queued = await enqueue(tx, workflow, { trigger: "MANUAL", triggeredById: actingUserId(ctx) });
    noticeExecution(notify, queued, "CREATED");
    return queued;
  });
  wakeWorkers(ctx, execution);
  return execution;
}

/** A queued run ends at once; a running one stops at its next step boundary (its in-flight call is aborted). */
export async function cancelExecution({ ctx, id }: { ctx: Context; id: string }) {
  const execution = await ctx.prisma.workflowExecution.findUnique({ where: { id } });
  if (!execution) throw new NotFoundError("Execution");
  await authorize(ctx, execution.organizationId, "execute", "Execution");
  const now = new Date();
  await ctx.outbox.transaction(async (tx, notify) => {
    const queued = await tx.workflowExecution.updateMany({
      where: { id, status: "QUEUED" },
      data: { status: "CANCELLED", finishedAt: now, cancelRequestedAt: now, error: "Cancelled before it started." },
    });
    if (queued.count) {
      await tx.workflowStepResult.updateMany({ where: { executionId: id }, data: { status: "CANCELLED" } });
    } else {
      const running = await tx.workflowExecution.updateMany({
        where: { id, status: "RUNNING", cancelRequestedAt: null },
        data: { cancelRequestedAt: now },
      });
      if (!running.count && execution.status !== "RUNNING") {
        throw new ConflictError(
          "EXECUTION_FINISHED",
          `This execution has already ${execution.status.toLowerCase().replace("_", " ")}.`,
        );
      }
    }
    noticeExecution(notify, execution, "UPDATED");
  });
  return execution;
}
