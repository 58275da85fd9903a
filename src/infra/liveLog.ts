// The log behind resumable live updates: every published change gets a cursor, increasing
// per stream (one stream per organization and feed), and is kept for a retention window so
// that a client that reconnects can be sent what it missed. Redis Streams in the services
// mode; a bounded in-process log in the embedded mode. Appending also publishes the entry on
// the pub/sub channel that live subscribers listen to, so it reaches every instance.
import type { Redis } from "ioredis";
import type { ChangeKind, ChangePayload, PubSub } from "./pubsub.ts";

/** What a subscriber receives: the change, its cursor, and the cursor of the entry before it. */
export interface LiveEntry extends ChangePayload {
  cursor: string;
  /** The stream's previous cursor ("0-0" for the first): a subscriber that did not deliver it has a hole to fill. */
  prev: string;
}

export interface LiveLog {
  append(stream: string, change: { id: string; kind: ChangeKind; data?: ChangePayload["data"] }): Promise<string>;
  /** Entries after `after` (exclusive) up to `before` (exclusive, or the end), oldest first. */
  read(stream: string, after: string, before: string | null, limit: number): Promise<LiveEntry[]>;
  /**
   * The newest cursor ("0-0" when nothing was ever appended); whether entries after `after`
   * were dropped; and the cursor after which every entry is still kept.
   */
  position(stream: string, after: string): Promise<{ head: string; gap: boolean; complete: string }>;
  /**
   * Resolves once entries published from now on reach this instance's subscribers of the
   * stream; a subscriber reads the log after it, so nothing falls between the two.
   */
  listening(stream: string): Promise<void>;
}

/** The pub/sub topic a stream's entries are published on; the stream name is its routing id. */
export const LIVE_TOPIC = "live";

export const FIRST_CURSOR = "0-0";
const CURSOR = /^(\d{1,16})-(\d{1,16})$/;

export function isCursor(value: string): boolean {
  return CURSOR.test(value);
}

/** Orders two cursors ("<ms>-<seq>", Redis' stream id format). */
export function compareCursors(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}

// Atomic, so that the order of publication is the order of cursors on every instance, and
// each entry names its predecessor: a subscriber that missed one (its Redis connection
// dropped, or it subscribed while the entry was published) notices and reads it back.
// Trimmed by age, then by count; the newest cursor trimmed away is kept beside the stream
// (KEYS[2]), so that a resuming client learns whether anything after its cursor is gone.
const APPEND = `
local last = redis.call("XREVRANGE", KEYS[1], "+", "-", "COUNT", 1)
local prev = "0-0"
if last[1] then prev = last[1][1] end
local id = redis.call("XADD", KEYS[1], "*", "e", ARGV[2])
local dropped = false
local old = redis.call("XREVRANGE", KEYS[1], "(" .. ARGV[3], "-", "COUNT", 1)
if old[1] then
  dropped = old[1][1]
  redis.call("XTRIM", KEYS[1], "MINID", ARGV[3])
end
local excess = redis.call("XLEN", KEYS[1]) - tonumber(ARGV[1])
if excess > 0 then
  local oldest = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", excess)
  dropped = oldest[#oldest][1]
  redis.call("XTRIM", KEYS[1], "MAXLEN", ARGV[1])
end
redis.call("HSET", KEYS[2], "head", id)
if dropped then redis.call("HSET", KEYS[2], "dropped", dropped) end
redis.call("PUBLISH", ARGV[4], '{"cursor":"' .. id .. '","prev":"' .. prev .. '",' .. string.sub(ARGV[2], 2))
return id`;

export interface Retention {
  retentionMs: number;
  retentionEvents: number;
}

export function createRedisLiveLog(
  redis: Redis,
  subscriber: Redis,
  channelPrefix: string,
  retention: Retention,
): LiveLog {
  const key = (stream: string) => `live:${stream}`;
  // Channel names are not covered by ioredis' keyPrefix: the same prefix as pubsub.ts.
  const channel = (stream: string) => `${channelPrefix}${LIVE_TOPIC}:${stream}`;
  return {
    async append(stream, change) {
      const body = JSON.stringify({ id: change.id, kind: change.kind, data: change.data });
      const minId = `${Date.now() - retention.retentionMs}-0`;
      // Channel names are not covered by ioredis' keyPrefix: the same prefix as pubsub.ts.
      const channel = `${channelPrefix}${LIVE_TOPIC}:${stream}`;
      return String(
        await redis.eval(
          APPEND,
          2,
          key(stream),
          `${key(stream)}:meta`,
          retention.retentionEvents,
          body,
          minId,
          channel,
        ),
      );
    },
    async read(stream, after, before, limit) {
      const rows = (await redis.xrange(key(stream), `(${after}`, before ? `(${before}` : "+", "COUNT", limit)) as [
        string,
        string[],
      ][];
      // `prev` matters only on published entries; what is read back is already in order.
      return rows.map(([cursor, fields]) => ({
        ...(JSON.parse(fields[1] as string) as ChangePayload),
        cursor,
        prev: "",
      }));
    },
    async position(stream, after) {
      const [head, dropped] = await redis.hmget(`${key(stream)}:meta`, "head", "dropped");
      // Nothing was appended, or the history was lost (Redis flushed).
      if (!head) return { head: FIRST_CURSOR, gap: after !== FIRST_CURSOR, complete: FIRST_CURSOR };
      return judge(after, head, dropped ?? FIRST_CURSOR);
    },
    // The event target sent SUBSCRIBE without waiting; Redis answers a connection's commands
    // in order, so the reply to this one means that one is in effect.
    listening: async (stream) => {
      await subscriber.subscribe(channel(stream));
    },
  };
}

/** A cursor after the newest (another deployment's, or history lost) is a gap too. */
function judge(after: string, head: string, dropped: string) {
  if (compareCursors(after, head) > 0) return { head, gap: true, complete: head };
  const gap = compareCursors(dropped, after) > 0;
  return { head, gap, complete: gap ? dropped : after };
}

/**
 * The embedded mode's log: one process, so appends are ordered by the event loop. Cursors
 * start at the process's start time, so a cursor from an earlier life is older than every
 * stream's floor and is reported as a gap (that history is gone).
 */
export function createInProcessLiveLog(pubsub: PubSub, retention: Retention): LiveLog {
  const boot = `${Date.now()}-0`;
  const streams = new Map<string, { entries: LiveEntry[]; dropped: string; head: string }>();
  let lastMs = 0;
  let seq = 0;
  const nextCursor = () => {
    const now = Date.now();
    if (now > lastMs) {
      lastMs = now;
      seq = 0;
    } else seq++;
    return `${lastMs}-${seq}`;
  };
  const streamOf = (name: string) => {
    let s = streams.get(name);
    if (!s) {
      s = { entries: [], dropped: boot, head: boot };
      streams.set(name, s);
    }
    return s;
  };
  return {
    async append(stream, change) {
      const s = streamOf(stream);
      const cursor = nextCursor();
      const entry: LiveEntry = { id: change.id, kind: change.kind, data: change.data, cursor, prev: s.head };
      s.entries.push(entry);
      s.head = cursor;
      const oldest = Date.now() - retention.retentionMs;
      while (
        s.entries.length > retention.retentionEvents ||
        (s.entries.length > 1 && Number((s.entries[0] as LiveEntry).cursor.split("-")[0]) < oldest)
      ) {
        s.dropped = (s.entries.shift() as LiveEntry).cursor;
      }
      pubsub.publish(LIVE_TOPIC, stream, entry);
      return cursor;
    },
    async read(stream, after, before, limit) {
      const s = streams.get(stream);
      if (!s) return [];
      return s.entries
        .filter((e) => compareCursors(e.cursor, after) > 0 && (!before || compareCursors(e.cursor, before) < 0))
        .slice(0, limit);
    },
    async position(stream, after) {
      const s = streams.get(stream);
      // FIRST_CURSOR asks for everything kept: only what this process dropped is a gap for it.
      if (after === FIRST_CURSOR && (!s || s.dropped === boot))
        return { head: s?.head ?? boot, gap: false, complete: FIRST_CURSOR };
      return judge(after, s?.head ?? boot, s?.dropped ?? boot);
    },
    listening: async () => {},
  };
}
