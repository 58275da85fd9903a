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
import { isSecretName } from "../../secretNames.ts";
import { lateResult } from "../../server/operationDeadline.ts";
import { storable } from "../../text.ts";
import { roleIn } from "../auth/access.ts";

// An entry is a record of what was asked, not a copy of it: past these, values become a
// marker. The depth also keeps well below the ~120 levels past which the database refuses a
// JSON value; input is refused deeper than MAX_INPUT_DEPTH (at most 64) before it gets here.
const MAX_DEPTH = 80;
const MAX_VALUES = 10_000;
export const TRUNCATED = "[truncated]";

/** Sets a key as JSON.parse would: "__proto__" is a key like any other. */
function put(target: object, key: string | number, value: unknown) {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * A storable copy: every value under a secret-looking key replaced, text jsonb refuses made
 * storable, nesting and size capped. Iterative: no input can overflow the stack here, which
 * would lose the entry of a mutation that already ran.
 */
export function redact(value: unknown): unknown {
  const root = {} as { value?: unknown };
  const work: { from: unknown; into: object; key: string | number; depth: number }[] = [
    { from: value, into: root, key: "value", depth: 0 },
  ];
  let budget = MAX_VALUES - 1;
  // Children are taken from the budget when their container is copied, so the work stays bounded.
  const reserve = (wanted: number) => {
    const granted = Math.max(0, Math.min(wanted, budget));
    budget -= granted;
    return granted;
  };
  for (let job = work.pop(); job; job = work.pop()) {
    const { from, into, key, depth } = job;
    // jsonb refuses U+0000 and lone surrogates: a refused input holding them must still be logged.
    if (typeof from === "string") put(into, key, storable(from));
    else if (from instanceof Date) put(into, key, from.toISOString());
    else if (from === null || typeof from !== "object") put(into, key, from);
    else if (depth >= MAX_DEPTH) put(into, key, TRUNCATED);
    else if (Array.isArray(from)) {
      const kept = reserve(from.length);
      // Filled in below; a marker after what was kept.
      const copy: unknown[] = new Array(kept);
      if (kept < from.length) copy.push(TRUNCATED);
      put(into, key, copy);
      for (let i = kept - 1; i >= 0; i--) work.push({ from: from[i], into: copy, key: i, depth: depth + 1 });
    } else {
      const entries = Object.entries(from);
      const kept = reserve(entries.length);
      const copy = {};
      put(into, key, copy);
      const children: typeof work = [];
      for (const [k, v] of entries.slice(0, kept)) {
        const name = storable(k);
        // Set now (redacted, or a placeholder filled below) so the copy keeps the input's key order.
        const secret = isSecretName(k);
        put(copy, name, secret ? "[redacted]" : null);
        if (!secret) children.push({ from: v, into: copy, key: name, depth: depth + 1 });
      }
      // How many keys were left out, under a key no input has.
      if (kept < entries.length) put(copy, TRUNCATED, entries.length - kept);
      for (let i = children.length - 1; i >= 0; i--) work.push(children[i] as (typeof work)[number]);
    }
  }
  return root.value;
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
  if (rows.length) await ctx.audit.write(rows, ctx.requestId);
}
