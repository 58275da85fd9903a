// Cost and budgets on every path (the fast path, Yoga's handler, SSE, graphql-ws), as envelop
// hooks. An operation is measured (features/limits/cost.ts), refused past MAX_COST
// (COST_LIMIT_EXCEEDED), then charged to its buckets (features/limits/budgets.ts): refused when
// one is spent (RATE_LIMITED, HTTP 429 and Retry-After). Every result carries extensions.cost and
// every HTTP answer the RateLimit-* headers. A document that cannot run (it does not parse or
// validate, or its credentials are refused) costs its address one point.
import type { ServerResponse } from "node:http";
import type { ExecutionArgs, ExecutionResult } from "graphql";
import { isAsyncIterable, type Plugin } from "graphql-yoga";
import type { AppDeps, Context } from "../context.ts";
import type { Caller, Quota } from "../features/limits/budgets.ts";
import { operationCost } from "../features/limits/cost.ts";
import { CostLimitError, RateLimitedError } from "../features/limits/limits.errors.ts";
import { isUnexpected, toGraphQLError } from "../schema/errors.ts";
import { withExtensions } from "./cachedAnswer.ts";
import { clientIp, type ServerContext } from "./yoga.ts";

/** What a client reads in `extensions.cost` (GitHub's rateLimit object, without `nodeCount`). */
export interface CostExtension {
  /** The operation's calculated cost: what it was charged, unless refused. */
  cost: number;
  /** The bucket closest to refusing (or the one that refused): its size, what is left, when it is full again. */
  limit: number;
  remaining: number;
  resetAt: string;
}

export function useLimits(deps: Pick<AppDeps, "config" | "logger" | "budgets">): Plugin {
  const { config, logger, budgets } = deps;

  /** Answered before anything could be awaited: the headers show the address as last seen here. */
  const refusedBeforeRunning = (initial: object) => {
    const context = initial as Partial<ServerContext>;
    const ip = clientIp(context.req, config.trustProxy);
    const known = budgets.addressQuota(ip);
    setHeaders(context.res, { ...known, remaining: Math.max(0, known.remaining - 1) });
    budgets.chargeAddress(ip).catch((err: unknown) => logger.warn({ err }, "address not charged"));
  };

  /** Measures, limits and charges one operation: a result that refuses it, or its extension. */
  async function guard(args: ExecutionArgs): Promise<{ refusal?: ExecutionResult; extension: CostExtension }> {
    const ctx = args.contextValue as Context & ServerContext;
    const caller: Caller = {
      kind: ctx.principal?.kind ?? "anonymous",
      id: ctx.principal ? (ctx.principal.kind === "user" ? ctx.principal.userId : ctx.principal.apiKeyId) : null,
      ip: ctx.ip,
    };
    const refuse = async (error: unknown, cost: number) => {
      const { quota } = await budgets.chargeAddress(ctx.ip);
      setHeaders(ctx.res, quota);
      return { refusal: { errors: [toGraphQLError(error)] }, extension: extensionOf(cost, quota) };
    };
    let cost: number | undefined;
    try {
      cost = operationCost({
        ...args,
        contextValue: ctx,
        variableValues: args.variableValues as Record<string, unknown>,
      });
    } catch (err) {
      const error = toGraphQLError(err);
      if (!isUnexpected(error)) return refuse(error, 1);
      // A fault in measuring is not the caller's: the operation runs, charged the least.
      logger.error({ err, requestId: ctx.requestId }, "operation cost not measured");
    }
    const maxCost = budgets.maxCostFor(caller, config.limits.maxCost);
    if (cost !== undefined && cost > maxCost) return refuse(new CostLimitError(cost, maxCost), cost);
    const charge = await budgets.charge(caller, cost ?? 1);
    setHeaders(ctx.res, charge.quota);
    const extension = extensionOf(cost ?? 1, charge.quota);
    if (charge.ok) return { extension };
    const error = new RateLimitedError(charge.quota.bucket, charge.retryAfter);
    return { refusal: { errors: [toGraphQLError(error)] }, extension };
  }

  const withCost = (result: ExecutionResult, extension: CostExtension): ExecutionResult =>
    withExtensions(result, { cost: extension });

  return {
    onPluginInit({ registerContextErrorHandler }) {
      registerContextErrorHandler(({ context }) => refusedBeforeRunning(context));
    },
    onParse() {
      return ({ result, context }) => {
        if (result instanceof Error) refusedBeforeRunning(context);
      };
    },
    onValidate() {
      return ({ valid, context }) => {
        if (!valid) refusedBeforeRunning(context);
      };
    },
    async onExecute({ args, setResultAndStopExecution }) {
      const { refusal, extension } = await guard(args);
      if (refusal) setResultAndStopExecution(refusal);
      return {
        onExecuteDone({ result, setResult }) {
          if (!isAsyncIterable(result)) setResult(withCost(result, extension));
        },
      };
    },
    // A subscription is charged once, when it starts; each of its events carries that charge.
    async onSubscribe({ args, setResultAndStopExecution }) {
      const { refusal, extension } = await guard(args);
      if (refusal) setResultAndStopExecution(refusal);
      return {
        onSubscribeResult({ result, setResult }) {
          if (!isAsyncIterable(result)) return setResult(withCost(result, extension));
          return { onNext: ({ result: event, setResult: setEvent }) => setEvent(withCost(event, extension)) };
        },
      };
    },
  };
}

function extensionOf(cost: number, quota: Quota): CostExtension {
  return {
    cost,
    limit: quota.limit,
    remaining: quota.remaining,
    resetAt: new Date(Math.ceil(quota.resetAt / 1000) * 1000).toISOString(),
  };
}

/** IETF RateLimit fields: the limit, what is left, and seconds until the window ends. */
function setHeaders(res: ServerResponse | undefined, quota: Quota) {
  if (!res || res.headersSent) return;
  res.setHeader("RateLimit-Limit", String(quota.limit));
  res.setHeader("RateLimit-Remaining", String(quota.remaining));
  res.setHeader("RateLimit-Reset", String(Math.max(0, Math.ceil((quota.resetAt - Date.now()) / 1000))));
}
