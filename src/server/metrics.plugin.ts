// Operation metrics as an envelop plugin, so the fast path, Yoga's handler (GET, multipart,
// SSE) and graphql-ws count alike: one observation per operation, from parse to its result,
// with its outcome, whichever phase ended it (a syntax error, a validation or limit refusal, a
// context error such as bad credentials, or execution), and every error by its code.
//
// Registered before every plugin that may stop execution (setResultAndStopExecution skips the
// onExecute/onSubscribe hooks of the plugins after it), so refusals are seen too.
import { type ExecutionResult, type GraphQLError, getOperationAST } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { Metrics } from "../infra/metrics.ts";
import { toGraphQLError } from "../schema/errors.ts";

interface Operation {
  started: number;
  name: string | undefined;
  type: string;
  /** Passed validation: only then may its name take a series of its own. */
  valid: boolean;
  done: boolean;
}

type Outcome = "ok" | "error";

const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  typeof value === "object" && value !== null && Symbol.asyncIterator in value;

export function useMetrics(metrics: Metrics): Plugin {
  // Keyed by the envelop context: one object from parse to execution on every path.
  const operations = new WeakMap<object, Operation>();

  const countErrors = (errors: readonly unknown[] | undefined) => {
    for (const error of errors ?? []) {
      metrics.errors.inc({ code: metrics.errorCode(toGraphQLError(error).extensions.code) });
    }
  };

  const finish = (context: object, outcome: Outcome, errors?: readonly unknown[]) => {
    countErrors(errors);
    const op = operations.get(context);
    if (!op || op.done) return;
    op.done = true;
    metrics.operations.observe(
      { operation_name: metrics.operationName(op.name, op.valid), operation_type: op.type, outcome },
      (performance.now() - op.started) / 1000,
    );
  };

  const outcomeOf = (result: ExecutionResult) => (result.errors?.length ? "error" : "ok");

  return {
    onPluginInit({ registerContextErrorHandler }) {
      // Credentials refused, a header malformed, a dependency away while building the context.
      registerContextErrorHandler(({ context, error }) => finish(context, "error", [error]));
    },
    onParse({ context }) {
      const ctx = context as { params?: { operationName?: unknown } };
      const asked = typeof ctx.params?.operationName === "string" ? ctx.params.operationName : undefined;
      const op: Operation = { started: performance.now(), name: asked, type: "unknown", valid: false, done: false };
      operations.set(context, op);
      return ({ result }) => {
        if (result instanceof Error || !result) return finish(context, "error", [result]);
        const operation = getOperationAST(result, asked);
        if (operation) {
          op.name = operation.name?.value;
          op.type = operation.operation;
        }
      };
    },
    onValidate({ context }) {
      return ({ valid, result }) => {
        if (!valid) return finish(context, "error", result as readonly GraphQLError[]);
        const op = operations.get(context);
        if (op) op.valid = true;
      };
    },
    onExecute({ args }) {
      const context = args.contextValue as object;
      return {
        onExecuteDone({ result }) {
          if (!isAsyncIterable(result)) return finish(context, outcomeOf(result), result.errors);
          // Incremental delivery (@defer, @stream): done when the last part is.
          let failed = false;
          return {
            onNext({ result: part }) {
              if (part.errors?.length) failed = true;
              countErrors(part.errors);
            },
            onEnd: () => finish(context, failed ? "error" : "ok"),
          };
        },
      };
    },
    onSubscribe({ args }) {
      const context = args.contextValue as object;
      let open = false;
      // Once, however the stream ends: completed, closed by the client, or failed.
      const close = () => {
        if (open) metrics.subscriptionsOpen.dec();
        open = false;
      };
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) return finish(context, outcomeOf(result), result.errors);
          // A subscription's duration is its setting up; how long it then stays open is its client's.
          finish(context, "ok");
          metrics.subscriptionsOpen.inc();
          open = true;
          return {
            onNext({ result: event }) {
              countErrors(event.errors);
            },
            onEnd: close,
          };
        },
        onSubscribeError({ error }) {
          countErrors([error]);
          close();
        },
      };
    },
  };
}
