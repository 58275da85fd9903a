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
  /** The stream's previous cursor: a subscriber that did not deliver that one has a hole to fill. */
  prev: string;
}

/** A page of a stream, read at one instant with where the stream stands. */
export interface LivePage {
  entries: LiveEntry[];
  /** The newest cursor ever appended ("0-0": none, or the stream expired). */
  head: string;
  /** The newest cursor trimmed away ("0-0": none); entries up to it are gone. */
  dropped: string;
}

/** A change to append to a stream, under the id of the outbox row that carried it. */
export interface LiveNotice {
  stream: string;
  change: { id: string; kind: ChangeKind; data?: ChangePayload["data"] };
  /**
   * The outbox row's id: a notice appended before (by a relay that died before deleting its
   * row, or by two relays at once) is not appended again while the stream remembers it.
   */
  noticeId: string;
}

export interface LiveLog {
  /**
   * Appends in order and resolves with how many of the first notices are in the log (this
   * time or before); the rest (after a failure: Redis went away) are for another attempt.
   */
  append(notices: LiveNotice[]): Promise<number>;
  /** Up to `limit` entries after `after` and before `before` (both exclusive), oldest first. */
  read(stream: string, after: string, before: string | null, limit: number): Promise<LivePage>;
  head(stream: string): Promise<string>;
  /**
   * Resolves once entries published from now on reach this instance's subscribers of the
   * stream; a subscriber reads the log after it, so nothing falls between the two.
   */
  listening(stream: string): Promise<void>;
  /** Calls back when this instance's pub/sub connection came back: what it missed is in the log. */
  onReconnect(listener: () => void): () => void;
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
// Trimmed by age, then by count. Beside the stream (KEYS[2]) are its newest cursor and the
// newest one trimmed away, so that a reader learns whether anything after its cursor is gone.
// The stream expires with the retention (an idle organization's feed leaves Redis); those two
// cursors stay far longer (ARGV[6]), and an expired stream counts as trimmed up to its head.
//
// KEYS[3] remembers the notice ids appended (by age and count, as the stream): a notice
// relayed twice is appended once. Nothing is relayed while PostgreSQL is down, so a notice
// whose outbox row could not be deleted is still remembered when its relay tries again,
// unless that outage outlasted the retention.
const APPEND = `
if redis.call("ZSCORE", KEYS[3], ARGV[7]) then return "" end
local prev = redis.call("HGET", KEYS[2], "head") or "0-0"
local dropped = false
if prev ~= "0-0" and redis.call("XLEN", KEYS[1]) == 0 then dropped = prev end
local id = redis.call("XADD", KEYS[1], "*", "e", ARGV[2])
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
redis.call("ZADD", KEYS[3], string.match(id, "^%d+"), ARGV[7])
redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", "(" .. string.match(ARGV[3], "^%d+"))
local remembered = redis.call("ZCARD", KEYS[3]) - tonumber(ARGV[1])
if remembered > 0 then redis.call("ZREMRANGEBYRANK", KEYS[3], 0, remembered - 1) end
redis.call("PEXPIRE", KEYS[3], ARGV[5])
redis.call("HSET", KEYS[2], "head", id)
if dropped then redis.call("HSET", KEYS[2], "dropped", dropped) end
redis.call("PEXPIRE", KEYS[1], ARGV[5])
redis.call("PEXPIRE", KEYS[2], ARGV[6])
redis.call("PUBLISH", ARGV[4], '{"cursor":"' .. id .. '","prev":"' .. prev .. '",' .. string.sub(ARGV[2], 2))
return id`;

// A page and the trim point together: a page read apart from it could start past entries
// trimmed in between without anyone noticing.
const READ = `
local meta = redis.call("HMGET", KEYS[2], "head", "dropped")
local head = meta[1] or "0-0"
local dropped = meta[2] or "0-0"
if redis.call("XLEN", KEYS[1]) == 0 then dropped = head end
local entries = redis.call("XRANGE", KEYS[1], "(" .. ARGV[1], ARGV[2], "COUNT", ARGV[3])
return { head, dropped, entries }`;

type AppendPipeline = { floyoLiveAppend(...args: (string | number)[]): unknown };

/** How long a feed's newest and last trimmed cursors outlive its entries. */
const META_TTL_MS = 30 * 86_400_000;

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
  // One hash tag for a stream and what goes with it: a Redis Cluster keeps them in one slot.
  const keys = (stream: string) => [`live:{${stream}}`, `live:{${stream}}:meta`, `live:{${stream}}:notices`];
  // Channel names are not covered by ioredis' keyPrefix: the same prefix as pubsub.ts.
  const channel = (stream: string) => `${channelPrefix}${LIVE_TOPIC}:${stream}`;
  // EVALSHA, falling back to EVAL once per connection: the script is not sent with every append.
  redis.defineCommand("floyoLiveAppend", { numberOfKeys: 3, lua: APPEND });
  // One pair of listeners on the connection, fanned out: not one pair per subscriber.
  const reconnectListeners = new Set<() => void>();
  let connected = true;
  subscriber.on("close", () => {
    connected = false;
  });
  // ioredis subscribes again on reconnect, then says "ready".
  subscriber.on("ready", () => {
    if (!connected) for (const listener of reconnectListeners) listener();
    connected = true;
  });
  return {
    async append(notices) {
      // One round trip for a batch, in order.
      const pipeline = redis.pipeline();
      const minId = `${Date.now() - retention.retentionMs}-0`;
      for (const { stream, change, noticeId } of notices) {
        const body = JSON.stringify({ id: change.id, kind: change.kind, data: change.data });
        const args = [retention.retentionEvents, body, minId, channel(stream), retention.retentionMs, META_TTL_MS];
        (pipeline as unknown as AppendPipeline).floyoLiveAppend(...keys(stream), ...args, noticeId);
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.findIndex(([err]) => err);
      return failed === -1 ? results.length : failed;
    },
    async read(stream, after, before, limit) {
      const [head, dropped, rows] = (await redis.eval(
        READ,
        2,
        ...keys(stream).slice(0, 2),
        after,
        before ? `(${before}` : "+",
        limit,
      )) as [string, string, [string, string[]][]];
      // `prev` matters only on published entries; what is read back is already in order.
      const entries = rows.map(([cursor, fields]) => ({
        ...(JSON.parse(fields[1] as string) as ChangePayload),
        cursor,
        prev: "",
      }));
      return { head, dropped, entries };
    },
    async head(stream) {
      return (await redis.hget(keys(stream)[1] as string, "head")) ?? FIRST_CURSOR;
    },
    // The event target sent SUBSCRIBE without waiting; Redis answers a connection's commands
    // in order, so the reply to this one means that one is in effect.
    listening: async (stream) => {
      await subscriber.subscribe(channel(stream));
    },
    onReconnect(listener) {
      reconnectListeners.add(listener);
      return () => reconnectListeners.delete(listener);
    },
  };
}

/**
 * The embedded mode's log: one process, so appends are ordered by the event loop. Cursors
 * start after the process's start time, and every stream counts as trimmed up to it: a cursor
 * from an earlier life is a gap (that history is gone).
 */
export function createInProcessLiveLog(pubsub: PubSub, retention: Retention): LiveLog {
  const bootMs = Date.now();
  const boot = `${bootMs}-0`;
  const streams = new Map<
    string,
    { entries: LiveEntry[]; dropped: string; head: string; notices: Map<string, string> }
  >();
  let lastMs = bootMs;
  let seq = 0;
  const nextCursor = () => {
    const now = Date.now();
    if (now > lastMs) {
      lastMs = now;
      seq = 0;
    } else seq++;
    return `${lastMs}-${seq}`;
  };
  const trim = (s: { entries: LiveEntry[]; dropped: string; notices: Map<string, string> }) => {
    const oldest = Date.now() - retention.retentionMs;
    while (
      s.entries.length > retention.retentionEvents ||
      (s.entries.length > 0 && Number((s.entries[0] as LiveEntry).cursor.split("-")[0]) < oldest)
    ) {
      s.dropped = (s.entries.shift() as LiveEntry).cursor;
    }
    // Notice ids are remembered as long as their entries (insertion order is cursor order).
    for (const [noticeId, cursor] of s.notices) {
      if (compareCursors(cursor, s.dropped) > 0) break;
      s.notices.delete(noticeId);
    }
  };
  // Idle streams are trimmed too, now and then, so a quiet organization's log empties.
  const sweep = setInterval(
    () => {
      for (const s of streams.values()) trim(s);
    },
    Math.min(retention.retentionMs, 60_000),
  );
  sweep.unref();
  return {
    async append(notices) {
      for (const { stream, change, noticeId } of notices) {
        let s = streams.get(stream);
        if (!s) {
          s = { entries: [], dropped: boot, head: boot, notices: new Map() };
          streams.set(stream, s);
        }
        // One process, one relay: a notice comes twice only from a row left by a crash, whose
        // first append died with that process's log.
        if (s.notices.has(noticeId)) continue;
        const entry: LiveEntry = {
          id: change.id,
          kind: change.kind,
          data: change.data,
          cursor: nextCursor(),
          prev: s.head,
        };
        s.entries.push(entry);
        s.notices.set(noticeId, entry.cursor);
        s.head = entry.cursor;
        trim(s);
        pubsub.publish(LIVE_TOPIC, stream, entry);
      }
      return notices.length;
    },
    async read(stream, after, before, limit) {
      const s = streams.get(stream);
      if (!s) return { head: boot, dropped: boot, entries: [] };
      const entries = s.entries
        .filter((e) => compareCursors(e.cursor, after) > 0 && (!before || compareCursors(e.cursor, before) < 0))
        .slice(0, limit);
      return { head: s.head, dropped: s.dropped, entries };
    },
    async head(stream) {
      return streams.get(stream)?.head ?? boot;
    },
    listening: async () => {},
    onReconnect: () => () => {},
  };
}
