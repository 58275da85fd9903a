// What each kind of step does. A step gets the outputs of the steps before it, an abort
// signal (cancel, timeout), a log and its idempotency key; it returns its output or throws.
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AppDeps } from "../../context.ts";
import { AppError } from "../../errors.ts";
import { decodeId } from "../../schema/globalId.ts";
import { memberRole, PERMISSIONS } from "../auth/access.ts";
import { connectorFetch, withIdempotencyKey } from "../connectors/connectorHttp.ts";
import { callFor } from "../connectors/integration.service.ts";
import { actionOf } from "../connectors/registry.ts";
import { noticeRecorded, wakeAnalysis } from "../events/event.service.ts";
import { eventInput, toDraft } from "../events/eventInput.ts";
import type { Step } from "./definition.ts";

export interface StepScope {
  steps: Record<string, { output: unknown }>;
  /** The step being run, for its own templates: {{step.id}}, {{step.idempotencyKey}}. */
  step?: { id: string; idempotencyKey: string };
}

/**
 * What a step's side effect is, once: the run and the step, nothing else. Not the run's
 * attempt (a run taken up again after its worker died is the same run, and must send the
 * same key for the service to see the second delivery as a repeat), nor the step's retry
 * (a retry follows a failure or a timeout whose request may well have been done: the
 * service must be able to tell). A run started again by a person is a new run: a new key.
 */
export function idempotencyKey(executionId: string, stepId: string): string {
  return createHash("sha256").update(`floyo:step:${executionId}:${stepId}`).digest("hex");
}

/**
 * Whom an event a run records belongs to. A manual run (or one through the API): the person
 * who started it, or the API key's creator. A scheduled run: the author of the version that
 * runs, i.e. whoever last saved its definition (a rollback counts as saving); never the
 * workflow's creator or the schedule's, who may not have written the step. So a member who
 * edits someone else's workflow makes events that are the member's.
 */
export interface RunActor {
  userId: string | null;
  basis: "STARTED_THE_RUN" | "AUTHORED_THE_VERSION";
}

export function runActor(execution: {
  trigger: string;
  triggeredById: string | null;
  version: { authorId: string | null } | null;
}): RunActor {
  return execution.trigger === "SCHEDULE"
    ? { userId: execution.version?.authorId ?? null, basis: "AUTHORED_THE_VERSION" }
    : { userId: execution.triggeredById, basis: "STARTED_THE_RUN" };
}

export interface StepContext {
  deps: Pick<AppDeps, "prisma" | "secrets" | "config" | "pubsub" | "outbox">;
  organizationId: string;
  actor: RunActor;
  /** Where what a step records came from: shown in the event's details. */
  run: { executionId: string; workflowId: string; version: number | null; trigger: string };
  scope: StepScope;
  /** See idempotencyKey: sent to every service that can dedupe with it. */
  idempotencyKey: string;
  signal: AbortSignal;
  log: (line: string) => void;
  /**
   * Every secret a call of the run sent, as read at the call's start: what the run stores is
   * scrubbed of these too, even once the integration's secrets were rotated or deleted.
   */
  usedSecrets: Set<string>;
}

/** A condition that was false: the rest of the run is skipped, and the run succeeds. */
export class ConditionFalse extends Error {}

/** A path through own properties only: "constructor" or "__proto__" in a placeholder find nothing. */
function lookup(scope: StepScope, path: string): unknown {
  return path
    .split(".")
    .reduce<unknown>(
      (value, key) =>
        value !== null && typeof value === "object" && Object.hasOwn(value, key)
          ? (value as Record<string, unknown>)[key]
          : undefined,
      scope,
    );
}

/** Fills {{steps.<id>.output.<path>}} in strings, at any depth; a string that is one placeholder takes the raw value. */
export function render(value: unknown, scope: StepScope): unknown {
  if (typeof value === "string") {
    const whole = /^\{\{\s*([\w.-]+)\s*\}\}$/.exec(value);
    if (whole?.[1]) return lookup(scope, whole[1]) ?? null;
    return value.replace(/\{\{\s*([\w.-]+)\s*\}\}/g, (_, path: string) => {
      const found = lookup(scope, path);
      return found === undefined || found === null
        ? ""
        : typeof found === "object"
          ? JSON.stringify(found)
          : String(found);
    });
  }
  if (Array.isArray(value)) return value.map((v) => render(v, scope));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v, scope)]));
  }
  return value;
}

async function viaIntegration(
  ctx: StepContext,
  integrationId: string,
  action: string,
  input: Record<string, unknown>,
  connectorKey?: string,
) {
  const { connector, call } = await callFor(
    ctx.deps,
    decodeId(integrationId, "Integration").id,
    ctx.organizationId,
    ctx.signal,
  );
  for (const secret of Object.values(call.secrets)) ctx.usedSecrets.add(secret);
  // Checked when the workflow was saved, and again here: a stored definition is not trusted.
  if (connectorKey && connector.key !== connectorKey) {
    throw new AppError("STEP_INVALID", `The step wants a ${connectorKey} integration, not ${connector.key}.`);
  }
  const run = actionOf(connector, action);
  if (!run) throw new AppError("STEP_INVALID", `The ${connector.key} connector has no action "${action}".`);
  ctx.log(`${connector.key}.${action}`);
  // Raced with the signal: not every client (SMTP) can be aborted mid-call.
  const aborted = new Promise<never>((_, reject) => {
    if (ctx.signal.aborted) reject(ctx.signal.reason);
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
  });
  // What comes back (and any error, whose message holds the service's whole answer) is
  // scrubbed of the organization's secrets by the runner, whole, before anything is cut.
  return Promise.race([run({ ...call, idempotencyKey: ctx.idempotencyKey }, input), aborted]);
}

function compare(operator: string, actual: unknown, expected: unknown): boolean {
  switch (operator) {
    case "exists":
      return actual !== undefined && actual !== null;
    case "eq":
      return JSON.stringify(actual) === JSON.stringify(expected);
    case "neq":
      return JSON.stringify(actual) !== JSON.stringify(expected);
    case "contains":
      return Array.isArray(actual)
        ? actual.some((a) => JSON.stringify(a) === JSON.stringify(expected))
        : String(actual ?? "").includes(String(expected));
    default: {
      const [a, b] = [Number(actual), Number(expected)];
      if (Number.isNaN(a) || Number.isNaN(b)) return false;
      return operator === "gt" ? a > b : operator === "gte" ? a >= b : operator === "lt" ? a < b : a <= b;
    }
  }
}

export async function runStep(step: Step, ctx: StepContext): Promise<unknown> {
  const scope: StepScope = { ...ctx.scope, step: { id: step.id, idempotencyKey: ctx.idempotencyKey } };
  const r = (v: unknown) => render(v, scope);
  switch (step.type) {
    case "http_request": {
      const body = step.body === undefined ? undefined : JSON.stringify(r(step.body));
      ctx.log(`${step.method} ${new URL(step.url).host}`);
      const headers = {
        ...(body ? { "content-type": "application/json" } : {}),
        ...(r(step.headers ?? {}) as Record<string, string>),
      };
      const res = await connectorFetch(ctx.deps.config.connectors, String(r(step.url)), {
        method: step.method,
        headers: withIdempotencyKey(headers, step.method, ctx.idempotencyKey),
        body,
        signal: ctx.signal,
      });
      let parsed: unknown = res.body;
      try {
        parsed = res.json();
      } catch {
        // Not JSON: kept as text.
      }
      return { status: res.status, body: parsed };
    }
    case "webhook":
      return viaIntegration(ctx, step.integrationId, "request", {
        method: "POST",
        path: step.path,
        body: r(step.body ?? {}),
      });
    case "slack_message":
      return viaIntegration(ctx, step.integrationId, "postMessage", { text: r(step.text) });
    case "email":
      return viaIntegration(ctx, step.integrationId, "sendMail", {
        to: step.to,
        subject: r(step.subject),
        text: r(step.text),
      });
    case "s3_put":
      return viaIntegration(ctx, step.integrationId, "putObject", {
        key: r(step.key),
        body: r(step.body),
        contentType: step.contentType,
      });
    case "connector":
      if (!step.integrationId) throw new AppError("STEP_INVALID", "Connect an integration to this step first.");
      return viaIntegration(
        ctx,
        step.integrationId,
        step.action,
        r(step.input) as Record<string, unknown>,
        step.connector,
      );
    case "delay":
      ctx.log(`waiting ${step.ms} ms`);
      await sleep(step.ms, undefined, { signal: ctx.signal });
      return { waitedMs: step.ms };
    case "condition": {
      const actual = lookup(scope, step.path);
      const holds = compare(step.operator, actual, r(step.value));
      ctx.log(`${step.path} ${step.operator} ${JSON.stringify(step.value ?? null)}: ${holds}`);
      if (!holds) throw new ConditionFalse();
      return { holds };
    }
    case "transform":
      return r(step.template);
    case "emit_event":
      return emitEvent(ctx, r(step.event));
  }
}

/** Records the event as the run's actor (see RunActor), if they may still record events here. */
async function emitEvent(ctx: StepContext, raw: unknown) {
  const { userId, basis } = ctx.actor;
  const who =
    basis === "STARTED_THE_RUN" ? "the person who started the run" : `the author of version ${ctx.run.version}`;
  if (!userId) throw new AppError("STEP_INVALID", `Events belong to a user, and ${who} is unknown.`);
  const role = await memberRole(ctx.deps.prisma, ctx.organizationId, userId);
  if (!role || !PERMISSIONS[role].has("create")) {
    throw new AppError("STEP_INVALID", `The event would be ${who}'s, who may not record events here (any more).`);
  }
  // The same rules as any recorded event.
  const parsed = eventInput.safeParse(raw);
  if (!parsed.success) throw new AppError("STEP_INVALID", `The event is invalid: ${parsed.error.issues[0]?.message}`);
  const draft = toDraft(parsed.data, new Date());
  // Where it came from, over anything the step wrote under that key: who wrote it is checkable.
  const workflowRun = { ...ctx.run, recordedAs: basis };
  const target = { organizationId: ctx.organizationId, userId };
  const event = await ctx.deps.outbox.transaction(async (tx, notify) => {
    const created = await tx.event.create({
      data: { ...draft, details: { ...(draft.details as object), workflowRun }, ...target },
      select: { id: true },
    });
    noticeRecorded(notify, target, { eventId: created.id });
    return created;
  });
  wakeAnalysis(ctx.deps, ctx.organizationId);
  ctx.log(`event recorded as user ${userId} (${who})`);
  return { eventId: event.id, userId, recordedAs: basis };
}
