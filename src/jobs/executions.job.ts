// The execution worker, in every instance: claims queued runs (row locks, so two workers
// never take the same one; an advisory lock per organization, so its concurrency limit holds
// across instances), runs their steps with retries, backoff and timeouts, heartbeats while it
// runs, and finds runs whose worker died: retried, or failed, never left running.
import { setTimeout as sleep } from "node:timers/promises";
import type { AppDeps } from "../context.ts";
import { AppError } from "../errors.ts";
import { definitionSchema, type Step } from "../features/workflows/definition.ts";
import { announce, EXECUTION_QUEUE } from "../features/workflows/execution.service.ts";
import { ConditionFalse, runStep, type StepScope } from "../features/workflows/steps.ts";
import type { ExecutionStatus, Prisma } from "../generated/prisma/client.ts";

export interface ExecutionWorkerOptions {
  workerId: string;
  concurrency: number;
  perOrganization: number;
  pollMs: number;
  heartbeatMs: number;
  staleMs: number;
  maxAttempts: number;
}

type Deps = Pick<AppDeps, "prisma" | "pubsub" | "logger" | "secrets" | "config">;
type StopReason = "cancel" | "timeout" | "shutdown" | "lost";

const DEFAULT_STEP_TIMEOUT_MS = 60_000;

export function startExecutionWorker(deps: Deps, options: ExecutionWorkerOptions) {
  const { prisma, logger } = deps;
  const running = new Map<string, { stop(reason: StopReason): void; done: Promise<void> }>();
  let stopped = false;
  let claiming = false;

  async function claim(): Promise<string | null> {
    return prisma.$transaction(async (tx) => {
      const candidates = await tx.$queryRaw<{ id: string; organization_id: string }[]>`
        SELECT id, organization_id FROM workflow_executions
        WHERE status = 'QUEUED' AND queued_at <= now()
        ORDER BY queued_at LIMIT 20 FOR UPDATE SKIP LOCKED`;
      for (const c of candidates) {
        await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`executions:${c.organization_id}`}, 0))::text`;
        const busy = await tx.workflowExecution.count({
          where: { organizationId: c.organization_id, status: "RUNNING" },
        });
        const org = await tx.organization.findUnique({
          where: { id: c.organization_id },
          select: { maxConcurrentExecutions: true },
        });
        if (busy >= (org?.maxConcurrentExecutions ?? options.perOrganization)) continue;
        await tx.workflowExecution.update({
          where: { id: c.id },
          data: { status: "RUNNING", workerId: options.workerId, heartbeatAt: new Date(), startedAt: new Date() },
        });
        return c.id;
      }
      return null;
    });
  }

  async function kick() {
    if (claiming || stopped) return;
    claiming = true;
    try {
      while (!stopped && running.size < options.concurrency) {
        const id = await claim();
        if (!id) break;
        start(id);
      }
    } catch (err) {
      logger.error({ err }, "claiming executions failed");
    } finally {
      claiming = false;
    }
  }

  function start(id: string) {
    const controller = new AbortController();
    let reason: StopReason | null = null;
    const stop = (why: StopReason) => {
      reason ??= why;
      controller.abort(why);
    };
    const done = execute(id, controller.signal, () => reason)
      .catch((err) => logger.error({ err, executionId: id }, "execution crashed"))
      .finally(() => {
        running.delete(id);
        void kick();
      });
    running.set(id, { stop, done });
  }

  async function execute(id: string, signal: AbortSignal, reasonOf: () => StopReason | null) {
    const execution = await prisma.workflowExecution.findUniqueOrThrow({
      where: { id },
      include: { version: true, workflow: { select: { createdById: true } }, steps: { orderBy: { stepIndex: "asc" } } },
    });
    const definition = definitionSchema.parse(execution.version?.definition ?? {});
    const owned = { id, workerId: options.workerId, status: "RUNNING" as const };
    const overall = setTimeout(() => running.get(id)?.stop("timeout"), definition.timeoutMs);
    // Also how a cancel requested on any instance reaches this run.
    const heartbeat = setInterval(async () => {
      try {
        const beat = await prisma.workflowExecution.updateMany({ where: owned, data: { heartbeatAt: new Date() } });
        if (beat.count === 0) running.get(id)?.stop("lost");
        const row = await prisma.workflowExecution.findUnique({ where: { id }, select: { cancelRequestedAt: true } });
        if (row?.cancelRequestedAt) running.get(id)?.stop("cancel");
      } catch (err) {
        logger.warn({ err, executionId: id }, "heartbeat failed");
      }
    }, options.heartbeatMs);
    const scope: StepScope = { steps: {} };
    let status: ExecutionStatus = "SUCCEEDED";
    let error: string | null = null;
    try {
      for (const [index, step] of definition.steps.entries()) {
        if (signal.aborted) break;
        const outcome = await runWithRetries(execution, index, step, scope, signal);
        if (outcome === "stop") {
          await prisma.workflowStepResult.updateMany({
            where: { executionId: id, stepIndex: { gt: index } },
            data: { status: "SKIPPED" },
          });
          break;
        }
        if (outcome instanceof Error) {
          status = "FAILED";
          error = `Step "${step.id}" failed: ${outcome.message}`;
          break;
        }
      }
    } finally {
      clearTimeout(overall);
      clearInterval(heartbeat);
    }
    const reason = reasonOf();
    if (reason === "lost") return; // Another worker has it now.
    if (reason === "shutdown") {
      // Handed back, untouched: another instance (or this one, restarted) runs it again.
      await prisma.$transaction([
        prisma.workflowExecution.updateMany({
          where: owned,
          data: { status: "QUEUED", workerId: null, heartbeatAt: null },
        }),
        prisma.workflowStepResult.updateMany({ where: { executionId: id }, data: { status: "QUEUED", attempts: 0 } }),
      ]);
      return;
    }
    if (reason === "cancel") [status, error] = ["CANCELLED", "Cancelled."];
    if (reason === "timeout") [status, error] = ["TIMED_OUT", `The run took longer than ${definition.timeoutMs} ms.`];
    const now = new Date();
    await prisma.$transaction([
      prisma.workflowStepResult.updateMany({
        where: { executionId: id, status: "RUNNING" },
        data: { status, finishedAt: now },
      }),
      // Steps the run never reached.
      prisma.workflowStepResult.updateMany({
        where: { executionId: id, status: "QUEUED" },
        data: { status: "SKIPPED" },
      }),
      prisma.workflowExecution.updateMany({ where: owned, data: { status, error, finishedAt: now } }),
    ]);
    announce(deps.pubsub, execution, "UPDATED");
  }

  /** "ok", "stop" (a false condition), or the last error. */
  async function runWithRetries(
    execution: {
      id: string;
      organizationId: string;
      triggeredById: string | null;
      workflow: { createdById: string | null };
    },
    index: number,
    step: Step,
    scope: StepScope,
    signal: AbortSignal,
  ): Promise<"ok" | "stop" | Error> {
    const where = { executionId_stepIndex: { executionId: execution.id, stepIndex: index } };
    const logs: string[] = [];
    const maxAttempts = step.retry?.maxAttempts ?? 1;
    const started = new Date();
    await prisma.workflowStepResult.update({ where, data: { status: "RUNNING", startedAt: started } });
    announce(deps.pubsub, execution, "UPDATED");
    let last: Error = new Error("not run");
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const stepSignal = AbortSignal.any([signal, AbortSignal.timeout(step.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS)]);
      try {
        const output = await runStep(step, {
          deps,
          organizationId: execution.organizationId,
          userId: execution.triggeredById ?? execution.workflow.createdById,
          scope,
          signal: stepSignal,
          log: (line) => logs.push(`[attempt ${attempt}] ${line}`),
        });
        scope.steps[step.id] = { output };
        await finishStep(where, "SUCCEEDED", { attempts: attempt, logs, output });
        return "ok";
      } catch (err) {
        if (err instanceof ConditionFalse) {
          scope.steps[step.id] = { output: { holds: false } };
          await finishStep(where, "SUCCEEDED", { attempts: attempt, logs, output: { holds: false } });
          return "stop";
        }
        if (signal.aborted) {
          // Still RUNNING: the run's ending (cancelled, timed out, handed back) decides its status.
          await prisma.workflowStepResult.update({ where, data: { attempts: attempt, logs: logs.slice(-100) } });
          return last;
        }
        last =
          stepSignal.aborted && !signal.aborted
            ? new AppError("STEP_TIMEOUT", `took longer than ${step.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS} ms`)
            : (err as Error);
        logs.push(`[attempt ${attempt}] ${last instanceof AppError ? `${last.code}: ` : ""}${last.message}`);
        if (attempt < maxAttempts) {
          const backoff = (step.retry?.backoffMs ?? 1_000) * 2 ** (attempt - 1);
          logs.push(`[attempt ${attempt}] retrying in ${backoff} ms`);
          await sleep(backoff, undefined, { signal }).catch(() => undefined);
          if (signal.aborted) break;
        }
      }
    }
    if (signal.aborted) {
      await prisma.workflowStepResult.update({ where, data: { logs: logs.slice(-100) } });
      return last;
    }
    await finishStep(where, "FAILED", {
      attempts: maxAttempts,
      logs,
      error: last.message,
    });
    return last;
  }

  async function finishStep(
    where: Prisma.WorkflowStepResultWhereUniqueInput,
    status: ExecutionStatus,
    data: { attempts: number; logs: string[]; output?: unknown; error?: string },
  ) {
    await prisma.workflowStepResult.update({
      where,
      data: {
        status,
        attempts: data.attempts,
        logs: data.logs.slice(-100),
        output:
          data.output === undefined
            ? undefined
            : (JSON.parse(JSON.stringify(data.output ?? null)) as Prisma.InputJsonValue),
        error: data.error?.slice(0, 2000),
        finishedAt: new Date(),
      },
    });
  }

  /** Runs whose worker stopped heartbeating: queued again while attempts remain, else failed. */
  async function sweep() {
    const cutoff = new Date(Date.now() - options.staleMs);
    const stale = await prisma.workflowExecution.findMany({
      where: { status: "RUNNING", heartbeatAt: { lt: cutoff } },
      select: { id: true, organizationId: true, attempt: true },
    });
    for (const e of stale) {
      const retry = e.attempt < options.maxAttempts;
      const moved = await prisma.workflowExecution.updateMany({
        where: { id: e.id, status: "RUNNING", heartbeatAt: { lt: cutoff } },
        data: retry
          ? { status: "QUEUED", workerId: null, heartbeatAt: null, attempt: { increment: 1 } }
          : { status: "FAILED", finishedAt: new Date(), error: "The worker running it stopped responding." },
      });
      if (!moved.count) continue;
      await prisma.workflowStepResult.updateMany({
        where: { executionId: e.id, status: { in: ["QUEUED", "RUNNING"] } },
        data: retry ? { status: "QUEUED" } : { status: "FAILED", finishedAt: new Date() },
      });
      logger.warn({ executionId: e.id, retried: retry }, "execution's worker stopped responding");
      announce(deps.pubsub, e, retry ? "CREATED" : "UPDATED");
    }
  }

  const queue = deps.pubsub.subscribe(EXECUTION_QUEUE, "all");
  (async () => {
    for await (const _ of queue) void kick();
  })().catch((err) => logger.error({ err }, "execution announcements ended"));
  const timer = setInterval(() => {
    void sweep()
      .catch((err) => logger.error({ err }, "stale execution sweep failed"))
      .then(kick);
  }, options.pollMs);
  timer.unref();
  void kick();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await queue.return?.();
      for (const r of running.values()) r.stop("shutdown");
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}

export type ExecutionWorker = ReturnType<typeof startExecutionWorker>;
