// The per-request context, built once per HTTP request or WebSocket operation: who is asking
// (authenticated here, once) and the shared dependencies every resolver and service uses.
import type { Config } from "./config.ts";
import type { AuditWriter } from "./features/audit/auditWriter.ts";
import type { Principal, PrincipalResolver } from "./features/auth/principal.ts";
import type { Budgets } from "./features/limits/budgets.ts";
import type { ConnectionSlots } from "./infra/connectionSlots.ts";
import type { PrismaClient } from "./infra/db.ts";
import type { Live } from "./infra/live.ts";
import type { LockService } from "./infra/lock.ts";
import type { Logger } from "./infra/logger.ts";
import type { Mailer } from "./infra/mailer.ts";
import type { Metrics } from "./infra/metrics.ts";
import type { Outbox } from "./infra/outbox.ts";
import type { PubSub } from "./infra/pubsub.ts";
import type { SecretBox } from "./infra/secretBox.ts";
import type { Storage } from "./infra/storage.ts";
import type { LeaderStatus } from "./jobs/scheduler.ts";
import { decodeId } from "./schema/globalId.ts";
import type { PersistedDocuments } from "./server/persisted.ts";
import type { ResponseCache } from "./server/responseCache.ts";

/** What lives as long as the process: shared by every request's context. */
export interface AppDeps {
  config: Config;
  logger: Logger;
  prisma: PrismaClient;
  pubsub: PubSub;
  /** Resumable per-organization feeds of changes, for subscriptions. */
  live: Live;
  /** How a change and its live notice are written together: see infra/outbox.ts. */
  outbox: Outbox;
  /** Writes audit entries (holding them while the database is away). */
  audit: AuditWriter;
  /** Answers to queries, kept until a change in their scope: see server/responseCache.ts. */
  responseCache: ResponseCache;
  /** Open live connections per user and address, counted across instances. */
  slots: ConnectionSlots;
  locks: LockService;
  mailer: Mailer;
  /** This instance's Prometheus metrics (served at /metrics). */
  metrics: Metrics;
  /** Rate limits and cost budgets: charged per operation (server/limitsPlugin.ts) and per sensitive action. */
  budgets: Budgets;
  principals: PrincipalResolver;
  /** Which document a request runs when it names one by hash, and who may send their own. */
  persisted: PersistedDocuments;
  storage: Storage;
  secrets: SecretBox;
  /** This instance's part in scheduler leadership; null when it runs no background jobs. */
  leaderStatus: () => LeaderStatus | null;
}

/** What a mutation resolver tells the audit trail about the row it acted on. */
export interface AuditNote {
  resourceType?: string;
  resourceId?: string;
  /** null: explicitly none (the organization is gone, or was never involved). */
  organizationId?: string | null;
  actorUserId?: string;
  details?: Record<string, unknown>;
  /** The resolver wrote the entry itself, in its change's transaction (auditInTransaction). */
  written?: boolean;
}

export interface RequestInfo {
  requestId: string;
  ip: string | null;
  userAgent: string | null;
  authorization: string | null;
  apiKey: string | null;
  /** X-Organization-Id: the organization to act in, when not the personal one. */
  organization: string | null;
  /** "ws": an operation on a graphql-ws connection; "http": a request (an SSE stream included). */
  transport: "http" | "ws";
}

export interface Context extends AppDeps {
  requestId: string;
  ip: string | null;
  userAgent: string | null;
  transport: RequestInfo["transport"];
  principal: Principal | null;
  /** When the caller's credentials expire (epoch ms), for what outlives the request. */
  credentialsExpireAt: number | null;
  requestedOrganizationId: string | null;
  /** Per-request memo for lookups several resolvers share (roles, active organization). */
  memo: Map<string, Promise<unknown>>;
  /** Keyed by the mutation's response key. */
  auditNotes: Map<string, AuditNote>;
}

export async function buildContext(deps: AppDeps, request: RequestInfo): Promise<Context> {
  const authenticated = await deps.principals.resolve(request.authorization, request.apiKey);
  return {
    ...deps,
    requestId: request.requestId,
    ip: request.ip,
    userAgent: request.userAgent,
    transport: request.transport,
    principal: authenticated?.principal ?? null,
    credentialsExpireAt: authenticated?.expiresAt ?? null,
    requestedOrganizationId: request.organization ? decodeId(request.organization, "Organization").id : null,
    memo: new Map(),
    auditNotes: new Map(),
  };
}

/** The nil UUID: no row has it, so a filter on it matches nothing. */
export const NOBODY = "00000000-0000-0000-0000-000000000000";

/**
 * The caller's user id for visibility filters, or NOBODY: an anonymous caller (or an API key)
 * sees no user-scoped rows without a separate code path.
 */
export function viewerIdOrNobody(ctx: Context): string {
  return ctx.principal?.kind === "user" ? ctx.principal.userId : NOBODY;
}

/** Field-level check for a user's own data (sessions, settings, memberships, audit trail). */
export function isSelf(user: { id: string }, _args: unknown, ctx: Pick<Context, "principal">): boolean {
  return ctx.principal?.kind === "user" && ctx.principal.userId === user.id;
}
