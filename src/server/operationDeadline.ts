// OPERATION_TIMEOUT_MS: a query or mutation still running after it is answered TIMEOUT
// instead of holding its client (and a load balancer's connection) open. On every transport:
// an envelop plugin around execute. Subscriptions (graphql-ws, SSE) are long-lived by design
// and go through subscribe, which this leaves alone.
//
// Queries: the executor gets an abort signal (resolvers see it as info.signal) and stops
// waiting for what is still pending; the answer is retryable (503, Retry-After), since a
// query changes nothing. Prisma calls already sent finish on their own.
// Mutations: stopping one halfway helps nobody and may hide a commit, so it runs to its end
// in the background; the client is told its outcome is unknown (not that it failed), with no
// 503 that would invite an automatic resend, and the audit entry is written from the real
// result once it comes (lateResult).
// A mutation long by design (an import of up to IMPORT_MAX_LINES lines, whose progress a
// subscription reports) opts out with `extensions: { operationDeadline: false }` on its field.
import {
  type DocumentNode,
  type ExecutionResult,
  GraphQLError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { Context } from "../context.ts";
import { deadlineSignal } from "../infra/deadline.ts";
import type { Logger } from "../infra/logger.ts";
import { RETRY_AFTER_SECONDS } from "../infra/unavailable.ts";

const late = new WeakMap<object, Promise<ExecutionResult>>();

/** The real result of a mutation answered TIMEOUT, keyed by its context; undefined for any other. */
export function lateResult(context: object): Promise<ExecutionResult> | undefined {
  return late.get(context);
}

function timeoutError(ms: number, mutation: boolean) {
  return mutation
    ? new GraphQLError(
        `The mutation did not finish within ${ms} ms. It may still complete: check its effect before sending it again.`,
        { extensions: { code: "TIMEOUT", retryable: false, outcome: "UNKNOWN" } },
      )
    : new GraphQLError(`The operation did not finish within ${ms} ms; retry it shortly.`, {
        extensions: {
          code: "TIMEOUT",
          retryable: true,
          http: { status: 503, headers: { "Retry-After": String(RETRY_AFTER_SECONDS) } },
        },
      });
}

const PASSED = Symbol("deadline passed");

/** Whether a root field of the mutation opted out (with @skip or not: one that may run counts). */
function optedOut(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): boolean {
  const fields = schema.getMutationType()?.getFields() ?? {};
  const fragments = new Map<string, SelectionSetNode>();
  for (const d of document.definitions)
    if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d.selectionSet);
  const seen = new Set<string>();
  const work: SelectionSetNode[] = [operation.selectionSet];
  for (let set = work.pop(); set; set = work.pop()) {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const field = Object.hasOwn(fields, selection.name.value) ? fields[selection.name.value] : undefined;
        if (field?.extensions?.operationDeadline === false) return true;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) work.push(selection.selectionSet);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) work.push(fragment);
      }
    }
  }
  return false;
}

export function useOperationDeadline(ms: number, logger: Logger): Plugin<Context> {
  if (ms <= 0) return {};
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (!operation || operation.operation === "subscription") return;
      const mutation = operation.operation === "mutation";
      if (mutation && optedOut(args.schema, args.document, operation)) return;
      setExecuteFn((execArgs) => {
        const parent = (execArgs as { signal?: AbortSignal }).signal;
        const deadline = deadlineSignal(parent, ms);
        const running = Promise.resolve().then(() =>
          executeFn(mutation ? execArgs : ({ ...execArgs, signal: deadline.signal } as typeof execArgs)),
        );
        const passed = new Promise<typeof PASSED>((resolve) =>
          deadline.signal.addEventListener("abort", () => deadline.timedOut() && resolve(PASSED), { once: true }),
        );
        return Promise.race([running, passed]).then(
          (winner) => {
            deadline.clear();
            if (winner !== PASSED) return winner;
            const ctx = execArgs.contextValue as Context;
            logger.warn(
              { requestId: ctx.requestId, operation: operation.name?.value ?? null, kind: operation.operation, ms },
              "operation passed its deadline",
            );
            // Settles either way: nothing waits on a query's, and the audit on a mutation's.
            const settled: Promise<ExecutionResult> = running.then(
              (result) => (isAsyncIterable(result) ? { data: null } : result),
              (err: unknown) => ({
                data: null,
                errors: [
                  err instanceof GraphQLError
                    ? err
                    : new GraphQLError("Unexpected error.", { originalError: err as Error }),
                ],
              }),
            );
            if (mutation) {
              late.set(ctx, settled);
              void settled.then((result) =>
                logger.info(
                  {
                    requestId: ctx.requestId,
                    errors: result.errors?.map((e) => e.extensions?.code ?? "INTERNAL_SERVER_ERROR"),
                  },
                  "mutation ended after its deadline",
                ),
              );
            }
            return { data: null, errors: [timeoutError(ms, mutation)] };
          },
          (err: unknown) => {
            deadline.clear();
            throw err;
          },
        );
      });
    },
  };
}
