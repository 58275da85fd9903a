// Every mutation, allowed, denied or failed, leaves one append-only audit entry per root
// field, written here once for all of them rather than by each resolver. Resolvers add what
// only they know (the row they acted on) through ctx.auditNotes.
import { type ExecutionArgs, type GraphQLError, getOperationAST, Kind, type OperationDefinitionNode } from "graphql";
import { collectFields } from "graphql/execution/collectFields.js";
import { getArgumentValues } from "graphql/execution/values.js";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError, UnauthenticatedError } from "../../errors.ts";
import type { AuditOutcome, Prisma } from "../../generated/prisma/client.ts";
import { toGraphQLError } from "../../schema/errors.ts";
import { decodeId } from "../../schema/globalId.ts";
import { storable } from "../../text.ts";
import { roleIn } from "../auth/access.ts";

// "secrets" holds an integration's credentials, whatever each one is called (a webhook URL is one).
const SECRET_KEY = /pass(word)?|secret|token|^key$|apiKey|authorization/i;

/** Replaces every value under a secret-looking key, at any depth. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value instanceof Date) return value.toISOString();
  // jsonb refuses U+0000 and lone surrogates: a refused input holding them must still be logged.
  if (typeof value === "string") return storable(value);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_KEY.test(k) ? "[redacted]" : redact(v)]),
    );
  }
  return value;
}

function outcomeOf(error: GraphQLError | undefined): { outcome: AuditOutcome; code?: string } {
  if (!error) return { outcome: "ALLOWED" };
  const mapped = toGraphQLError(error);
  const code = String(mapped.extensions.code ?? "INTERNAL_SERVER_ERROR");
  const original = error.originalError;
  // Refusals: not signed in (any 401: bad token, revoked session or key), not allowed, not found.
  const denied =
    original instanceof UnauthenticatedError ||
    original instanceof ForbiddenError ||
    original instanceof NotFoundError ||
    (mapped.extensions.http as { status?: number } | undefined)?.status === 401 ||
    code === "FORBIDDEN" ||
    code === "NOT_FOUND";
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
          const ctx = args.contextValue as Context;
          await writeEntries(ctx, args, operation, result.errors ?? []);
        },
      };
    },
  };
}

/**
 * For a mutation refused before it ran (bad credentials, an invalid document): one DENIED or
 * FAILED entry per root field, with what is known of the caller.
 */
export async function auditRejectedMutation(
  ctx: Pick<Context, "prisma" | "logger" | "ip" | "userAgent" | "requestId">,
  args: Pick<ExecutionArgs, "schema" | "document" | "operationName" | "variableValues">,
  error: GraphQLError,
) {
  const operation = getOperationAST(args.document, args.operationName);
  if (operation?.operation !== "mutation") return;
  const anonymous = { ...ctx, principal: null, memo: new Map(), auditNotes: new Map() } as unknown as Context;
  await writeEntries(anonymous, args, operation, [], error);
}

async function writeEntries(
  ctx: Context,
  args: Pick<ExecutionArgs, "schema" | "document" | "variableValues">,
  operation: OperationDefinitionNode,
  errors: readonly GraphQLError[],
  rejectedWith?: GraphQLError,
) {
  const mutationType = args.schema.getMutationType();
  if (!mutationType) return;
  const fragments = Object.fromEntries(
    args.document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  // The root fields as graphql-js executes them: fragments flattened, @skip/@include applied.
  const rootFields = collectFields(
    args.schema,
    fragments,
    args.variableValues ?? {},
    mutationType,
    operation.selectionSet,
  );
  const fields = mutationType.getFields();
  const principal = ctx.principal;
  const rows: Prisma.AuditLogCreateManyInput[] = [];
  for (const [key, nodes] of rootFields) {
    const node = nodes[0];
    const field = node && fields[node.name.value];
    if (!node || !field) continue;
    let input: Record<string, unknown> = {};
    try {
      input = getArgumentValues(field, node, args.variableValues ?? {});
    } catch {
      // Invalid arguments never reach a resolver; the entry records that it failed.
    }
    const note = ctx.auditNotes.get(key) ?? {};
    // Only an error of the field itself decides; a nested field failing does not undo it.
    // An error without a path refused the whole operation before any field ran (bad variables).
    const { outcome, code } = outcomeOf(
      rejectedWith ?? errors.find((e) => !e.path) ?? errors.find((e) => e.path?.length === 1 && e.path[0] === key),
    );
    const named: Partial<Awaited<ReturnType<typeof fromArgs>>> =
      note.resourceId && note.organizationId !== undefined ? {} : await fromArgs(ctx, input);
    const organizationId =
      note.organizationId !== undefined
        ? note.organizationId
        : (named.organizationId ?? (principal?.kind === "apiKey" ? principal.organizationId : null));
    rows.push({
      organizationId,
      actorUserId: note.actorUserId ?? (principal?.kind === "user" ? principal.userId : null),
      actorApiKeyId: principal?.kind === "apiKey" ? principal.apiKeyId : null,
      action: node.name.value,
      outcome,
      resourceType: note.resourceType ?? named.resourceType ?? null,
      resourceId: note.resourceId ?? named.resourceId ?? null,
      // Bulk data (events, files) is its own record; its entry keeps what the resolver noted.
      details: redact({
        ...(field.extensions?.auditInput === false ? {} : { input }),
        ...(code ? { error: code } : {}),
        ...note.details,
      }) as Prisma.InputJsonValue,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      requestId: ctx.requestId,
    });
  }
  if (!rows.length) return;
  const written: { id: string; organizationId: string | null }[] = [];
  try {
    written.push(
      ...(await ctx.prisma.auditLog.createManyAndReturn({ data: rows, select: { id: true, organizationId: true } })),
    );
  } catch (err) {
    // One bad row (an organization deleted by the same request) must not lose the others:
    // write them one by one, detached from any organization that is gone.
    ctx.logger.error({ err, requestId: ctx.requestId }, "audit entries failed as a batch; writing one by one");
    for (const row of rows) {
      const select = { id: true, organizationId: true } as const;
      await ctx.prisma.auditLog
        .create({ data: row, select })
        .catch(() => ctx.prisma.auditLog.create({ data: { ...row, organizationId: null }, select }))
        .then((entry) => written.push(entry))
        .catch((e: unknown) =>
          ctx.logger.error({ err: e, requestId: ctx.requestId, action: row.action }, "audit entry not written"),
        );
    }
  }
  await Promise.all(
    written.map((entry) =>
      entry.organizationId ? ctx.live.publish("AUDIT", entry.organizationId, { id: entry.id, kind: "CREATED" }) : null,
    ),
  );
}
