// Who is asking: a signed-in user (access token bound to a session) or an organization's API
// key. Resolved once per request, through a short-lived cache that every instance empties
// as soon as a session, user or key is revoked anywhere.
import { timingSafeEqual } from "node:crypto";
import type { CallerKind, Config } from "../../config.ts";
import { UnauthenticatedError } from "../../errors.ts";
import type { OrgRole } from "../../generated/prisma/client.ts";
import type { PrismaClient } from "../../infra/db.ts";
import type { ChangePayload, PubSub } from "../../infra/pubsub.ts";
import { ROLE_RANK } from "./access.ts";
import { digest } from "./secrets.ts";
import { type AccessClaims, verifyAccessToken } from "./tokens.ts";

export interface UserPrincipal {
  kind: "user";
  userId: string;
  sessionId: string;
  email: string;
  isSuperuser: boolean;
}

export interface ApiKeyPrincipal {
  kind: "apiKey";
  apiKeyId: string;
  /** The key's digest (not the key): what revocations name it by. */
  keyHash: string;
  expiresAt: Date | null;
  organizationId: string;
  role: OrgRole;
  createdById: string | null;
}

export type Principal = UserPrincipal | ApiKeyPrincipal;

/** Who is asking, and until when these credentials hold (epoch ms; null: until revoked). */
export interface Authenticated {
  principal: Principal;
  expiresAt: number | null;
}

export const API_KEY_PATTERN = /^flo_([0-9a-f]{12})_[\w-]{20,}$/;
const CACHE_TTL_MS = 30_000;
const REVOKED_TOPIC = "auth:revoked";
const LAST_USED_RESOLUTION_MS = 60_000;

/** A credential's principal, and until when the credential itself holds (epoch ms; null: no end). */
interface Loaded {
  principal: Principal;
  until: number | null;
}

interface Entry extends Loaded {
  /** When the cache must look again, whatever happens in between. */
  staleAt: number;
}

export function createPrincipalResolver(deps: { config: Config; prisma: PrismaClient; pubsub: PubSub }) {
  const cache = new Map<string, Entry>();

  /** The session as it stands; whether a token may speak for it is `bound`'s question. */
  async function fromSession(sessionId: string): Promise<Loaded> {
    const session = await deps.prisma.userSession.findUnique({
      where: { id: sessionId },
      select: {
        userId: true,
        revokedAt: true,
        expiresAt: true,
        user: { select: { email: true, isActive: true, isSuperuser: true, deletedAt: true } },
      },
    });
    if (!session || session.revokedAt || session.expiresAt <= new Date()) {
      throw new UnauthenticatedError("SESSION_REVOKED", "This session has ended; sign in again.");
    }
    if (!session.user.isActive || session.user.deletedAt) {
      throw new UnauthenticatedError("ACCOUNT_DISABLED", "This account is disabled.");
    }
    return {
      principal: {
        kind: "user",
        userId: session.userId,
        sessionId,
        email: session.user.email,
        isSuperuser: session.user.isSuperuser,
      },
      until: session.expiresAt.getTime(),
    };
  }

  /**
   * The session a token names, checked against every claim it pins, on every use, cached or
   * not: the cache is keyed by session, so a token whose subject is someone else must not
   * borrow a session it does not belong to.
   */
  async function bound(claims: AccessClaims): Promise<Loaded> {
    return matching(await cached(claims.sid, () => fromSession(claims.sid)), claims.sub);
  }

  function matching(loaded: Loaded, userId: string): Loaded {
    if (loaded.principal.kind !== "user" || loaded.principal.userId !== userId) {
      throw new UnauthenticatedError("TOKEN_INVALID", "The access token does not match its session.");
    }
    return loaded;
  }

  const KEY_FIELDS = {
    id: true,
    keyHash: true,
    organizationId: true,
    role: true,
    createdById: true,
    revokedAt: true,
    expiresAt: true,
    lastUsedAt: true,
  } as const;

  async function fromApiKey(key: string): Promise<Loaded> {
    const prefix = API_KEY_PATTERN.exec(key)?.[1];
    const row = prefix ? await deps.prisma.apiKey.findUnique({ where: { prefix }, select: KEY_FIELDS }) : null;
    // Looked up by prefix, then compared in constant time: an unknown key and a wrong secret
    // look the same, and the comparison leaks nothing of the digest.
    if (!row || !timingSafeEqual(Buffer.from(row.keyHash, "hex"), Buffer.from(digest(key), "hex"))) {
      throw new UnauthenticatedError("API_KEY_INVALID", "The API key is not valid.");
    }
    // Checked before use is recorded: a refused key was not used.
    const principal = await keyPrincipal(row);
    if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      // Recorded at a minute's resolution: not a write on every request.
      await deps.prisma.apiKey.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } });
    }
    return { principal, until: row.expiresAt?.getTime() ?? null };
  }

  async function keyPrincipal(row: {
    id: string;
    keyHash: string;
    organizationId: string;
    role: OrgRole;
    createdById: string | null;
    revokedAt: Date | null;
    expiresAt: Date | null;
  }): Promise<ApiKeyPrincipal> {
    if (row.revokedAt) throw new UnauthenticatedError("API_KEY_REVOKED", "The API key has been revoked.");
    if (row.expiresAt && row.expiresAt <= new Date())
      throw new UnauthenticatedError("API_KEY_EXPIRED", "The API key has expired.");
    // A key acts with no more than its creator can now: removed from the organization, the
    // creator's keys stop; demoted, they are capped at the new role.
    const creator = row.createdById
      ? await deps.prisma.organizationMember.findUnique({
          where: { organizationId_userId: { organizationId: row.organizationId, userId: row.createdById } },
          select: { role: true },
        })
      : null;
    if (!creator) throw new UnauthenticatedError("API_KEY_REVOKED", "The API key's creator is no longer a member.");
    return {
      kind: "apiKey",
      apiKeyId: row.id,
      keyHash: row.keyHash,
      expiresAt: row.expiresAt,
      organizationId: row.organizationId,
      role: ROLE_RANK[creator.role] < ROLE_RANK[row.role] ? creator.role : row.role,
      createdById: row.createdById,
    };
  }

  // When each id (or "*") was last revoked: a load that began before a revocation answers
  // its own request but is not cached, or it would outlive the revocation.
  const revokedAt = new Map<string, number>();
  // An entry is used only while its credential's own expiry (a key's expiresAt, a session's)
  // is still ahead, checked against the clock on every use: past it, the record is read again
  // and refused with its own code, not served for the rest of the cache's lifetime.
  // Concurrent misses of one credential share one load (single flight): a storm of clients
  // reconnecting with the same token costs one query, not one each.
  const loading = new Map<string, Promise<Loaded>>();
  function cached(key: string, load: () => Promise<Loaded>): Promise<Loaded> {
    const hit = cache.get(key);
    const now = Date.now();
    if (hit && hit.staleAt > now && (hit.until === null || hit.until > now)) return Promise.resolve(hit);
    if (hit) cache.delete(key);
    let pending = loading.get(key);
    if (!pending) {
      const started = now;
      const flight: Promise<Loaded> = load()
        .then((loaded) => {
          if ((revokedAt.get(key) ?? 0) < started && (revokedAt.get("*") ?? 0) < started) {
            cache.set(key, { ...loaded, staleAt: Date.now() + CACHE_TTL_MS });
          }
          return loaded;
        })
        .finally(() => {
          if (loading.get(key) === flight) loading.delete(key);
        });
      pending = flight;
      loading.set(key, flight);
    }
    return pending;
  }
  const forget = (id: string) => {
    revokedAt.set(id, Date.now());
    // A load in flight may have read the record before the revocation: later callers start anew.
    if (id === "*") {
      cache.clear();
      loading.clear();
    } else {
      cache.delete(id);
      loading.delete(id);
    }
    // Bounded: entries older than the cache's lifetime no longer matter.
    if (revokedAt.size > 10_000) {
      for (const [k, t] of revokedAt) if (Date.now() - t > CACHE_TTL_MS) revokedAt.delete(k);
    }
  };

  // Revocations from any instance arrive here; entries are keyed by session id or key digest.
  const offRevoked = deps.pubsub.listen(REVOKED_TOPIC, "all", (event) => forget(event.id));
  // Revocations published while this instance was cut off from Redis never arrived.
  const offReconnect = deps.pubsub.onReconnect(() => forget("*"));

  return {
    /** `Authorization: Bearer <jwt or API key>` or `X-API-Key: <key>`. Throws on bad credentials. */
    async resolve(
      authorization: string | null | undefined,
      apiKeyHeader: string | null | undefined,
    ): Promise<Authenticated | null> {
      const { bearer, apiKey } = credentials(authorization, apiKeyHeader);
      if (apiKey) {
        const { principal, until } = await cached(apiKeyCacheKey(digest(apiKey)), () => fromApiKey(apiKey));
        return { principal, expiresAt: until };
      }
      if (!bearer) return null;
      const claims = verifyAccessToken(bearer, deps.config.jwt);
      const { principal, until } = await bound(claims);
      // Whichever ends first: the token, or the session it belongs to.
      return { principal, expiresAt: until === null ? claims.expMs : Math.min(claims.expMs, until) };
    },
    /**
     * The same principal as it stands now, read past the cache: for what outlives a request
     * (a subscription). Throws when its session or key no longer holds.
     */
    async reload(principal: Principal): Promise<Principal> {
      if (principal.kind === "user")
        return matching(await fromSession(principal.sessionId), principal.userId).principal;
      const row = await deps.prisma.apiKey.findUnique({ where: { id: principal.apiKeyId }, select: KEY_FIELDS });
      if (!row) throw new UnauthenticatedError("API_KEY_REVOKED", "The API key has been revoked.");
      return keyPrincipal(row);
    },
    /** Calls back with revocations as they arrive from any instance (see `affectedBy`). */
    onRevoked: (listener: (revoked: ChangePayload) => void) => deps.pubsub.listen(REVOKED_TOPIC, "all", listener),
    /** A user principal for verified claims (download links carry the same session binding). */
    forClaims: async (claims: AccessClaims) => (await bound(claims)).principal,
    /**
     * Ends cached access on every instance: a session id, apiKeyCacheKey(hash), or "*" for all
     * (with the organization whose memberships changed, when it is one).
     */
    revoked(id: string, organizationId?: string) {
      forget(id);
      deps.pubsub.publish(REVOKED_TOPIC, "all", {
        id,
        kind: "DELETED",
        data: { organizationId: organizationId ?? null },
      });
    },
    close: () => {
      offRevoked();
      offReconnect();
    },
  };
}

/** What ends a principal's access when its credentials run out. */
export function expiredError(principal: Principal): UnauthenticatedError {
  return principal.kind === "user"
    ? new UnauthenticatedError("TOKEN_EXPIRED", "The access token has expired; refresh it.")
    : new UnauthenticatedError("API_KEY_EXPIRED", "The API key has expired.");
}

export function apiKeyCacheKey(keyHash: string) {
  return `key:${keyHash}`;
}

/**
 * Whether a revocation may have ended a principal's access: its session, its key, or a
 * membership change in its key's organization (a key acts with at most its creator's role).
 */
export function affectedBy(principal: Principal, revoked: ChangePayload): boolean {
  if (principal.kind === "user") return revoked.id === principal.sessionId;
  if (revoked.id === "*") {
    const organizationId = revoked.data?.organizationId;
    return organizationId == null || organizationId === principal.organizationId;
  }
  return revoked.id === apiKeyCacheKey(principal.keyHash);
}

export type PrincipalResolver = ReturnType<typeof createPrincipalResolver>;

/** The credentials a request carries: an API key (header, or a `flo_` bearer) or a bearer token. */
function credentials(authorization: string | null | undefined, apiKeyHeader: string | null | undefined) {
  const bearer = authorization?.replace(/^Bearer\s+/i, "").trim();
  const apiKey = apiKeyHeader?.trim() || (bearer?.startsWith("flo_") ? bearer : undefined);
  return { bearer, apiKey };
}

/**
 * Who the request says it is, from its headers alone, for what is decided before the
 * credentials are checked (which documents it may send); the context checks them after.
 */
export function callerKind(
  authorization: string | null | undefined,
  apiKeyHeader: string | null | undefined,
): CallerKind {
  const { bearer, apiKey } = credentials(authorization, apiKeyHeader);
  return apiKey ? "apiKey" : bearer ? "user" : "anonymous";
}
