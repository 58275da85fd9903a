// Live feeds: typed per-organization streams of changes that subscribers can resume. A
// subscriber gets, in cursor order and once each: what it missed after its cursor (or a GAP
// when part of that is gone), then everything published from then on, on any instance.
import { setTimeout as sleep } from "node:timers/promises";
import { Repeater } from "graphql-yoga";
import { AppError } from "../errors.ts";
import { compareCursors, FIRST_CURSOR, LIVE_TOPIC, type LiveEntry, type LiveLog } from "./liveLog.ts";
import type { Logger } from "./logger.ts";
import type { ChangeKind, ChangePayload, PubSub } from "./pubsub.ts";

export const LIVE_FEEDS = [
  "EVENTS",
  "PATTERNS",
  "SUGGESTIONS",
  "EXECUTIONS",
  "IMPORTS",
  "AUDIT",
  "MEMBERSHIPS",
] as const;
export type LiveFeed = (typeof LIVE_FEEDS)[number];

/** What a live subscriber is handed: an entry, or word that entries after its cursor were dropped. */
export type LiveItem = LiveEntry | { kind: "GAP"; cursor: string; id: null; data?: undefined };

/** A change announced on an organization's feed, under its outbox row's id. */
export interface LiveNoticeOf {
  feed: LiveFeed;
  organizationId: string;
  change: { id: string; kind: ChangeKind; data?: ChangePayload["data"] };
  noticeId: string;
}

/** An item as a subscription resolves it: with the organization whose feed it came from. */
export type LiveEvent = LiveItem & { organizationId: string };

export interface Live {
  /**
   * The outbox relay's (src/infra/outbox.ts): features announce changes through the outbox,
   * in the transaction of the change. Appends in order; resolves with how many of the first
   * are in the log; throws when the log is unreachable.
   */
  append(notices: LiveNoticeOf[]): Promise<number>;
  head(feed: LiveFeed, organizationId: string): Promise<string>;
  subscribe(feed: LiveFeed, organizationId: string, after: string | null): Repeater<LiveItem>;
  /**
   * Calls back with each entry as it is published, with no replay (what a Redis reconnect
   * drops is lost): for guards, which also look again on onReconnect, not for clients.
   */
  watch(feed: LiveFeed, organizationId: string, listener: (change: ChangePayload) => void): () => void;
  /** Resolves once what is published on the feed from now on reaches this instance. */
  listening(feed: LiveFeed, organizationId: string): Promise<void>;
  onReconnect(listener: () => void): () => void;
  /**
   * One load for everyone who asks with the same key within a moment: the many subscribers
   * of one event, with the same selection, read its row once per instance, not once each.
   */
  shared<T>(key: string, load: () => Promise<T>): Promise<T>;
}

const SHARED_MS = 2_000;
const SHARED_MAX = 10_000;

const PAGE = 500;

export class SlowConsumerError extends AppError {
  constructor() {
    super(
      "SLOW_CONSUMER",
      "This subscription fell too far behind and was ended; subscribe again with the last cursor you received.",
    );
  }
}

export function createLive(deps: { pubsub: PubSub; log: LiveLog; logger: Logger; maxQueue: number }): Live {
  const { pubsub, log, logger } = deps;
  const streamOf = (feed: LiveFeed, organizationId: string) => `${organizationId}:${feed}`;

  const shared = new Map<string, Promise<unknown>>();
  return {
    shared<T>(key: string, load: () => Promise<T>) {
      const hit = shared.get(key) as Promise<T> | undefined;
      if (hit) return hit;
      const loading = load();
      if (shared.size < SHARED_MAX) {
        shared.set(key, loading);
        setTimeout(() => shared.delete(key), SHARED_MS).unref();
        // A failed load is not kept: the next subscriber tries again.
        loading.catch(() => shared.delete(key));
      }
      return loading;
    },
    append: (notices) =>
      log.append(
        notices.map((n) => ({ stream: streamOf(n.feed, n.organizationId), change: n.change, noticeId: n.noticeId })),
      ),
    head: (feed, organizationId) => log.head(streamOf(feed, organizationId)),
    watch: (feed, organizationId, listener) => pubsub.listen(LIVE_TOPIC, streamOf(feed, organizationId), listener),
    listening: (feed, organizationId) => log.listening(streamOf(feed, organizationId)),
    onReconnect: (listener) => log.onReconnect(listener),
    subscribe(feed, organizationId, after) {
      const stream = streamOf(feed, organizationId);
      return new Repeater<LiveItem>(async (push, stop) => {
        let stopped = false;
        // A push waits for the subscriber; once stopped, nothing more is waited for (the
        // repeater ends only when this function returns).
        const deliver = (item: LiveItem) => Promise.race([push(item), stop]);
        // Live entries wait here while earlier ones are delivered; a subscriber that falls
        // maxQueue behind is ended (it can resume from its last cursor), not buffered without bound.
        const waiting: (LiveEntry | "recheck")[] = [];
        let wake: (() => void) | null = null;
        const enqueue = (item: LiveEntry | "recheck") => {
          if (stopped) return;
          if (waiting.length >= deps.maxQueue) return void stop(new SlowConsumerError());
          waiting.push(item);
          const w = wake;
          wake = null;
          w?.();
        };
        const offLive = pubsub.listen(LIVE_TOPIC, stream, (entry) => enqueue(entry as LiveEntry));
        // Entries published while pub/sub was down are in the log: read them back.
        const offReconnect = log.onReconnect(() => enqueue("recheck"));
        void stop.then(() => {
          stopped = true;
          offReconnect();
          offLive();
          wake?.();
        });

        // Delivers the log after `from` (up to `before`, a live entry in hand), page by page,
        // waiting for the subscriber; a GAP first wherever entries after the cursor were trimmed.
        let last = FIRST_CURSOR;
        const catchUp = async (from: string, before: LiveEntry | null) => {
          let cursor = from;
          for (;;) {
            const page = await log.read(stream, cursor, before?.cursor ?? null, PAGE);
            if (stopped) return;
            if (!before && compareCursors(cursor, page.head) > 0) {
              // Past the newest: another deployment's cursor, or a history that is gone.
              cursor = page.head;
              await deliver({ kind: "GAP", cursor, id: null });
            } else if (compareCursors(page.dropped, cursor) > 0) {
              // Never a GAP after the entry in hand: that would put cursors out of order.
              cursor = before && compareCursors(page.dropped, before.prev) >= 0 ? before.prev : page.dropped;
              await deliver({ kind: "GAP", cursor, id: null });
            }
            // Advanced as each is delivered: a catch-up that fails halfway resumes after it.
            last = cursor;
            for (const entry of page.entries) {
              if (stopped) return;
              await deliver(entry);
              cursor = entry.cursor;
              last = cursor;
            }
            if (page.entries.length < PAGE) return;
          }
        };

        try {
          // Listening before reading, so nothing falls between the log and the live entries.
          await log.listening(stream);
          if (after) await catchUp(after, null);
          else last = await log.head(stream);
          let failures = 0;
          while (!stopped) {
            const next = waiting[0];
            if (next === undefined) {
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              continue;
            }
            try {
              if (next === "recheck") {
                // Redis is back: once this instance listens again, read what it missed.
                await log.listening(stream);
                await catchUp(last, null);
              } else if (compareCursors(next.cursor, last) > 0) {
                // A hole: entries published while this subscriber was not yet (or no longer) listening.
                if (next.prev !== last) await catchUp(last, next);
                if (stopped) break;
                await deliver(next);
                last = next.cursor;
              }
              waiting.shift();
              failures = 0;
            } catch (err) {
              // Redis away (or not quite back): the same step again, a little later.
              failures++;
              logger.debug({ err: (err as Error).message, stream }, "live catch-up failed; retrying");
              await Promise.race([sleep(Math.min(100 * 2 ** failures, 5_000), undefined, { ref: false }), stop]);
            }
          }
        } catch (err) {
          stop(err);
        }
      });
    },
  };
}
