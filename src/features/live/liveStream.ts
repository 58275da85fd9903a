// One organization's feed for one subscriber, for as long as its access holds: checked at
// subscribe, then kept true. A change to the subscriber's membership is re-read (removal
// ends the stream with MEMBERSHIP_REVOKED; a role without the permission with FORBIDDEN); a
// revoked session or key ends it with its UNAUTHENTICATED code, and so does the access token's
// expiry. Entries the subscriber may not see (another member's analytics) are left out.
import { Repeater } from "graphql-yoga";
import type { Context } from "../../context.ts";
import { AppError, ForbiddenError, UnauthenticatedError, ValidationError } from "../../errors.ts";
import type { OrgRole } from "../../generated/prisma/client.ts";
import type { LiveFeed, LiveItem } from "../../infra/live.ts";
import { isCursor } from "../../infra/liveLog.ts";
import { decodeId } from "../../schema/globalId.ts";
import { authorize, PERMISSIONS, type Permission } from "../auth/access.ts";
import { apiKeyCacheKey, type Principal } from "../auth/principal.ts";
import { actingUserId } from "../events/visibility.ts";

export interface LiveStreamOptions {
  feed: LiveFeed;
  organizationId: string | number;
  after?: string | null;
  permission: Permission;
  /** Per-user rows (analytics): seen by their user and by owners and admins. */
  perUser?: boolean;
  /** Narrows the feed further (one execution, say); applied to entries, not to GAPs. */
  only?: (item: LiveItem) => boolean;
}

// setTimeout's limit; a later expiry is not a concern of one connection.
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function liveStream(ctx: Context, options: LiveStreamOptions): Promise<AsyncIterable<LiveItem>> {
  const organizationId = decodeId(String(options.organizationId), "Organization").id;
  const after = options.after ?? null;
  if (after !== null && !isCursor(after)) {
    throw new ValidationError("`after` must be a cursor received from this subscription.", [
      { path: "after", message: 'must look like "1700000000000-0"' },
    ]);
  }
  let role: OrgRole = await authorize(ctx, organizationId, options.permission);
  let principal = ctx.principal as Principal;
  const viewerId = actingUserId(ctx);
  const visible = (item: LiveItem) =>
    item.kind === "GAP" ||
    ((options.only?.(item) ?? true) &&
      (!options.perUser || role === "OWNER" || role === "ADMIN" || item.data?.userId === viewerId));

  const source = ctx.live.subscribe(options.feed, organizationId, after);
  const memberships = ctx.live.watch("MEMBERSHIPS", organizationId);
  const revocations = ctx.principals.revocations();

  return new Repeater<LiveItem>(async (push, stop) => {
    const expiresIn = ctx.credentialsExpireAt === null ? null : ctx.credentialsExpireAt - Date.now();
    const expiry =
      expiresIn !== null && expiresIn < MAX_TIMER_MS
        ? setTimeout(
            () =>
              stop(
                principal.kind === "user"
                  ? new UnauthenticatedError("TOKEN_EXPIRED", "The access token has expired; refresh it.")
                  : new UnauthenticatedError("API_KEY_EXPIRED", "The API key has expired."),
              ),
            Math.max(0, expiresIn),
          )
        : undefined;
    void stop.then(() => {
      clearTimeout(expiry);
      void source.return();
      void memberships.return?.();
      void revocations.return?.();
    });

    // Re-reads access; ends the stream when it no longer allows this subscription.
    const recheck = async () => {
      try {
        principal = await ctx.principals.reload(principal);
        const now =
          principal.kind === "apiKey"
            ? principal.role
            : (
                await ctx.prisma.organizationMember.findUnique({
                  where: { organizationId_userId: { organizationId, userId: principal.userId } },
                  select: { role: true },
                })
              )?.role;
        if (!now)
          throw new AppError("MEMBERSHIP_REVOKED", "You are no longer a member of this organization; this feed ended.");
        if (!PERMISSIONS[now].has(options.permission))
          throw new ForbiddenError(`Your role (${now.toLowerCase()}) no longer allows this feed.`);
        role = now;
      } catch (err) {
        stop(err);
      }
    };
    void (async () => {
      for await (const change of memberships) {
        // A null user: the organization itself is gone.
        if (change.data?.userId === viewerId || change.data?.userId == null) await recheck();
      }
    })();
    void (async () => {
      for await (const revoked of revocations) {
        const mine =
          principal.kind === "user"
            ? revoked.id === principal.sessionId
            : revoked.id === "*" || revoked.id.startsWith(apiKeyCacheKey(""));
        if (mine) await recheck();
      }
    })();

    try {
      for await (const item of source) if (visible(item)) await push(item);
      stop();
    } catch (err) {
      stop(err);
    }
  });
}
