// Every mutation, allowed, denied or failed, leaves one append-only audit entry per root
// field, written here once for all of them rather than by each resolver. Resolvers add what
// only they know (the row they acted on) through ctx.auditNotes.
import { type ExecutionArgs, type GraphQLError, getOperationAST, Kind, type SelectionNode } from "graphql";
import { getArgumentValues } from "graphql/execution/values.js";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError, UnauthenticatedError } from "../../errors.ts";
import type { AuditOutcome, Prisma } from "../../generated/prisma/client.ts";
import { toGraphQLError } from "../../schema/errors.ts";
import { decodeId } from "../../schema/globalId.ts";
import { roleIn } from "../auth/access.ts";

const SECRET_KEY = /pass(word)?|secret|token|^key$|apiKey|authorization/i;

/** Replaces every value under a secret-looking key, at any depth. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value instanceof Date) return value.toISOString();
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? "[redacted]" : redact(v)]),
    );
  }
  return value;
}

function outcomeOf(error: GraphQLError | undefined): { outcome: AuditOutcome; code?: string } {
  if (!error) return { outcome: "ALLOWED" };
  const code = String(toGraphQLError(error).extensions.code ?? "INTERNAL_SERVER_ERROR");
  const original = error.originalError;
  const denied =
    original instanceof UnauthenticatedError || original instanceof ForbiddenError || original instanceof NotFoundError;
  return { outcome: denied ? "DENIED" : "FAILED", code };
}

function decoded(value: unknown) {
  if (typeof value !== "string") return undefined;
  try {
    return decodeId(value);
  } catch {
    return undefined;
  }
}

/**
 * What a mutation names in its arguments, for entries whose resolver never ran (denied,
 * invalid). An organization is attached only when the caller belongs to it: a refused
 * member's attempt shows in that organization's log; an outsider's stays in their own.
 */
async function fromArgs(ctx: Context, args: Record<string, unknown>) {
  const input = { ...args, ...(args.input as Record<string, unknown> | undefined) };
  const resource = decoded(input.id) ?? decoded(input.organizationId);
  const org = [decoded(input.organizationId), decoded(input.id)].find((d) => d?.typename === "Organization");
  const organizationId = org && (await roleIn(ctx, org.id)) ? org.id : undefined;
  return { resourceType: resource?.typename, resourceId: resource?.id, organizationId };
}

export function useAudit(): Plugin<Context> {
  return {
    onExecute({ args }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== "mutation") return;
      return {
        onExecuteDone: async ({ result }) => {
          if (isAsyncIterable(result)) return;
          await writeEntries(
            args as ExecutionArgs & { contextValue: Context },
            operation.selectionSet.selections,
            result.errors ?? [],
          );
        },
      };
    },
  };
}

async function writeEntries(
  args: ExecutionArgs & { contextValue: Context },
  selections: readonly SelectionNode[],
  errors: readonly GraphQLError[],
) {
  const ctx = args.contextValue;
  const fields = args.schema.getMutationType()?.getFields() ?? {};
  const principal = ctx.principal;
  const rows: Prisma.AuditLogCreateManyInput[] = [];
  for (const selection of selections) {
    if (selection.kind !== Kind.FIELD) continue;
    const field = fields[selection.name.value];
    if (!field) continue;
    const key = selection.alias?.value ?? selection.name.value;
    let input: Record<string, unknown> = {};
    try {
      input = getArgumentValues(field, selection, args.variableValues ?? {});
    } catch {
      // Invalid arguments never reach a resolver; the entry records that it failed.
    }
    const note = ctx.auditNotes.get(key) ?? {};
    const { outcome, code } = outcomeOf(errors.find((e) => e.path?.[0] === key));
    const named: Partial<Awaited<ReturnType<typeof fromArgs>>> =
      note.resourceId && note.organizationId ? {} : await fromArgs(ctx, input);
    rows.push({
      organizationId:
        note.organizationId ?? named.organizationId ?? (principal?.kind === "apiKey" ? principal.organizationId : null),
      actorUserId: note.actorUserId ?? (principal?.kind === "user" ? principal.userId : null),
      actorApiKeyId: principal?.kind === "apiKey" ? principal.apiKeyId : null,
      action: selection.name.value,
      outcome,
      resourceType: note.resourceType ?? named.resourceType ?? null,
      resourceId: note.resourceId ?? named.resourceId ?? null,
      details: redact({ input, ...(code ? { error: code } : {}), ...note.details }) as Prisma.InputJsonValue,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      requestId: ctx.requestId,
    });
  }
  if (!rows.length) return;
  try {
    await ctx.prisma.auditLog.createMany({ data: rows });
  } catch (err) {
    ctx.logger.error({ err, requestId: ctx.requestId }, "audit entries not written");
  }
}
