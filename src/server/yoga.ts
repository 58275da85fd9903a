// The GraphQL-over-HTTP server (also GraphQL over SSE) and the envelop plugins that the
// WebSocket transport shares with it.
import type { IncomingMessage, ServerResponse } from "node:http";
import { createFetch } from "@whatwg-node/fetch";
import { GraphQLError } from "graphql";
import { createYoga, type Plugin, useErrorHandler } from "graphql-yoga";
import { type AppDeps, buildContext, type Context } from "../context.ts";
import { useAudit } from "../features/audit/audit.plugin.ts";
import { armorPlugin } from "../schema/armor.ts";
import { isUnexpected, toGraphQLError } from "../schema/errors.ts";
import { schema } from "../schema/schema.ts";
import { useCsrfPrevention } from "./csrf.ts";
import { useInputGuard } from "./inputGuard.ts";
import { useIntrospectionPolicy } from "./introspection.ts";
import { useLimits } from "./limitsPlugin.ts";
import { useMetrics } from "./metrics.plugin.ts";
import { useOperationDeadline } from "./operationDeadline.ts";
import { usePersistedDocuments } from "./persistedPlugin.ts";
import { useRequestParseErrors } from "./requestParse.ts";
import { useNoStore } from "./securityHeaders.ts";
import { useHiddenSuggestions } from "./suggestions.ts";

/** Response headers a browser script on another origin may read: budgets and retry hints. */
export const EXPOSED_HEADERS = [
  "RateLimit-Limit",
  "RateLimit-Remaining",
  "RateLimit-Reset",
  "Retry-After",
  "X-Request-Id",
];

export interface ServerContext {
  requestId: string;
  req?: IncomingMessage;
  /** The HTTP response (absent over WebSocket): guards set headers on it (rate limits). */
  res?: ServerResponse;
  /** graphql-ws connection_init payload */
  connectionParams?: Record<string, unknown>;
  /** Request headers when the caller is not Yoga's own HTTP handler (the fast path). */
  headers?: IncomingMessage["headers"];
}

export function createYogaServer(deps: AppDeps) {
  const { config, logger } = deps;
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    // Our own /health routes answer before Yoga; its built-in one would shadow nothing useful.
    healthCheckEndpoint: false as never,
    batching: false,
    // Syntax errors are not cached: Yoga throws a cached one before any plugin's onParse, so the
    // metrics would miss every repeat of a broken query. Each is parsed again (as a new one is).
    parserAndValidationCache: { errorCache: { get: () => undefined, set: () => undefined } },
    // Trusted documents named by id (GraphQL over HTTP's persisted documents): see persisted.ts.
    extraParamNames: ["documentId"],
    // Busboy's limits: a body over them is refused while it streams, not after it is buffered.
    fetchAPI: createFetch({
      formDataLimits: { fileSize: config.uploads.maxBytes, files: 1, fieldSize: config.maxBodyBytes, fields: 10 },
    }),
    graphiql: config.graphiql ? { title: "Floyo API", subscriptionsProtocol: "WS" } : false,
    // Bearer tokens, not cookies: no credentials mode needed.
    cors: config.corsOrigins.includes("*")
      ? { origin: "*", credentials: false, exposedHeaders: EXPOSED_HEADERS }
      : {
          origin: config.corsOrigins,
          methods: ["GET", "POST", "OPTIONS"],
          credentials: false,
          exposedHeaders: EXPOSED_HEADERS,
        },
    logging: {
      debug: (...args) => logger.debug({ yoga: args }),
      info: (...args) => logger.info({ yoga: args }),
      warn: (...args) => logger.warn({ yoga: args }),
      // Yoga reports here every error it masks. Expected ones are noise; unexpected ones from
      // execution (they have a path) are logged below with their request id; the rest (context,
      // request parsing) are logged here.
      error: (...args) => {
        const unexpected = args.some(
          (a) => a instanceof Error && isUnexpected(toGraphQLError(a)) && !(a instanceof GraphQLError && a.path),
        );
        if (unexpected) logger.error({ err: args[0] }, "unexpected error");
        else logger.debug({ yoga: args });
      },
    },
    maskedErrors: { maskError: (error) => toGraphQLError(error) },
    context: async ({ request, requestId, req, connectionParams, headers }) => {
      // HTTP sends these as headers; graphql-ws in the connection_init payload.
      const header = (name: string) =>
        request?.headers.get(name) ?? (headers ? single(headers[name]) : stringParam(connectionParams, name));
      try {
        return await buildContext(deps, {
          requestId,
          ip: clientIp(req, config.trustProxy),
          userAgent: req?.headers["user-agent"] ?? null,
          authorization: header("authorization"),
          apiKey: header("x-api-key"),
          organization: header("x-organization-id"),
          transport: connectionParams ? "ws" : "http",
        });
      } catch (error) {
        // Envelop wraps anything but a GraphQLError thrown here, losing its class and code.
        const mapped = toGraphQLError(error);
        // Unusable request headers (a malformed X-Organization-Id) are the client's: 400, not 500.
        if (mapped.extensions.code === "BAD_USER_INPUT" && !mapped.extensions.http) {
          throw new GraphQLError(mapped.message, { extensions: { ...mapped.extensions, http: { status: 400 } } });
        }
        throw mapped;
      }
    },
    plugins: [
      // First: a forged form post is refused before anything parses it.
      useCsrfPrevention(),
      // Request parameters Yoga could not parse (GET variables that are not JSON) are a 400, not a 500.
      useRequestParseErrors(),
      useNoStore(),
      usePersistedDocuments(deps),
      // Before any plugin that may refuse an operation, so refusals are counted too.
      useMetrics(deps.metrics),
      armorPlugin(config.limits),
      ...(config.suggestions ? [] : [useHiddenSuggestions()]),
      useIntrospectionPolicy(config.introspection),
      useErrorHandler(({ errors, context }) => {
        const ctx = context as Partial<Context>;
        for (const error of errors) {
          const mapped = toGraphQLError(error);
          if (isUnexpected(mapped))
            logger.error({ err: mapped.originalError ?? error, requestId: ctx.requestId }, "unexpected error");
        }
      }),
      useRequestIdInErrors(),
      useAudit<ServerContext>(deps, ({ requestId, req }) => ({
        requestId,
        ip: clientIp(req, config.trustProxy),
        userAgent: req?.headers["user-agent"] ?? null,
      })),
      // After audit (a refused mutation is audited), before the input guard (its refusals are charged).
      useLimits(deps),
      // After the audit plugin: a mutation it refuses is still audited, one entry per root field.
      useInputGuard(config.limits),
      // After the limits (an answer from the cache is charged like any) and every refusal.
      deps.responseCache.plugin(schema),
      // Last: its deadline runs around whatever the plugins before it wrap execute in.
      useOperationDeadline(config.timeouts.operationMs, logger),
    ],
  });
}

export type YogaServer = ReturnType<typeof createYogaServer>;

/** Every error carries the request id, so a report from a client finds its log lines. */
function useRequestIdInErrors(): Plugin<Context, ServerContext> {
  return {
    onResultProcess({ result, setResult, serverContext }) {
      if (Array.isArray(result) || Symbol.asyncIterator in result) return;
      if (result.errors?.length)
        setResult({
          ...result,
          errors: withRequestId(result.errors, serverContext.requestId, { partial: result.data != null }),
        });
    },
  };
}

export function withRequestId(
  errors: readonly GraphQLError[],
  requestId: string,
  options: { stripHttp?: boolean; partial?: boolean } = {},
): GraphQLError[] {
  return errors.map((error) => {
    const coded = toGraphQLError(error);
    const { http: asked, ...extensions } = coded.extensions;
    // A 503 tells a client to send the request again: not when some of it ran (partial data),
    // which a repeat would run twice; the error's code still says which field may be retried.
    const http = options.partial && (asked as { status?: number } | undefined)?.status === 503 ? undefined : asked;
    return new GraphQLError(coded.message, {
      nodes: coded.nodes,
      source: coded.source,
      positions: coded.positions,
      path: coded.path,
      originalError: coded.originalError,
      // `http` tells Yoga the status to answer with; the fast path and WebSockets already used it.
      extensions: { ...(options.stripHttp ? extensions : { ...extensions, http }), requestId },
    });
  });
}

function single(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

/** A connection_init value by header name, in any letter case ("authorization", "Authorization"). */
export function stringParam(params: Record<string, unknown> | undefined, name: string): string | null {
  if (!params) return null;
  const key = Object.keys(params).find((k) => k.toLowerCase() === name);
  const value = key ? params[key] : undefined;
  return typeof value === "string" ? value : null;
}

/**
 * The caller's address: the socket's, or behind a trusted proxy the last X-Forwarded-For hop,
 * the one that proxy appended; earlier hops are whatever the client chose to send.
 */
export function clientIp(req: IncomingMessage | undefined, trustProxy: boolean): string | null {
  if (!req) return null;
  const forwarded = req.headers["x-forwarded-for"];
  if (trustProxy && typeof forwarded === "string") return forwarded.split(",").at(-1)?.trim() || null;
  return req.socket.remoteAddress ?? null;
}
