// The per-request context, built once per HTTP request or WebSocket operation: who is asking
// (authenticated here, once) and the shared dependencies every resolver and service uses.
import type { Config } from "./config.ts";
import { verifyAccessToken } from "./features/auth/tokens.ts";
import type { PrismaClient } from "./infra/db.ts";
import type { LockService } from "./infra/lock.ts";
import type { Logger } from "./infra/logger.ts";
import type { PubSub } from "./infra/pubsub.ts";

export interface Viewer {
  userId: string;
  sessionId?: string;
}

/** What lives as long as the process: shared by every request's context. */
export interface AppDeps {
  config: Config;
  logger: Logger;
  prisma: PrismaClient;
  pubsub: PubSub;
  locks: LockService;
}

export interface Context extends AppDeps {
  requestId: string;
  viewer: Viewer | null;
}

/** `Authorization: Bearer <jwt>` over HTTP, or `authorization` in graphql-ws connection params. */
export function buildContext(deps: AppDeps, requestId: string, authorization: string | null | undefined): Context {
  return { ...deps, requestId, viewer: authenticate(deps.config, authorization) };
}

function authenticate(config: Config, authorization: string | null | undefined): Viewer | null {
  if (!authorization) return null;
  const token = authorization.startsWith("Bearer ") ? authorization.slice(7).trim() : authorization.trim();
  const claims = verifyAccessToken(token, config.jwt);
  return { userId: claims.sub, sessionId: claims.sid };
}

/**
 * The viewer's id for visibility filters, or the nil UUID, which matches no membership: an
 * anonymous request sees no tenant rows without a separate code path.
 */
export function viewerIdOrNobody(ctx: Context): string {
  return ctx.viewer?.userId ?? "00000000-0000-0000-0000-000000000000";
}
