// Every mutation, allowed, denied or failed, leaves one append-only audit entry per root
// field, written here once for all of them rather than by each resolver. Resolvers add what
// only they know (the row they acted on) through ctx.auditNotes.
import {
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLError,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  parse,
} from "graphql";
import { collectFields } from "graphql/execution/collectFields.js";
import { getArgumentValues } from "graphql/execution/values.js";
import { type GraphQLParams, isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../../context.ts";
import { ForbiddenError, NotFoundError, UnauthenticatedError } from "../../errors.ts";
import type { AuditOutcome, Prisma } from "../../generated/prisma/client.ts";
import { toGraphQLError } from "../../schema/errors.ts";
import { decodeId } from "../../schema/globalId.ts";
import { schema as yogaSchema } from "../../schema/schema.ts";
import { lateResult } from "../../server/operationDeadline.ts";
import { roleIn } from "../auth/access.ts";
import { entryRow } from "./entry.ts";

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

/** Who sent a request, for entries of mutations refused before a context existed. */
export type Caller = Pick<Context, "ip" | "userAgent" | "requestId">;

/**
 * `deps` and `callerOf` serve Yoga's own HTTP path (GET, SSE, application/graphql+json…): a
 * mutation it refuses before running it (bad credentials, an invalid document) never reaches
 * onExecute, so it is audited when its result is sent. The fast path and graphql-ws, which
 * refuse such operations themselves, call auditRejectedMutation directly.
 */
export function useAudit<S extends object>(
  deps: Pick<Context, "prisma" | "logger" | "audit">,
  callerOf: (serverContext: S) => Caller,
): Plugin<Context, S> {
  const unexecuted = new WeakMap<Request, GraphQLParams>();
  return {
    onParams({ params, request }) {
      if (typeof params.query === "string") unexecuted.set(request, params);
    },
    async onResultProcess({ request, result, serverContext }) {
      const params = unexecuted.get(request);
      if (!params?.query) return;
      unexecuted.delete(request);
      if (Array.isArray(result) || isAsyncIterable(result) || !result.errors?.[0]) return;
      let document: DocumentNode;
      try {
        document = parse(params.query);
      } catch {
        // Nothing to attribute: a document that does not parse names no root field.
        return;
      }
      await auditRejectedMutation(
        { ...deps, ...callerOf(serverContext) },
        { schema: yogaSchema, document, operationName: params.operationName, variableValues: params.variables },
        toGraphQLError(result.errors[0]),
      );
    },
    onExecute({ args }) {
      const request = (args.contextValue as { request?: Request }).request;
      if (request) unexecuted.delete(request);
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== "mutation") return;
      return {
        onExecuteDone: async ({ result }) => {
          if (isAsyncIterable(result)) return;
          const ctx = args.contextValue as Context;
          // Answered TIMEOUT while it ran on (server/operationDeadline.ts): recorded as it ends.
          const later = lateResult(ctx);
          if (later) {
            void later
              .then((real) => writeEntries(ctx, args, operation, real.errors ?? [], undefined, real.data === null))
              .catch((err: unknown) => ctx.logger.error({ err, requestId: ctx.requestId }, "audit entry not written"));
            return;
          }
          await writeEntries(ctx, args, operation, result.errors ?? [], undefined, result.data === null);
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
  ctx: Pick<Context, "prisma" | "logger" | "audit"> & Caller,
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
  halted = false,
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
  const changed: {
    organizations: Set<string | null | undefined>;
    users: Set<string | null | undefined>;
    everything?: boolean;
  } = { organizations: new Set(), users: new Set() };
  // Root fields of a mutation run one after another, and graphql-js stops at one whose error
  // nulls `data` (a non-null field): the last one with an error. Those after it never ran.
  const keys = [...rootFields.keys()];
  const failed = new Set(errors.map((e) => e.path?.[0]));
  const lastRan = halted ? keys.findLastIndex((k) => failed.has(k)) : -1;
  for (const [key, nodes] of rootFields) {
    const node = nodes[0];
    const field = node && Object.hasOwn(fields, node.name.value) ? fields[node.name.value] : undefined;
    if (!node || !field) continue;
    let input: Record<string, unknown> = {};
    try {
      input = getArgumentValues(field, node, args.variableValues ?? {});
    } catch {
      // Invalid arguments never reach a resolver; the entry records that it failed.
    }
    const note = ctx.auditNotes.get(key) ?? {};
    // Its resolver wrote the entry with its change, in one transaction (audit.ts auditInTransaction).
    if (note.written) {
      changed.users.add(note.actorUserId ?? (principal?.kind === "user" ? principal.userId : null));
      continue;
    }
    // Only an error of the field itself decides; a nested field failing does not undo it.
    // An error without a path refused the whole operation before any field ran (bad variables).
    const { outcome, code } =
      lastRan >= 0 && keys.indexOf(key) > lastRan
        ? { outcome: "FAILED" as const, code: "NOT_EXECUTED" }
        : outcomeOf(
            rejectedWith ??
              errors.find((e) => !e.path) ??
              errors.find((e) => e.path?.length === 1 && e.path[0] === key),
          );
    // A lookup that fails costs this entry its organization, not the entries of every root field.
    const named: Partial<Awaited<ReturnType<typeof fromArgs>>> =
      note.resourceId && note.organizationId !== undefined ? {} : await fromArgs(ctx, input).catch(() => ({}));
    const organizationId =
      note.organizationId !== undefined
        ? note.organizationId
        : (named.organizationId ?? (principal?.kind === "apiKey" ? principal.organizationId : null));
    rows.push(
      entryRow(ctx, {
        action: node.name.value,
        outcome,
        organizationId,
        resourceType: note.resourceType ?? named.resourceType ?? null,
        resourceId: note.resourceId ?? named.resourceId ?? null,
        actorUserId: note.actorUserId,
        details: {
          ...(field.extensions?.auditInput === false ? {} : { input }),
          ...(code ? { error: code } : {}),
          ...note.details,
        },
      }),
    );
  }
  if (rows.length) await ctx.audit.write(rows, ctx.requestId);
  // What the caller may now read differently: the organizations acted in, and each actor's own
  // data (their audit trail, sessions, memberships). After the write: the change has committed.
  const unplaced = new Set<string>();
  for (const row of rows) {
    changed.organizations.add(row.organizationId);
    changed.users.add(row.actorUserId);
    // A change the entry names no organization for (a profile, or a resource it could not
    // place) may show in any of the actor's organizations: all of them have changed.
    if (row.outcome === "ALLOWED" && !row.organizationId && row.actorUserId) unplaced.add(row.actorUserId);
  }
  if (unplaced.size && ctx.responseCache) {
    const memberships = await ctx.prisma.organizationMember
      .findMany({ where: { userId: { in: [...unplaced] } }, select: { organizationId: true } })
      .catch(() => null);
    if (memberships) for (const m of memberships) changed.organizations.add(m.organizationId);
    else changed.everything = true;
  }
  ctx.responseCache?.invalidate(changed);
}
