// graphql-ws on the same path and port as HTTP, through the same envelop plugins as Yoga
// (armor limits, error masking, context), so both transports behave alike.
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import type { ExecutionArgs, GraphQLError } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import type { AppDeps, Context } from "../context.ts";
import { auditRejectedMutation } from "../features/audit/audit.plugin.ts";
import { toGraphQLError } from "../schema/errors.ts";
import { clientIp, stringParam, withRequestId, type YogaServer } from "./yoga.ts";

type Enveloped = ReturnType<YogaServer["getEnveloped"]>;

export function attachWebSocketServer(server: Server, yoga: YogaServer, deps: AppDeps) {
  const { principals } = deps;
  // A GraphQL message is small; 1 MiB leaves room for large variables, not for abuse.
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: 1024 * 1024 });
  const disposable = useServer(
    {
      execute: (args) => (args.rootValue as Enveloped).execute(args as ExecutionArgs),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args as ExecutionArgs),
      // Bad credentials are refused at connect (close 4403), not at the first operation.
      onConnect: async (ctx) => {
        const params = ctx.connectionParams;
        try {
          await principals.resolve(stringParam(params, "authorization"), stringParam(params, "x-api-key"));
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        const requestId = randomUUID();
        const enveloped = yoga.getEnveloped({
          requestId,
          req: ctx.extra.request,
          connectionParams: ctx.connectionParams,
          params: payload,
        });
        // Parse, limit and context errors become GraphQL errors for this operation, never an
        // "Internal error" close of the whole connection.
        let document: ReturnType<typeof enveloped.parse>;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          return withRequestId([toGraphQLError(error)], requestId, { stripHttp: true });
        }
        const refuse = async (error: GraphQLError, errors: readonly GraphQLError[] = [error]) => {
          // A mutation refused before it ran is audited as over HTTP.
          await auditRejectedMutation(
            {
              ...deps,
              requestId,
              ip: clientIp(ctx.extra.request, deps.config.trustProxy),
              userAgent: ctx.extra.request.headers["user-agent"] ?? null,
            },
            {
              schema: enveloped.schema,
              document,
              operationName: payload.operationName,
              variableValues: payload.variables,
            },
            error,
          );
          return withRequestId(errors, requestId, { stripHttp: true });
        };
        try {
          const errors = enveloped.validate(enveloped.schema, document);
          if (errors.length) return refuse(toGraphQLError(errors[0]), errors);
          const contextValue = await enveloped.contextFactory();
          return {
            schema: enveloped.schema,
            document,
            operationName: payload.operationName,
            variableValues: payload.variables,
            contextValue,
            rootValue: enveloped,
          };
        } catch (error) {
          return refuse(toGraphQLError(error));
        }
      },
      onNext: (_ctx, _id, _payload, args, result) => {
        const errors = result.errors as GraphQLError[] | undefined;
        if (!errors?.length) return;
        return {
          ...result,
          errors: withRequestId(errors, (args.contextValue as Context).requestId, { stripHttp: true }),
        };
      },
    },
    wss,
  );
  return {
    wss,
    /** graphql-ws closes every socket with 1001 (going away), then the server. */
    close: () => disposable.dispose(),
  };
}
