// The GraphQL-over-HTTP server (also GraphQL over SSE) and the envelop plugins that the
// WebSocket transport shares with it.
import type { IncomingMessage } from "node:http";
import { GraphQLError } from "graphql";
import { createYoga, type Plugin, useErrorHandler } from "graphql-yoga";
import { type AppDeps, buildContext, type Context } from "../context.ts";
import { armorPlugin } from "../schema/armor.ts";
import { isUnexpected, toGraphQLError } from "../schema/errors.ts";
import { schema } from "../schema/schema.ts";

export interface ServerContext {
  requestId: string;
  req?: IncomingMessage;
  /** graphql-ws connection_init payload */
  connectionParams?: Record<string, unknown>;
}

export function createYogaServer(deps: AppDeps) {
  const { config, logger } = deps;
  return createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    healthCheckEndpoint: false as never,
    batching: false,
    graphiql: config.graphiql ? { title: "Floyo API", subscriptionsProtocol: "WS" } : false,
    cors: config.corsOrigins.includes("*")
      ? { origin: "*" }
      : { origin: config.corsOrigins, credentials: true, methods: ["GET", "POST", "OPTIONS"] },
    logging: {
      debug: (...args) => logger.debug({ yoga: args }),
      info: (...args) => logger.info({ yoga: args }),
      warn: (...args) => logger.warn({ yoga: args }),
      // Yoga reports here every error it masks, expected ones included; the error handler
      // below logs the unexpected ones, with their request id.
      error: (...args) => logger.debug({ yoga: args }),
    },
    maskedErrors: { maskError: (error) => toGraphQLError(error) },
    context: ({ request, requestId, connectionParams }) => {
      const authorization = request?.headers.get("authorization") ?? stringParam(connectionParams, "authorization");
      try {
        return buildContext(deps, requestId, authorization);
      } catch (error) {
        // Envelop wraps anything but a GraphQLError thrown here, losing its class and code.
        throw toGraphQLError(error);
      }
    },
    plugins: [
      armorPlugin(config.limits, config.production),
      useErrorHandler(({ errors, context }) => {
        const ctx = context as Partial<Context>;
        for (const error of errors) {
          const mapped = toGraphQLError(error);
          if (isUnexpected(mapped))
            logger.error({ err: mapped.originalError ?? error, requestId: ctx.requestId }, "unexpected error");
        }
      }),
      useRequestIdInErrors(),
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
        setResult({ ...result, errors: withRequestId(result.errors, serverContext.requestId) });
    },
  };
}

export function withRequestId(errors: readonly GraphQLError[], requestId: string): GraphQLError[] {
  return errors.map((error) => {
    const coded = toGraphQLError(error);
    return new GraphQLError(coded.message, {
      nodes: coded.nodes,
      source: coded.source,
      positions: coded.positions,
      path: coded.path,
      originalError: coded.originalError,
      extensions: { ...coded.extensions, requestId },
    });
  });
}

function stringParam(params: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = params?.[name] ?? params?.[name[0]?.toUpperCase() + name.slice(1)];
  return typeof value === "string" ? value : undefined;
}
