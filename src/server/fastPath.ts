// The common request, a JSON POST of a query or mutation, straight from Node's http objects
// to the envelop pipeline Yoga itself uses (same plugins: limits, caches, masking, audit,
// context), without building Fetch Request/Response objects for it: measured, that
// conversion cost about as much CPU as everything else of a `{ __typename }` request.
// Anything else (GET, SSE, multipart, GraphiQL, preflight) goes to Yoga.
import type { IncomingMessage, ServerResponse } from "node:http";
import { type ExecutionResult, GraphQLError, getOperationAST } from "graphql";
import type { AppDeps } from "../context.ts";
import { auditRejectedMutation } from "../features/audit/audit.plugin.ts";
import { callerKind } from "../features/auth/principal.ts";
import { toGraphQLError } from "../schema/errors.ts";
import { BodyTooLargeError, readBody } from "./body.ts";
import { answerText } from "./cachedAnswer.ts";
import type { OperationParams } from "./persisted.ts";
import { clientIp, EXPOSED_HEADERS, withRequestId, type YogaServer } from "./yoga.ts";

const GRAPHQL_RESPONSE = "application/graphql-response+json";

/** Whether a request is one the fast path answers; decided from its headers alone. */
export function takesFastPath(req: IncomingMessage): boolean {
  if (req.method !== "POST" || req.url?.split("?")[0] !== "/graphql") return false;
  if (!req.headers["content-type"]?.startsWith("application/json")) return false;
  const accept = req.headers.accept;
  return !accept || !/text\/event-stream|multipart\/mixed/.test(accept);
}

export function createFastPath(yoga: YogaServer, deps: AppDeps) {
  const { config } = deps;
  const allowAnyOrigin = config.corsOrigins.includes("*");
  const origins = new Set(config.corsOrigins);
  const exposed = EXPOSED_HEADERS.join(", ");

  return async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const accept = req.headers.accept ?? "";
    const strict = accept.includes(GRAPHQL_RESPONSE);
    const send = (status: number, result: ExecutionResult, extra: Record<string, string> = {}) => {
      const body = answerText(result) ?? JSON.stringify(result);
      const headers: Record<string, string | number> = {
        ...extra,
        "content-type": `${strict ? GRAPHQL_RESPONSE : "application/json"}; charset=utf-8`,
        "content-length": Buffer.byteLength(body),
      };
      const origin = req.headers.origin;
      if (origin && (allowAnyOrigin || origins.has(origin))) {
        // The origin itself, even when any is allowed, as Yoga's handler answers.
        headers["access-control-allow-origin"] = origin;
        headers["access-control-expose-headers"] = exposed;
        headers.vary = "Origin";
      }
      res.writeHead(status, headers);
      res.end(body);
    };
    const fail = (status: number, errors: readonly GraphQLError[]) =>
      send(status, { errors: withRequestId(errors, requestId, { stripHttp: true }) }, httpHeaders(errors));

    let params: OperationParams & { variables?: unknown; operationName?: unknown };
    try {
      params = JSON.parse((await readBody(req, config.maxBodyBytes)).toString("utf8"));
    } catch (err) {
      const tooLarge = err instanceof BodyTooLargeError;
      if (tooLarge) res.shouldKeepAlive = false;
      return fail(tooLarge ? 413 : 400, [
        new GraphQLError(tooLarge ? `The request body is over ${err.limit} bytes.` : "POST body sent invalid JSON.", {
          extensions: { code: tooLarge ? "PAYLOAD_TOO_LARGE" : "BAD_REQUEST" },
        }),
      ]);
    }
    if (params && typeof params === "object" && !Array.isArray(params)) {
      const kind = callerKind(req.headers.authorization, req.headers["x-api-key"] as string | undefined);
      const resolved = await deps.persisted.resolve(params, kind);
      if (resolved instanceof GraphQLError) return fail(httpStatus([resolved]) ?? 200, [resolved]);
      if (resolved !== undefined && resolved !== params.query) params = { ...params, query: resolved };
    }
    const { query, variables, operationName } = params ?? {};
    if (
      typeof query !== "string" ||
      (variables != null && (typeof variables !== "object" || Array.isArray(variables))) ||
      (operationName != null && typeof operationName !== "string")
    ) {
      return fail(400, [
        new GraphQLError(
          "Expected a JSON object with a string `query`, and optional object `variables` and string `operationName`.",
          {
            extensions: { code: "BAD_REQUEST" },
          },
        ),
      ]);
    }

    const enveloped = yoga.getEnveloped({ req, res, requestId, headers: req.headers, params });
    let document: ReturnType<typeof enveloped.parse>;
    try {
      document = enveloped.parse(query);
    } catch (err) {
      return fail(400, [toGraphQLError(err)]);
    }
    const rejected = (error: GraphQLError) =>
      auditRejectedMutation(
        { ...deps, requestId, ip: clientIp(req, config.trustProxy), userAgent: req.headers["user-agent"] ?? null },
        {
          schema: enveloped.schema,
          document,
          operationName: operationName as string | undefined,
          variableValues: variables as Record<string, unknown>,
        },
        error,
      );
    const invalid = enveloped.validate(enveloped.schema, document);
    if (invalid.length) {
      await rejected(toGraphQLError(invalid[0]));
      // GraphQL over HTTP: 400 for documents that cannot run, when the client speaks the new media type.
      return fail(strict ? 400 : 200, invalid);
    }
    const operation = getOperationAST(document, operationName as string | undefined);
    if (!operation) {
      return fail(400, [
        // As Yoga's own handler answers it (test/paths.test.ts holds the two paths together).
        new GraphQLError("Could not determine what operation to execute.", {
          extensions: { code: "OPERATION_RESOLUTION_FAILURE" },
        }),
      ]);
    }
    if (operation.operation === "subscription") {
      return fail(400, [
        new GraphQLError("Subscriptions run over graphql-ws, or over SSE with `Accept: text/event-stream`.", {
          extensions: { code: "BAD_REQUEST" },
        }),
      ]);
    }
    let contextValue: Awaited<ReturnType<typeof enveloped.contextFactory>>;
    try {
      contextValue = await enveloped.contextFactory();
    } catch (err) {
      const error = toGraphQLError(err);
      await rejected(error);
      return fail(httpStatus([error]) ?? 500, [error]);
    }
    const result = (await enveloped.execute({
      schema: enveloped.schema,
      document,
      operationName: operationName as string | undefined,
      variableValues: variables as Record<string, unknown> | undefined,
      contextValue,
      rootValue: {},
    })) as ExecutionResult;
    if (!result.errors?.length) return send(200, result);
    const errors = withRequestId(result.errors.map(toGraphQLError), requestId, { partial: result.data != null });
    send(
      httpStatus(errors) ?? 200,
      { ...result, errors: withRequestId(errors, requestId, { stripHttp: true }) },
      httpHeaders(errors),
    );
  };
}

type Http = { status?: number; headers?: Record<string, string> } | undefined;

/** Headers the errors ask for (Retry-After with a 503), merged, as Yoga does. */
function httpHeaders(errors: readonly GraphQLError[]): Record<string, string> {
  return Object.assign({}, ...errors.map((e) => (e.extensions.http as Http)?.headers ?? {}));
}

/** The errors may ask for an HTTP status (401 for bad credentials): the highest, as Yoga picks. */
function httpStatus(errors: readonly GraphQLError[]): number | undefined {
  const asked = errors.map((e) => (e.extensions.http as Http)?.status ?? 0);
  return Math.max(0, ...asked) || undefined;
}
