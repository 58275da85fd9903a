// Live feeds: typed per-organization streams of changes that subscribers can resume. A
// subscriber gets, in cursor order and once each: what it missed after its cursor (or a GAP
// when part of that is gone), then everything published from then on, on any instance.
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

export interface Live {
  /** After the change is committed. Never throws: a change is not undone because its notice failed. */
  publish(
    feed: LiveFeed,
    organizationId: string,
    change: { id: string; kind: ChangeKind; data?: ChangePayload["data"] },
  ): Promise<void>;
  head(feed: LiveFeed, organizationId: string): Promise<string>;
  subscribe(feed: LiveFeed, organizationId: string, after: string | null): Repeater<LiveItem>;
  /** Raw entries as they are published, unordered across a Redis reconnect: for guards, not for clients. */
  watch(feed: LiveFeed, organizationId: string): AsyncIterableIterator<ChangePayload>;
}

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

  return {
    async publish(feed, organizationId, change) {
      try {
        await log.append(streamOf(feed, organizationId), change);
      } catch (err) {
        logger.warn({ err: (err as Error).message, feed, organizationId }, "live update not published");
      }
    },
    async head(feed, organizationId) {
      return (await log.position(streamOf(feed, organizationId), FIRST_CURSOR)).head;
    },
    watch: (feed, organizationId) => pubsub.subscribe(LIVE_TOPIC, streamOf(feed, organizationId)),
    subscribe(feed, organizationId, after) {
      const stream = streamOf(feed, organizationId);
      return new Repeater<LiveItem>(async (push, stop) => {
        // Listening starts before the log is read, so nothing falls between the two.
        const live = pubsub.subscribe(LIVE_TOPIC, stream) as AsyncIterableIterator<LiveEntry>;
        void stop.then(() => live.return?.());
        // Live entries are not waited for: a subscriber that falls maxQueue behind is ended
        // (it can resume from its last cursor) rather than buffered without bound.
        let outstanding = 0;
        const deliver = (item: LiveItem) => {
          outstanding++;
          if (outstanding > deps.maxQueue) stop(new SlowConsumerError());
          else
            void push(item).then(() => {
              outstanding--;
            });
        };
        // Reads the log between two cursors, in pages, waiting for the subscriber between
        // entries; a GAP first when part of it was dropped, then what is kept.
        let last = FIRST_CURSOR;
        const catchUp = async (from: string, before: string | null) => {
          const position = await log.position(stream, from);
          let cursor = from;
          if (position.gap) {
            cursor = position.complete;
            await push({ kind: "GAP", cursor, id: null });
          }
          for (;;) {
            const page = await log.read(stream, cursor, before, PAGE);
            for (const entry of page) {
              await push(entry);
              cursor = entry.cursor;
            }
            if (page.length < PAGE) break;
          }
          last = cursor;
        };
        const first = live.next();
        try {
          await log.listening(stream);
          if (after) await catchUp(after, null);
          else last = (await log.position(stream, FIRST_CURSOR)).head;
          let next = await first;
          while (!next.done) {
            const entry = next.value;
            if (compareCursors(entry.cursor, last) > 0) {
              // A hole: entries published while this subscriber was not yet (or no longer) listening.
              if (entry.prev !== last) await catchUp(last, entry.cursor);
              deliver(entry);
              last = entry.cursor;
            }
            next = await live.next();
          }
        } catch (err) {
          stop(err);
        }
      });
    },
  };
}
