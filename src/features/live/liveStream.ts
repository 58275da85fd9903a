// One organization's feed for one subscriber, for as long as its access holds: checked at
// subscribe, then kept true. A change to the subscriber's membership is re-read (removal
// ends the stream with MEMBERSHIP_REVOKED; a role without the permission with FORBIDDEN); a
// revoked session or key ends it with its UNAUTHENTICATED code, and so does the access token's
// expiry. Entries the subscriber may not see (another member's analytics) are left out.
import { randomUUID } from "node:crypto";
import { Repeater } from "graphql-yoga";
import type { Context } from "../../context.ts";
import { AppError, ForbiddenError, NotFoundError, ValidationError } from "../../errors.ts";
import type { OrgRole } from "../../generated/prisma/client.ts";
import { slotOf } from "../../infra/connectionSlots.ts";
import type { LiveEvent, LiveFeed, LiveItem } from "../../infra/live.ts";
import { isCursor } from "../../infra/liveLog.ts";
import { decodeId } from "../../schema/globalId.ts";
import { authorize, memberRole, PERMISSIONS, type Permission } from "../auth/access.ts";
import { affectedBy, expiredError, type Principal } from "../auth/principal.ts";
import { actingUserId } from "../events/visibility.ts";

export interface LiveStreamOptions {
  feed: LiveFeed;
  organizationId: string | number;
  after?: string | null;
  permission: Permission;
  /** Per-user rows (analytics): seen by their user and by owners and admins. */
  perUser?: boolean;
  /** Narrows the feed to one row (one execution, say); applied to entries, not to GAPs. */
  only?: { id: string; exists: (organizationId: string) => Promise<boolean>; resource: string };
}

// setTimeout's limit; a later expiry is not a concern of one connection.
const MAX_TIMER_MS = 2 ** 31 - 1;

export async function liveStream(ctx: Context, options: LiveStreamOptions): Promise<AsyncIterableIterator<LiveEvent>> {
  const organizationId = decodeId(String(options.organizationId), "Organization").id;
  const after = options.after ?? null;
  if (after !== null && !isCursor(after)) {
    throw new ValidationError("`after` must be a cursor received from this subscription.", [
      { path: "after", message: 'must look like "1700000000000-0"' },
    ]);
  }
  // The guards listen before access is checked: a removal just after the check is heard.
  // Until the stream runs, what they hear only marks that access must be looked at again.
  let principal = ctx.principal as Principal;
  const viewerId = actingUserId(ctx);
  let onChange: () => void = () => {
    heardEarly = true;
  };
  let heardEarly = false;
  const offMemberships = ctx.live.watch("MEMBERSHIPS", organizationId, (change) => {
    // A null user: the organization itself is gone.
    if (change.data?.userId === viewerId || change.data?.userId == null) onChange();
  });
  const offRevocations = ctx.principals.onRevoked((revoked) => {
    if (affectedBy(principal, revoked)) onChange();
  });
  const slots: [string, string][] = [];
  const closeGuards = () => {
    offMemberships();
    offRevocations();
    for (const [key, id] of slots.splice(0)) void ctx.slots.release(key, id).catch(() => undefined);
  };
  let role: OrgRole;
  try {
    await ctx.live.listening("MEMBERSHIPS", organizationId);
    role = await authorize(ctx, organizationId, options.permission);
    if (options.only && !(await options.only.exists(organizationId))) throw new NotFoundError(options.only.resource);
    if (ctx.transport === "http") await takeSseSlots(ctx, principal, slots);
  } catch (err) {
    closeGuards();
    throw err;
  }
  const visible = (item: LiveItem) =>
    item.kind === "GAP" ||
    ((!options.only || item.id === options.only.id) &&
      (!options.perUser || role === "OWNER" || role === "ADMIN" || item.data?.userId === viewerId));
  const source = ctx.live.subscribe(options.feed, organizationId, after);

  const stream = new Repeater<LiveEvent>(async (push, stop) => {
    const expiresIn = ctx.credentialsExpireAt === null ? null : ctx.credentialsExpireAt - Date.now();
    const expiry =
      expiresIn !== null && expiresIn < MAX_TIMER_MS
        ? setTimeout(() => stop(expiredError(principal)), Math.max(0, expiresIn))
        : undefined;
    // A membership change or revocation missed while Redis was away: look again.
    const offReconnect = ctx.live.onReconnect(() => onChange());
    void stop.then(() => {
      clearTimeout(expiry);
      offReconnect();
      closeGuards();
      void source.return();
    });

    // One look at a time; changes heard during a look lead to one more, not one each.
    let looking: Promise<void> | null = null;
    let again = false;
    onChange = () => {
      if (looking) {
        again = true;
        return;
      }
      looking = recheck().finally(() => {
        looking = null;
        if (again) {
          again = false;
          onChange();
        }
      });
    };
    if (heardEarly) onChange();

    // Re-reads access; ends the stream when it no longer allows this subscription. A failure
    // to read (the database away) is not a refusal: the stream goes on, the next check decides.
    async function recheck() {
      try {
        principal = await ctx.principals.reload(principal);
        const now =
          principal.kind === "apiKey" ? principal.role : await memberRole(ctx.prisma, organizationId, principal.userId);
        if (!now)
          throw new AppError("MEMBERSHIP_REVOKED", "You are no longer a member of this organization; this feed ended.");
        if (!PERMISSIONS[now].has(options.permission))
          throw new ForbiddenError(`Your role (${now.toLowerCase()}) no longer allows this feed.`);
        role = now;
      } catch (err) {
        if (err instanceof AppError) stop(err);
        else ctx.logger.warn({ err: (err as Error).message }, "live access not rechecked");
      }
    }

    try {
      for await (const item of source) {
        // A look at access under way decides first: a demoted admin's next item is a member's.
        if (looking) await looking;
        if (visible(item)) await push({ ...item, organizationId });
      }
      stop();
    } catch (err) {
      stop(err);
    }
  });
  // A stream ended before it was first read never runs its cleanup: the guards go here too.
  const iterator: AsyncIterableIterator<LiveEvent> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () => stream.next(),
    return: (value?: unknown) => {
      closeGuards();
      return stream.return(value as never);
    },
    throw: (error?: unknown) => {
      closeGuards();
      return stream.throw(error);
    },
  };
  return iterator;
}

/**
 * An SSE stream is a connection of its own: it counts against the same per-user and
 * per-address limits as WebSockets (with Redis away, it is let through, as they are).
 */
async function takeSseSlots(ctx: Context, principal: Principal, taken: [string, string][]) {
  const id = randomUUID();
  const { maxConnectionsPerUser, maxConnectionsPerIp } = ctx.config.ws;
  const wanted: [string, number][] = [
    [slotOf.who(principal), maxConnectionsPerUser],
    [slotOf.ip(ctx.ip), maxConnectionsPerIp],
  ];
  for (const [key, limit] of wanted) {
    const ok = await ctx.slots.acquire(key, id, limit).catch(() => true);
    if (!ok) throw new AppError("TOO_MANY_CONNECTIONS", "Too many live connections; close one and try again.");
    taken.push([key, id]);
  }
}
