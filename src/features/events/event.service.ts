// Ingestion: validate, store, return. Analysis happens after, off the request path: the
// pipeline is told there is work, and finds it again after a restart (analyzedAt is null).
import { randomUUID } from "node:crypto";
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError, ValidationError } from "../../errors.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import type { Notify, Tx } from "../../infra/outbox.ts";
import type { PubSub } from "../../infra/pubsub.ts";
import { activeOrganizationId, authorize } from "../auth/access.ts";
import { type EventDraft, eventInput, MAX_BATCH, toDraft } from "./eventInput.ts";
import { insertEvents } from "./eventInsert.ts";
import { actingUserId } from "./visibility.ts";

/** Wakes the analysis pipeline on every instance; the payload's id is the organization. */
export const ANALYSIS_TOPIC = "analysis:pending";

export interface IngestTarget {
  organizationId: string;
  /** The member the events belong to: the signed-in user, or the API key's creator. */
  userId: string;
  /** The organization's retention: nothing older is accepted. */
  oldest: Date;
}

/** How long an API key's ingestion trusts a retention it read (users read it with their role). */
const RETENTION_TTL_MS = 10_000;
const RETENTION_CACHE_MAX = 10_000;
const retentionCache = new Map<string, { days: number; until: number }>();

/** A retention changed here: this instance's ingestion uses the new one at once. */
export function forgetRetention(organizationId: string) {
  retentionCache.delete(organizationId);
}

/**
 * The caller's role and the organization's retention in one statement for a user (the role
 * joins the request's memo, so authorize asks nothing more); for an API key the role is the
 * principal's, and the retention comes from a cache of RETENTION_TTL_MS.
 */
async function roleAndRetention(ctx: Context, organizationId: string): Promise<number | null> {
  const principal = ctx.principal;
  const roleKey = `role:${organizationId}`;
  if (principal?.kind === "user" && !ctx.memo.has(roleKey)) {
    const membership = ctx.prisma.organizationMember.findUnique({
      where: { organizationId_userId: { organizationId, userId: principal.userId } },
      select: { role: true, organization: { select: { eventRetentionDays: true } } },
    });
    const role = membership.then((m) => m?.role ?? null);
    // Its failure is the awaited one's below; this copy must not count as unhandled.
    role.catch(() => {});
    ctx.memo.set(roleKey, role);
    return (await membership)?.organization.eventRetentionDays ?? null;
  }
  const cached = retentionCache.get(organizationId);
  if (cached && cached.until > Date.now()) return cached.days;
  const org = await ctx.prisma.organization.findUnique({
    where: { id: organizationId },
    select: { eventRetentionDays: true },
  });
  if (!org) return null;
  if (retentionCache.size >= RETENTION_CACHE_MAX) retentionCache.clear();
  retentionCache.set(organizationId, { days: org.eventRetentionDays, until: Date.now() + RETENTION_TTL_MS });
  return org.eventRetentionDays;
}

/** Where events go: the named organization, else the active one; the caller must be allowed to create. */
export async function ingestTarget(ctx: Context, organizationId: string | null | undefined): Promise<IngestTarget> {
  const orgId = organizationId ?? (await activeOrganizationId(ctx));
  const retentionDays = await roleAndRetention(ctx, orgId);
  await authorize(ctx, orgId, "create");
  // A member's organization exists; this answers an API key whose organization just went.
  if (retentionDays === null) throw new NotFoundError("Organization");
  const userId = actingUserId(ctx);
  // A key whose creator is gone stops working at authentication; this is the backstop.
  if (!userId) throw new ForbiddenError("Events belong to a user; this key has none.");
  return {
    organizationId: orgId,
    userId,
    oldest: new Date(Date.now() - retentionDays * 86_400_000),
  };
}

export function rowOf(target: IngestTarget, draft: EventDraft, uploadId?: string): Prisma.EventCreateManyInput {
  return {
    ...draft,
    details: draft.details as Prisma.InputJsonObject,
    organizationId: target.organizationId,
    userId: target.userId,
    uploadId,
  };
}

export interface FieldError {
  path: string;
  message: string;
}

/**
 * Validates events against the rules and the organization's retention (an event older than
 * it would be deleted by the next cleanup, and could no longer be counted exactly). `seen`
 * spans calls, so an import's client ids are unique across the whole file.
 */
export function validateEvents(
  inputs: readonly unknown[],
  options: { oldest: Date; pathOf: (i: number) => string; seen?: Map<string, string> },
) {
  const now = new Date();
  const seen = options.seen ?? new Map<string, string>();
  const drafts: EventDraft[] = [];
  const fieldErrors: FieldError[] = [];
  inputs.forEach((input, i) => {
    const at = options.pathOf(i);
    const parsed = eventInput.safeParse(input);
    if (!parsed.success) {
      for (const issue of parsed.error.issues)
        fieldErrors.push({ path: [at, ...issue.path].join("."), message: issue.message });
      return;
    }
    const draft = toDraft(parsed.data, now);
    if (draft.occurredAt < options.oldest) {
      fieldErrors.push({
        path: `${at}.occurredAt`,
        message: `is older than the organization's retention (${options.oldest.toISOString()})`,
      });
      return;
    }
    const id = draft.clientEventId;
    if (id !== null) {
      const first = seen.get(id);
      if (first !== undefined) fieldErrors.push({ path: `${at}.clientEventId`, message: `repeats the id of ${first}` });
      else seen.set(id, at);
    }
    drafts.push(draft);
  });
  return { drafts, fieldErrors };
}

export function invalidEvents(fieldErrors: FieldError[]) {
  const shown = fieldErrors.slice(0, 5).map((f) => `${f.path}: ${f.message}`);
  const more = fieldErrors.length > 5 ? ` (and ${fieldErrors.length - 5} more)` : "";
  return new ValidationError(`Invalid events, none stored: ${shown.join("; ")}${more}`, fieldErrors.slice(0, 200));
}

export interface BatchResult {
  organizationId: string;
  received: number;
  stored: number;
  duplicates: number;
}

/**
 * Validates a batch, then stores it in one transaction with its live notice and with what
 * `alsoIn` writes there (the mutation's audit entry), so that one commit holds all of it.
 */
export async function recordBatch({
  ctx,
  organizationId,
  events,
  alsoIn,
}: {
  ctx: Context;
  organizationId?: string | null;
  events: readonly unknown[];
  alsoIn?: (tx: Tx, notify: Notify, result: BatchResult) => Promise<void>;
}): Promise<BatchResult> {
  const target = await ingestTarget(ctx, organizationId);
  if (events.length === 0 || events.length > MAX_BATCH) {
    throw new ValidationError(`A batch holds 1 to ${MAX_BATCH} events; this one has ${events.length}.`, [
      { path: "events", message: `must hold 1 to ${MAX_BATCH} events` },
    ]);
  }
  const { drafts, fieldErrors } = validateEvents(events, { oldest: target.oldest, pathOf: (i) => `events.${i}` });
  if (fieldErrors.length) throw invalidEvents(fieldErrors);
  const result = await ctx.outbox.transaction(async (tx, notify) => {
    const count = await insertEvents(tx, target, drafts);
    if (count > 0) noticeRecorded(notify, target, { count });
    const stored: BatchResult = {
      organizationId: target.organizationId,
      received: drafts.length,
      stored: count,
      duplicates: drafts.length - count,
    };
    await alsoIn?.(tx, notify, stored);
    return stored;
  });
  if (result.stored > 0) wakeAnalysis(ctx, target.organizationId);
  return result;
}

/** Validates one event for `target`; throws BAD_USER_INPUT naming each field. */
export function validateEvent(target: IngestTarget, input: unknown): EventDraft {
  const { drafts, fieldErrors } = validateEvents([input], { oldest: target.oldest, pathOf: () => "event" });
  if (fieldErrors.length) {
    throw new ValidationError(
      `Invalid event: ${fieldErrors.map((f) => `${f.path}: ${f.message}`).join("; ")}`,
      fieldErrors,
    );
  }
  return drafts[0] as EventDraft;
}

/** One event; a client id the same user sent before returns the event already stored. */
export async function recordEvent({
  ctx,
  target,
  draft,
  uploadId,
}: {
  ctx: Context;
  target: IngestTarget;
  draft: EventDraft;
  uploadId?: string;
}) {
  try {
    const event = await ctx.outbox.transaction(async (tx, notify) => {
      const created = await tx.event.create({ data: rowOf(target, draft, uploadId), select: { id: true } });
      noticeRecorded(notify, target, { eventId: created.id });
      return created;
    });
    wakeAnalysis(ctx, target.organizationId);
    return event;
  } catch (err) {
    if (!uniqueViolation(err) || !draft.clientEventId) throw err;
    return ctx.prisma.event.findFirstOrThrow({
      where: { organizationId: target.organizationId, userId: target.userId, clientEventId: draft.clientEventId },
      select: { id: true },
    });
  }
}

/** Tells the pipeline there is work: events stored, or an upload's events made analysable by its completion. */
export function wakeAnalysis(deps: { pubsub: PubSub }, organizationId: string) {
  deps.pubsub.publish(ANALYSIS_TOPIC, "all", { id: organizationId, kind: "CREATED" });
}

/**
 * The live notice of stored events, in their transaction: one event by id, a batch as a
 * summary of how many were stored. The pipeline is woken (wakeAnalysis) after the commit.
 */
export function noticeRecorded(
  notify: Notify,
  target: { organizationId: string; userId: string },
  recorded: { eventId: string } | { count: number },
) {
  const single = "eventId" in recorded;
  notify("EVENTS", target.organizationId, {
    id: single ? recorded.eventId : randomUUID(),
    kind: "CREATED",
    data: { userId: target.userId, count: single ? 1 : recorded.count, single: single ? 1 : 0 },
  });
}
