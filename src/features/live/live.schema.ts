// What every live subscription shares: a cursor on each event (to resume after a disconnect),
// the kind of change, GAP when part of what was missed is gone, and `liveCursor` to start a
// subscription exactly where a query's data left off.
import type { ObjectRef } from "@pothos/core";
import type { Context } from "../../context.ts";
import { LIVE_FEEDS, type LiveEvent, type LiveFeed } from "../../infra/live.ts";
import type { PothosTypes } from "../../schema/builder.ts";
import { builder } from "../../schema/builder.ts";
import { decodeId, encodeId, optionalId } from "../../schema/globalId.ts";
import { authorize, type Permission } from "../auth/access.ts";
import { liveStream } from "./liveStream.ts";

export const LiveEventKindRef = builder.enumType("LiveEventKind", {
  values: {
    CREATED: { description: "The row was created." },
    UPDATED: { description: "The row changed; its fields show it as it is now." },
    DELETED: { description: "The row is gone; only its id is given." },
    GAP: {
      description:
        "Events after the cursor you resumed from are older than the retention window and were dropped: re-read the current state. Events after this one's cursor follow.",
    },
  },
});

const FEED_SUBSCRIPTIONS: Record<LiveFeed, string> = {
  EVENTS: "eventsRecorded",
  PATTERNS: "patternUpdated",
  SUGGESTIONS: "suggestionCreated",
  EXECUTIONS: "workflowExecutionUpdated",
  IMPORTS: "eventImportProgress",
  AUDIT: "auditEntryAdded",
  MEMBERSHIPS: "organizationMembershipChanged",
};

export const LiveFeedRef = builder.enumType("LiveFeed", {
  description: "An organization's feed of changes, as one subscription delivers it.",
  values: Object.fromEntries(
    LIVE_FEEDS.map((f) => [f, { description: `The feed of \`${FEED_SUBSCRIPTIONS[f]}\`.` }]),
  ) as Record<LiveFeed, { description: string }>,
});

export const LiveEventRef = builder.interfaceRef<LiveEvent>("LiveEvent").implement({
  description:
    "An event of a live subscription. Pass the last `cursor` you received as `after` when you subscribe again: you receive what you missed, in order and once.",
  fields: (t) => ({
    cursor: t.exposeString("cursor", { description: "Opaque, increasing within the subscription's feed." }),
    kind: t.field({ type: LiveEventKindRef, resolve: (item) => item.kind }),
    publishedAt: t.field({
      type: "DateTime",
      description: "When the change was published (for a GAP: up to when events were dropped).",
      resolve: (item) => new Date(Number(item.cursor.split("-")[0])),
    }),
  }),
});

/** An event type: cursor and kind, plus the fields the feature adds with builder.objectFields. */
export function liveEventType(name: string, description: string): ObjectRef<PothosTypes, LiveEvent> {
  return builder.objectRef<LiveEvent>(name).implement({ description, interfaces: [LiveEventRef] });
}

/**
 * The row an event is about, as it is now, with the subscriber's selection: read once per
 * instance for all the subscribers of the event that select the same, then resolved for each
 * with its own field rules. By id within the feed's organization; who may see which rows of
 * it (another member's analytics) the stream has already decided. Null on a GAP.
 */
export function liveRow<T>(
  ctx: Context,
  item: LiveEvent,
  model: string,
  query: object,
  load: (where: { id: string; organizationId: string }) => Promise<T>,
  id: string | null = item.id,
): Promise<T | null> {
  if (id === null) return Promise.resolve(null);
  const key = `${item.organizationId}|${item.cursor}|${model}|${id}|${JSON.stringify(query)}`;
  return ctx.live.shared(key, () => load({ id, organizationId: item.organizationId }));
}

/** Resolves the global id of the row an event is about (null on a GAP). */
export function subjectId(typename: string) {
  return (item: LiveEvent) => (item.id === null ? null : encodeId(typename, item.id));
}

const AFTER_DESCRIPTION =
  "Resume after this cursor (the last one you received, or one from `liveCursor`): what was published since is sent first.";

export function liveSubscription(
  name: string,
  options: {
    type: ObjectRef<PothosTypes, LiveEvent>;
    description: string;
    feed: LiveFeed;
    permission: Permission;
    perUser?: boolean;
    /** An optional argument narrowing the feed to one row of the organization, by its global id. */
    narrow?: {
      arg: string;
      typename: string;
      exists: (ctx: Context, id: string, organizationId: string) => Promise<boolean>;
    };
  },
) {
  const { narrow } = options;
  builder.subscriptionField(name, (t) =>
    t.field({
      type: options.type,
      authScopes: { authenticated: true },
      description: options.description,
      args: {
        organizationId: t.arg.id({ required: true }),
        after: t.arg.string({ required: false, description: AFTER_DESCRIPTION }),
        ...(narrow
          ? { [narrow.arg]: t.arg.id({ required: false, description: `Only this ${narrow.typename}.` }) }
          : {}),
      },
      subscribe: (_root, args, ctx) => {
        const only = narrow
          ? optionalId((args as Record<string, string | null | undefined>)[narrow.arg], narrow.typename)
          : null;
        return liveStream(ctx, {
          feed: options.feed,
          organizationId: args.organizationId,
          after: args.after,
          permission: options.permission,
          perUser: options.perUser,
          only:
            narrow && only
              ? {
                  id: only,
                  resource: narrow.typename,
                  exists: (organizationId) => narrow.exists(ctx, only, organizationId),
                }
              : undefined,
        });
      },
      resolve: (item) => item,
    }),
  );
}

builder.queryField("liveCursor", (t) =>
  t.string({
    authScopes: { authenticated: true },
    // Changes without a mutation: never kept by the response cache.
    extensions: { responseCache: false },
    description:
      "The newest cursor of an organization's feed. Read it before you read your data, then subscribe with `after` set to it: nothing published since is missed (some events may repeat what your data already shows).",
    args: { organizationId: t.arg.id({ required: true }), feed: t.arg({ type: LiveFeedRef, required: true }) },
    resolve: async (_root, args, ctx) => {
      const organizationId = decodeId(String(args.organizationId), "Organization").id;
      await authorize(ctx, organizationId, args.feed === "AUDIT" ? "audit:read" : "read");
      return ctx.live.head(args.feed, organizationId);
    },
  }),
);
