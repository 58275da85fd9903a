// Suggestions from a user's patterns: regenerated when the patterns change and on demand.
// One open suggestion per trigger (a unique index on openTriggerKey); an idea the user
// dismissed or applied is not offered again.
import type { Context } from "../../context.ts";
import { ConflictError, ForbiddenError, NotFoundError } from "../../errors.ts";
import type { Prisma, PrismaClient } from "../../generated/prisma/client.ts";
import { uniqueViolation } from "../../infra/dbErrors.ts";
import type { Outbox } from "../../infra/outbox.ts";
import { activeOrganizationId, authorize } from "../auth/access.ts";
import { actingUserId } from "../events/visibility.ts";
import { analyseUserNow } from "../patterns/analysis.service.ts";
import { draftWorkflowFor } from "./draftWorkflow.ts";
import { buildSuggestions, type SuggestionDraft } from "./rules.ts";

const RECENT_MS = 7 * 86_400_000;

export async function generateSuggestions(
  deps: { prisma: PrismaClient; outbox: Outbox },
  organizationId: string,
  userId: string,
): Promise<string[]> {
  const { prisma } = deps;
  const now = new Date();
  const config = await prisma.userConfig.findUnique({ where: { userId } });
  if (config && !config.suggestionsEnabled) return [];
  const patterns = await prisma.pattern.findMany({
    where: { organizationId, userId, lastUsedAt: { gte: new Date(now.getTime() - RECENT_MS) } },
  });
  // Every idea first: one dismissed or applied must leave its place to the next, not a gap.
  const ideas = buildSuggestions(patterns, now, {
    maxSuggestions: 1000,
    useRealFilePaths: config?.useRealFilePaths ?? true,
  });
  const known = await prisma.suggestion.findMany({
    where: { organizationId, userId, triggerKey: { in: ideas.map((d) => d.triggerKey) } },
    select: { id: true, triggerKey: true, state: true },
  });
  const closed = new Set(known.filter((s) => s.state !== "OPEN").map((s) => s.triggerKey));
  const drafts = ideas.filter((d) => !closed.has(d.triggerKey)).slice(0, config?.maxSuggestions ?? 5);
  const ids: string[] = [];
  for (const draft of drafts) {
    const mine = known.filter((s) => s.triggerKey === draft.triggerKey);
    const open = mine[0];
    if (open) {
      await prisma.suggestion.update({ where: { id: open.id }, data: content(draft) });
      ids.push(open.id);
      continue;
    }
    try {
      const created = await deps.outbox.transaction(async (tx, notify) => {
        const row = await tx.suggestion.create({
          data: {
            organizationId,
            userId,
            triggerKey: draft.triggerKey,
            openTriggerKey: draft.triggerKey,
            ...content(draft),
          },
          select: { id: true },
        });
        notify("SUGGESTIONS", organizationId, { id: row.id, kind: "CREATED", data: { userId } });
        return row;
      });
      ids.push(created.id);
    } catch (err) {
      // Another instance opened the same idea a moment ago: one is enough.
      if (!uniqueViolation(err)) throw err;
    }
  }
  return ids;
}

function content(draft: SuggestionDraft) {
  const { triggerKey: _, ...rest } = draft;
  return rest;
}

/** On demand: analyse what waits, regenerate, and return the caller's open suggestions. */
export async function generateNow({ ctx, organizationId }: { ctx: Context; organizationId?: string | null }) {
  const orgId = organizationId ?? (await activeOrganizationId(ctx));
  await authorize(ctx, orgId, "create");
  const userId = actingUserId(ctx);
  if (!userId) return { organizationId: orgId, userId: null };
  await analyseUserNow(ctx, orgId, userId);
  await generateSuggestions(ctx, orgId, userId);
  return { organizationId: orgId, userId };
}

/** A suggestion the caller may act on: their own. Another's they can see is FORBIDDEN; else NOT_FOUND. */
async function ownSuggestion(ctx: Context, id: string) {
  const suggestion = await ctx.prisma.suggestion.findUnique({ where: { id } });
  if (!suggestion) throw new NotFoundError("Suggestion");
  const role = await authorize(ctx, suggestion.organizationId, "read", "Suggestion");
  if (suggestion.userId !== actingUserId(ctx)) {
    if (role === "OWNER" || role === "ADMIN") throw new ForbiddenError("Only its owner can act on a suggestion.");
    throw new NotFoundError("Suggestion");
  }
  return suggestion;
}

async function close(ctx: Context, id: string, data: Prisma.SuggestionUpdateInput) {
  const suggestion = await ownSuggestion(ctx, id);
  await authorize(ctx, suggestion.organizationId, "update", "Suggestion");
  return ctx.prisma.suggestion.update({ where: { id }, data: { ...data, openTriggerKey: null } });
}

export async function dismissSuggestion({ ctx, id }: { ctx: Context; id: string }) {
  const suggestion = await ownSuggestion(ctx, id);
  if (suggestion.state === "DISMISSED") return suggestion;
  if (suggestion.state === "APPLIED") {
    throw new ConflictError(
      "SUGGESTION_APPLIED",
      "This suggestion is already a workflow; delete the workflow instead.",
    );
  }
  return close(ctx, id, { state: "DISMISSED", dismissedAt: new Date() });
}

export async function bookmarkSuggestion({ ctx, id, bookmarked }: { ctx: Context; id: string; bookmarked: boolean }) {
  await ownSuggestion(ctx, id);
  return ctx.prisma.suggestion.update({ where: { id }, data: { bookmarkedAt: bookmarked ? new Date() : null } });
}

export async function viewSuggestion({ ctx, id }: { ctx: Context; id: string }) {
  const suggestion = await ownSuggestion(ctx, id);
  if (suggestion.viewedAt) return suggestion;
  return ctx.prisma.suggestion.update({ where: { id }, data: { viewedAt: new Date() } });
}

/** Creates a draft workflow (version 1) from the suggestion and marks it applied, atomically. */
export async function applySuggestion({ ctx, id }: { ctx: Context; id: string }) {
  const suggestion = await ownSuggestion(ctx, id);
  await authorize(ctx, suggestion.organizationId, "create", "Suggestion");
  const authorId = actingUserId(ctx);
  return ctx.prisma.$transaction(async (tx) => {
    // Claims the suggestion first: of two concurrent applies, one finds it no longer open.
    const claimed = await tx.suggestion.updateMany({
      where: { id, state: { not: "APPLIED" } },
      data: { state: "APPLIED", appliedAt: new Date(), dismissedAt: null, openTriggerKey: null },
    });
    if (claimed.count === 0) {
      const existing = await tx.workflow.findFirst({ where: { suggestionId: id }, select: { id: true } });
      if (existing) return { suggestionId: id, workflowId: existing.id };
    }
    const draft = draftWorkflowFor(suggestion);
    const workflow = await tx.workflow.create({
      data: {
        organizationId: suggestion.organizationId,
        createdById: authorId,
        suggestionId: id,
        name: draft.name,
        description: draft.description,
        definition: draft.definition as Prisma.InputJsonObject,
        status: "DRAFT",
        currentVersion: 1,
      },
    });
    await tx.workflowVersion.create({
      data: {
        organizationId: suggestion.organizationId,
        workflowId: workflow.id,
        number: 1,
        name: draft.name,
        description: draft.description,
        definition: draft.definition as Prisma.InputJsonObject,
        changeSummary: "Created from a suggestion",
        authorId,
      },
    });
    return { suggestionId: id, workflowId: workflow.id };
  });
}
