// graphql-ws on the same path and port as HTTP, through the same envelop plugins as Yoga
// (armor limits, error masking, context), so both transports behave alike. Connections are
// limited per user and per address (across instances), operations per connection, and
// message size; credentials are checked at connect and on every subscribe, and a socket whose
// token expires or whose session or key is revoked is closed with 4403 and the reason.
import { randomUUID } from "node:crypto";
import type { Server } from "node:http";
import { type ExecutionArgs, GraphQLError, getOperationAST } from "graphql";
import { useServer } from "graphql-ws/use/ws";
import { type WebSocket, WebSocketServer } from "ws";
import type { AppDeps, Context } from "../context.ts";
import { AppError, UnauthenticatedError } from "../errors.ts";
import { auditRejectedMutation } from "../features/audit/audit.plugin.ts";
import { affectedBy, callerKind, expiredError, type Principal } from "../features/auth/principal.ts";
import { slotOf } from "../infra/connectionSlots.ts";
import { isUnavailable } from "../infra/unavailable.ts";
import { toGraphQLError } from "../schema/errors.ts";
import { createAdmission } from "./admission.ts";
import { clientIp, stringParam, withRequestId, type YogaServer } from "./yoga.ts";

type Enveloped = ReturnType<YogaServer["getEnveloped"]>;

/** Close codes beyond graphql-ws' own (4400 bad request, 4408 init timeout, 4409 duplicate id...). */
export const CLOSE = {
  /** Credentials refused at connect, expired, or revoked: the reason names which. Clients may retry with fresh ones. */
  FORBIDDEN: 4403,
  /** Over a connection limit: try again later. */
  TRY_AGAIN_LATER: 1013,
  /** Fell too far behind: reconnect and resume from the last cursor received. */
  SLOW_CONSUMER: 4008,
  /** Shutting down (graphql-ws' dispose). */
  GOING_AWAY: 1001,
} as const;

interface Connection {
  id: string;
  socket: WebSocket;
  slots: [key: string, connectionId: string][];
  principal?: Principal;
  expiry?: NodeJS.Timeout;
  /** Each running operation's request id, for the errors that end it. */
  requestIds: Map<string, string>;
}

// Close reasons are limited to 123 bytes.
const reason = (text: string) => Buffer.from(text).subarray(0, 123).toString();

export function attachWebSocketServer(server: Server, yoga: YogaServer, deps: AppDeps) {
  const { principals, config, slots } = deps;
  const limits = config.ws;
  const admission = createAdmission(limits.connectConcurrency, limits.connectQueue);
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint, maxPayload: limits.maxMessageBytes });
  const connections = new Map<WebSocket, Connection>();

  const close = (connection: Connection, code: number, why: string) => connection.socket.close(code, reason(why));
  const take = async (connection: Connection, key: string, limit: number) => {
    if (!(await slots.acquire(key, connection.id, limit))) return false;
    connection.slots.push([key, connection.id]);
    // Closed while the slot was being taken: give it back.
    if (!connections.has(connection.socket)) void slots.release(key, connection.id).catch(() => undefined);
    return true;
  };

  // Registered before graphql-ws' own listener: every socket is counted, whatever it sends.
  wss.on("connection", (socket, request) => {
    const connection: Connection = { id: randomUUID(), socket, slots: [], requestIds: new Map() };
    connections.set(socket, connection);
    // ws closes the socket itself on a protocol error (1009 for an oversized message); graphql-ws
    // would also print it to stderr as an "internal error". It is the client's: a debug line.
    process.nextTick(() => {
      socket.removeAllListeners("error");
      socket.on("error", (err) => deps.logger.debug({ err: err.message }, "websocket protocol error"));
    });
    socket.once("close", () => {
      connections.delete(socket);
      clearTimeout(connection.expiry);
      for (const [key, id] of connection.slots) void slots.release(key, id).catch(() => undefined);
    });
    void take(connection, slotOf.ip(clientIp(request, config.trustProxy)), limits.maxConnectionsPerIp).then(
      (ok) => ok || close(connection, CLOSE.TRY_AGAIN_LATER, "Too many connections from this address"),
      (err: unknown) => {
        deps.logger.warn({ err: (err as Error).message }, "connection limit not checked");
      },
    );
  });

  // A revocation on any instance closes the sockets it affects here, subscribed or not. A
  // failure to look (the database away) is not a refusal: the socket stays.
  const offRevoked = principals.onRevoked((revoked) => {
    for (const connection of connections.values()) {
      const p = connection.principal;
      if (!p || !affectedBy(p, revoked)) continue;
      principals.reload(p).then(
        (now) => {
          connection.principal = now;
        },
        (err: unknown) => {
          if (err instanceof UnauthenticatedError) close(connection, CLOSE.FORBIDDEN, describe(err));
        },
      );
    }
  });

  const disposable = useServer(
    {
      connectionInitWaitTimeout: limits.initTimeoutMs,
      execute: (args) => (args.rootValue as Enveloped).execute(args as ExecutionArgs),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args as ExecutionArgs),
      // Bad credentials are refused at connect (close 4403), not at the first operation.
      onConnect: async (ctx) => {
        const params = ctx.connectionParams;
        const connection = connections.get(ctx.extra.socket);
        if (!connection) return false;
        // Credentials that are not strings are refused, not taken for no credentials at all.
        const malformed = Object.entries(params ?? {}).some(
          ([k, v]) => ["authorization", "x-api-key"].includes(k.toLowerCase()) && v != null && typeof v !== "string",
        );
        if (malformed) {
          close(connection, CLOSE.FORBIDDEN, "BAD_REQUEST: authorization and x-api-key must be strings");
          return false;
        }
        // Connect storms queue here (server/admission.ts); the socket may close while it waits.
        const release = await admission.enter();
        if (!release) {
          close(connection, CLOSE.TRY_AGAIN_LATER, "Too many connections at once; retry shortly");
          return false;
        }
        try {
          if (connection.socket.readyState !== connection.socket.OPEN) return false;
          let authenticated: Awaited<ReturnType<typeof principals.resolve>>;
          try {
            authenticated = await principals.resolve(
              stringParam(params, "authorization"),
              stringParam(params, "x-api-key"),
            );
          } catch (err) {
            // Only the credentials' own refusal is final; anything else (the database away, the
            // breaker open, a bug) says nothing about them: the client may retry, and is told so.
            if (err instanceof UnauthenticatedError) close(connection, CLOSE.FORBIDDEN, describe(err));
            else {
              if (!isUnavailable(err)) deps.logger.error({ err }, "credentials not checked at connect");
              close(
                connection,
                CLOSE.TRY_AGAIN_LATER,
                "SERVICE_UNAVAILABLE: credentials could not be checked; retry shortly",
              );
            }
            return false;
          }
          if (!authenticated) return true;
          const { principal, expiresAt } = authenticated;
          const who = slotOf.who(principal);
          // Redis away: the connection is let through, as the per-address count does.
          const allowed = await take(connection, who, limits.maxConnectionsPerUser).catch((err: unknown) => {
            deps.logger.warn({ err: (err as Error).message }, "connection limit not checked");
            return true;
          });
          if (!allowed) {
            close(connection, CLOSE.TRY_AGAIN_LATER, "Too many connections for this user");
            return false;
          }
          connection.principal = principal;
          if (expiresAt !== null && expiresAt - Date.now() < 2 ** 31 - 1) {
            connection.expiry = setTimeout(
              () => close(connection, CLOSE.FORBIDDEN, describe(expiredError(principal))),
              Math.max(0, expiresAt - Date.now()),
            );
          }
          return true;
        } finally {
          release();
        }
      },
      onComplete: (ctx, id) => {
        connections.get(ctx.extra.socket)?.requestIds.delete(id);
      },
      onError: (ctx, id, _payload, errors) => {
        // A subscription ended because its subscriber fell behind: the socket goes too, with a
        // code a client can act on.
        const connection = connections.get(ctx.extra.socket);
        const code = errors[0]?.extensions?.code;
        if (!connection) return;
        const requestId = connection.requestIds.get(id);
        connection.requestIds.delete(id);
        if (code === "SLOW_CONSUMER")
          close(connection, CLOSE.SLOW_CONSUMER, "SLOW_CONSUMER: resume from your last cursor");
        return requestId ? withRequestId(errors, requestId, { stripHttp: true }) : undefined;
      },
      onSubscribe: async (ctx, id, payload) => {
        const requestId = randomUUID();
        // ctx.subscriptions already holds this one.
        if (Object.keys(ctx.subscriptions).length > limits.maxSubscriptions) {
          return [
            new GraphQLError(`A connection carries at most ${limits.maxSubscriptions} operations at once.`, {
              extensions: { code: "TOO_MANY_SUBSCRIPTIONS", requestId },
            }),
          ];
        }
        // A document named by hash (graphql-ws requires a query string: an empty one then).
        const resolved = await deps.persisted.resolve(
          payload,
          callerKind(
            stringParam(ctx.connectionParams, "authorization"),
            stringParam(ctx.connectionParams, "x-api-key"),
          ),
        );
        if (resolved instanceof GraphQLError) return withRequestId([resolved], requestId, { stripHttp: true });
        const params = resolved === undefined || resolved === payload.query ? payload : { ...payload, query: resolved };
        const enveloped = yoga.getEnveloped({
          requestId,
          req: ctx.extra.request,
          // Present even when connection_init carried no payload: it marks the WebSocket transport.
          connectionParams: ctx.connectionParams ?? {},
          params,
        });
        // Parse, limit and context errors become GraphQL errors for this operation, never an
        // "Internal error" close of the whole connection.
        let document: ReturnType<typeof enveloped.parse>;
        try {
          document = enveloped.parse(params.query);
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
          // graphql-ws would answer this itself, in words and a code of its own.
          if (!getOperationAST(document, params.operationName)) {
            return refuse(
              new GraphQLError("Could not determine what operation to execute.", {
                extensions: { code: "OPERATION_RESOLUTION_FAILURE" },
              }),
            );
          }
          const contextValue = await enveloped.contextFactory();
          // Kept for the errors that may end it later; errors returned here carry it already.
          connections.get(ctx.extra.socket)?.requestIds.set(id, requestId);
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
    limits.keepAliveMs,
  );
  return {
    wss,
    /** graphql-ws closes every socket with 1001 (going away), then the server. */
    close: async () => {
      offRevoked();
      await disposable.dispose();
    },
  };
}

function describe(err: unknown): string {
  return err instanceof AppError ? `${err.code}: ${err.message}` : "Forbidden";
}
