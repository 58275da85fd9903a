// The execution worker, in every instance: claims queued runs (row locks, so two workers
// never take the same one; an advisory lock per organization, so its concurrency limit holds
// across instances), runs their steps with retries, backoff and timeouts, heartbeats while it
// runs, and finds runs whose worker died: retried, or failed, never left running.
import { setTimeout as sleep } from "node:timers/promises";
import type { AppDeps } from "../context.ts";
import { AppError } from "../errors.ts";
import { type RunScrubber, runScrubber } from "../features/connectors/runScrubber.ts";
import type { Scrubber } from "../features/connectors/scrub.ts";
import { definitionSchema, type Step } from "../features/workflows/definition.ts";
import { EXECUTION_QUEUE, noticeExecution, wakeWorkers } from "../features/workflows/execution.service.ts";
import { ConditionFalse, idempotencyKey, runActor, runStep, type StepScope } from "../features/workflows/steps.ts";
import type { ExecutionStatus, Prisma } from "../generated/prisma/client.ts";
import { deadlineSignal } from "../infra/deadline.ts";

export interface ExecutionWorkerOptions {
  workerId: string;
  concurrency: number;
  perOrganization: number;
  pollMs: number;
  heartbeatMs: number;
  staleMs: number;
  maxAttempts: number;
}

type Deps = Pick<AppDeps, "prisma" | "pubsub" | "outbox" | "logger" | "secrets" | "config" | "metrics">;
type StopReason = "cancel" | "timeout" | "shutdown" | "lost";

const DEFAULT_STEP_TIMEOUT_MS = 60_000;
/** What a step's error and each log line keep (a service's error body can be megabytes). */
const MAX_ERROR = 2_000;
const MAX_LOG_LINE = 2_000;

/** The last 100 log lines, scrubbed whole and then cut: a line cut first could keep half a secret. */
const stored = (scrub: Scrubber, logs: string[]) => logs.slice(-100).map((line) => scrub.clip(line, MAX_LOG_LINE));

export function startExecutionWorker(deps: Deps, options: ExecutionWorkerOptions) {
  const { prisma, logger } = deps;
  const running = new Map<string, { stop(reason: StopReason): void; done: Promise<void> }>();
  let stopped = false;
  let claiming: Promise<void> | null = null;

  async function claim(): Promise<string | null> {
    return prisma.$transaction(async (tx) => {
      // Organizations already at their limit are left out here, so their backlog cannot hide
      // other organizations' runs; the count is checked again under the lock below.
      const candidates = await tx.$queryRaw<{ id: string; organization_id: string }[]>`
        SELECT q.id, q.organization_id FROM workflow_executions q
        WHERE q.status = 'QUEUED' AND q.queued_at <= now() AND q.cancel_requested_at IS NULL
          AND (SELECT count(*) FROM workflow_executions r
               WHERE r.organization_id = q.organization_id AND r.status = 'RUNNING')
            < COALESCE((SELECT o.max_concurrent_executions FROM organizations o WHERE o.id = q.organization_id),
                       ${options.perOrganization})
        ORDER BY q.queued_at LIMIT 20 FOR UPDATE OF q SKIP LOCKED`;
      for (const c of candidates) {
        // Try, not wait: two claimers locking organizations in different orders must not deadlock.
        const [lock] = await tx.$queryRaw<{ ok: boolean }[]>`
          SELECT pg_try_advisory_xact_lock(hashtextextended(${`executions:${c.organization_id}`}, 0)) AS ok`;
        if (!lock?.ok) continue;
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

  function kick(): Promise<void> {
    if (claiming || stopped) return claiming ?? Promise.resolve();
    claiming = claimAll().finally(() => {
      claiming = null;
    });
    return claiming;
  }

  async function claimAll() {
    try {
      while (!stopped && running.size < options.concurrency) {
        const id = await claim();
        if (!id) break;
        if (stopped) {
          // Stopped while claiming: handed straight back.
          await prisma.workflowExecution.updateMany({
            where: { id, workerId: options.workerId, status: "RUNNING" },
            data: { status: "QUEUED", workerId: null, heartbeatAt: null },
          });
          break;
        }
        start(id);
      }
    } catch (err) {
      logger.error({ err }, "claiming executions failed");
    }
  }

  function start(id: string) {
    const controller = new AbortController();
    let reason: StopReason | null = null;
    const stop = (why: StopReason) => {
      reason ??= why;
      controller.abort(why);
    };
    const entry = { stop, done: Promise.resolve() };
    entry.done = execute(id, controller.signal, () => reason, stop)
      .then(
        () => deps.metrics.jobRun("executions", true),
        (err) => {
          deps.metrics.jobRun("executions", false);
          logger.error({ err, executionId: id }, "execution crashed");
        },
      )
      .finally(() => {
        // Only this run's entry: the same id may have been claimed again meanwhile.
        if (running.get(id) === entry) running.delete(id);
        void kick();
      });
    running.set(id, entry);
  }

  async function execute(
    id: string,
    signal: AbortSignal,
    reasonOf: () => StopReason | null,
    stopRun: (why: StopReason) => void,
  ) {
    const execution = await prisma.workflowExecution.findUniqueOrThrow({
      where: { id },
      include: { version: true, steps: { orderBy: { stepIndex: "asc" } } },
    });
    const definition = definitionSchema.parse(execution.version?.definition ?? {});
    // The attempt too: a worker declared dead that wakes up owns nothing of the new attempt.
    const owned = { id, workerId: options.workerId, status: "RUNNING" as const, attempt: execution.attempt };
    let lastBeat = Date.now();
    const overall = setTimeout(() => stopRun("timeout"), definition.timeoutMs);
    // Also how a cancel requested on any instance reaches this run.
    const heartbeat = setInterval(async () => {
      try {
        const beat = await prisma.workflowExecution.updateMany({ where: owned, data: { heartbeatAt: new Date() } });
        if (beat.count === 0) return stopRun("lost");
        lastBeat = Date.now();
        const row = await prisma.workflowExecution.findUnique({ where: { id }, select: { cancelRequestedAt: true } });
        if (row?.cancelRequestedAt) stopRun("cancel");
      } catch (err) {
        logger.warn({ err, executionId: id }, "heartbeat failed");
        // Others declare this run dead after staleMs without a beat: stop before they do.
        if (Date.now() - lastBeat > options.staleMs / 2) stopRun("lost");
      }
    }, options.heartbeatMs);
    const scope: StepScope = { steps: {} };
    // Everything a run stores (output, logs, errors) is read by every member: scrubbed of every
    // secret of the organization's integrations as they are when each step ends (one added
    // during a long run is covered too) and of every secret a call of the run sent.
    const scrubbers = runScrubber(deps, execution.organizationId);
    let status: ExecutionStatus = "SUCCEEDED";
    let error: string | null = null;
    let completed = false;
    try {
      // Becomes false only when a stop (cancel, timeout, shutdown, lost) cut the run short.
      completed = true;
      for (const [index, step] of definition.steps.entries()) {
        if (signal.aborted) {
          completed = false;
          break;
        }
        const outcome = await runWithRetries(execution, index, step, scope, scrubbers, signal);
        if (outcome === "aborted") {
          completed = false;
          break;
        }
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
    const reason = completed ? null : reasonOf();
    if (reason === "lost") return; // Another worker has it now.
    if (reason === "shutdown") {
      // Handed back (unless cancelled meanwhile), its steps reset only if it is still ours.
      await prisma.$transaction(async (tx) => {
        const back = await tx.workflowExecution.updateMany({
          where: { ...owned, cancelRequestedAt: null },
          data: { status: "QUEUED", workerId: null, heartbeatAt: null },
        });
        if (back.count) {
          await tx.workflowStepResult.updateMany({
            where: { executionId: id },
            data: { status: "QUEUED", attempts: 0 },
          });
        }
      });
      const still = await prisma.workflowExecution.count({ where: owned });
      if (!still) return;
      [status, error] = ["CANCELLED", "Cancelled."];
    }
    if (reason === "cancel") [status, error] = ["CANCELLED", "Cancelled."];
    if (reason === "timeout") [status, error] = ["TIMED_OUT", `The run took longer than ${definition.timeoutMs} ms.`];
    const now = new Date();
    await deps.outbox.transaction(async (tx, notify) => {
      await tx.workflowStepResult.updateMany({
        where: { executionId: id, status: "RUNNING" },
        data: { status, finishedAt: now },
      });
      // Steps the run never reached.
      await tx.workflowStepResult.updateMany({
        where: { executionId: id, status: "QUEUED" },
        data: { status: "SKIPPED" },
      });
      await tx.workflowExecution.updateMany({ where: owned, data: { status, error, finishedAt: now } });
      noticeExecution(notify, execution, "UPDATED");
    });
  }

  /** "ok", "stop" (a false condition), or the last error. */
  async function runWithRetries(
    execution: {
      id: string;
      organizationId: string;
      workflowId: string;
      trigger: string;
      triggeredById: string | null;
      version: { authorId: string | null; number: number } | null;
    },
    index: number,
    step: Step,
    scope: StepScope,
    scrubbers: RunScrubber,
    signal: AbortSignal,
  ): Promise<"ok" | "stop" | "aborted" | Error> {
    const where = { executionId_stepIndex: { executionId: execution.id, stepIndex: index } };
    const logs: string[] = [];
    const maxAttempts = step.retry?.maxAttempts ?? 1;
    const started = new Date();
    await deps.outbox.transaction(async (tx, notify) => {
      await tx.workflowStepResult.update({ where, data: { status: "RUNNING", startedAt: started } });
      noticeExecution(notify, execution, "UPDATED", { key: step.id, status: "RUNNING" });
    });
    let last: Error = new Error("not run");
    // One key for every delivery of this step of this run: its retries, and its re-runs after
    // its worker died (a new attempt of the run, the same key); see idempotencyKey.
    const key = idempotencyKey(execution.id, step.id);
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      // A delay's own length does not count against the default step timeout.
      const timeoutMs = step.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS + (step.type === "delay" ? step.ms : 0);
      const deadline = deadlineSignal(signal, timeoutMs);
      let output: unknown;
      let holds = true;
      try {
        output = await runStep(step, {
          deps,
          organizationId: execution.organizationId,
          actor: runActor(execution),
          run: {
            executionId: execution.id,
            workflowId: execution.workflowId,
            version: execution.version?.number ?? null,
            trigger: execution.trigger,
          },
          scope,
          idempotencyKey: key,
          signal: deadline.signal,
          log: (line) => logs.push(`[attempt ${attempt}] ${line}`),
          usedSecrets: scrubbers.used,
        });
      } catch (err) {
        if (err instanceof ConditionFalse) {
          holds = false;
          output = { holds };
        } else if (signal.aborted) {
          // Still RUNNING: the run's ending (cancelled, timed out, handed back) decides its status.
          const scrub = await scrubbers.current();
          await prisma.workflowStepResult.update({
            where,
            data: { attempts: attempt, logs: stored(scrub, logs) },
          });
          return "aborted";
        } else {
          last =
            deadline.timedOut() && !signal.aborted
              ? new AppError("STEP_TIMEOUT", `took longer than ${timeoutMs} ms`)
              : (err as Error);
          logs.push(`[attempt ${attempt}] ${last instanceof AppError ? `${last.code}: ` : ""}${last.message}`);
          if (attempt < maxAttempts) {
            const backoff = (step.retry?.backoffMs ?? 1_000) * 2 ** (attempt - 1);
            logs.push(`[attempt ${attempt}] retrying in ${backoff} ms`);
            await sleep(backoff, undefined, { signal }).catch(() => undefined);
          }
          if (signal.aborted) {
            const scrub = await scrubbers.current();
            await prisma.workflowStepResult.update({
              where,
              data: { attempts: attempt, logs: stored(scrub, logs) },
            });
            return "aborted";
          }
          continue;
        }
      } finally {
        deadline.clear();
      }
      // Recorded outside the try: a failed write must not run the step (and its side effect) again.
      // Scrubbed before later steps see it too: a template must not carry a secret onwards.
      const scrub = await scrubbers.current();
      output = scrub.value(output);
      scope.steps[step.id] = { output };
      await finishStep(execution, step, where, "SUCCEEDED", { attempts: attempt, logs: stored(scrub, logs), output });
      return holds ? "ok" : "stop";
    }
    const scrub = await scrubbers.current();
    const error = new Error(scrub.clip(last.message, MAX_ERROR));
    await finishStep(execution, step, where, "FAILED", {
      attempts: maxAttempts,
      logs: stored(scrub, logs),
      error: error.message,
    });
    return error;
  }

  /** A step's outcome and its notice, in one transaction. */
  async function finishStep(
    execution: { id: string; organizationId: string },
    step: Step,
    where: Prisma.WorkflowStepResultWhereUniqueInput,
    status: ExecutionStatus,
    data: { attempts: number; logs: string[]; output?: unknown; error?: string },
  ) {
    await deps.outbox.transaction(async (tx, notify) => {
      noticeExecution(notify, execution, "UPDATED", { key: step.id, status });
      await tx.workflowStepResult.update({
        where,
        data: {
          status,
          attempts: data.attempts,
          logs: data.logs.slice(-100),
          output:
            data.output === undefined
              ? undefined
              : (JSON.parse(JSON.stringify(data.output ?? null)) as Prisma.InputJsonValue),
          error: data.error,
          finishedAt: new Date(),
        },
      });
    });
  }

  /** Runs whose worker stopped heartbeating: queued again while attempts remain, else failed. */
  async function sweep() {
    const cutoff = new Date(Date.now() - options.staleMs);
    const stale = await prisma.workflowExecution.findMany({
      where: { status: "RUNNING", heartbeatAt: { lt: cutoff } },
      select: { id: true, organizationId: true, attempt: true, cancelRequestedAt: true },
    });
    for (const e of stale) {
      // A run cancelled meanwhile ends cancelled; it does not start again.
      const retry = e.attempt < options.maxAttempts && !e.cancelRequestedAt;
      const moved = await deps.outbox.transaction(async (tx, notify) => {
        const { count } = await tx.workflowExecution.updateMany({
          where: { id: e.id, status: "RUNNING", heartbeatAt: { lt: cutoff } },
          data: retry
            ? { status: "QUEUED", workerId: null, heartbeatAt: null, attempt: { increment: 1 } }
            : e.cancelRequestedAt
              ? { status: "CANCELLED", finishedAt: new Date(), error: "Cancelled." }
              : { status: "FAILED", finishedAt: new Date(), error: "The worker running it stopped responding." },
        });
        if (!count) return false;
        await tx.workflowStepResult.updateMany({
          where: { executionId: e.id, status: { in: ["QUEUED", "RUNNING"] } },
          data: retry ? { status: "QUEUED" } : { status: "SKIPPED" },
        });
        noticeExecution(notify, e, retry ? "CREATED" : "UPDATED");
        return true;
      });
      if (!moved) continue;
      logger.warn({ executionId: e.id, retried: retry }, "execution's worker stopped responding");
      if (retry) wakeWorkers(deps, e);
    }
  }

  const queue = deps.pubsub.subscribe(EXECUTION_QUEUE, "all");
  (async () => {
    for await (const _ of queue) void kick();
  })().catch((err) => logger.error({ err }, "execution announcements ended"));
  const timer = setInterval(() => {
    void sweep()
      .then(
        () => deps.metrics.jobRun("execution_sweep", true),
        (err) => {
          deps.metrics.jobRun("execution_sweep", false);
          logger.error({ err }, "stale execution sweep failed");
        },
      )
      .then(kick);
  }, options.pollMs);
  timer.unref();
  void kick();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await queue.return?.();
      await claiming;
      for (const r of running.values()) r.stop("shutdown");
      await Promise.all([...running.values()].map((r) => r.done));
    },
  };
}

export type ExecutionWorker = ReturnType<typeof startExecutionWorker>;
