// The transactional outbox of live feeds. A feature changes rows and announces the change in
// one transaction (`outbox.transaction`): the notice is a row of live_outbox, so it commits
// or rolls back with the change. After commit a relay moves rows into the feeds' log (Redis
// Streams, or the in-process log) and deletes a row only once its entry is there: an outage
// of Redis (or of PostgreSQL after the commit) delays delivery, never drops it, and a row
// relayed twice (a relay that died between append and delete) is appended once.
//
// One relay at a time per deployment, across instances (a transaction-scoped advisory lock),
// reads the rows in id order: a backlog (after an outage, or left by an instance that died)
// goes out in the order it was written, not grouped by the instance that wrote it. Every
// commit nudges its instance's relay; an instance that finds the lock taken looks again a
// moment later, so rows committed while another relayed are not left for the next poll.
import type { Prisma } from "../generated/prisma/client.ts";
import type { PrismaClient } from "./db.ts";
import type { Live, LiveFeed } from "./live.ts";
import type { Logger } from "./logger.ts";
import type { ChangeKind, ChangePayload } from "./pubsub.ts";

export type Tx = Prisma.TransactionClient;
export type Notify = (
  feed: LiveFeed,
  organizationId: string,
  change: { id: string; kind: ChangeKind; data?: ChangePayload["data"] },
) => void;

export interface Outbox {
  /**
   * Runs `write` in one transaction with the notices it makes: both commit or neither.
   * What it notifies reaches the live feeds once committed.
   */
  transaction<T>(
    write: (tx: Tx, notify: Notify) => Promise<T>,
    options?: { timeout?: number; maxWait?: number },
  ): Promise<T>;
  /** Relays what is waiting now (also what the timer does): resolves when this pass is done. */
  relay(): Promise<void>;
  /** The deployment's rows waiting to be relayed (written by any instance). */
  pending(): Promise<number>;
  /** When the oldest of them was written (null when none wait): how late the live feeds are. */
  oldest(): Promise<Date | null>;
  stop(): Promise<void>;
}

const BATCH = 500;
const POLL_MS = 1_000;
/** How soon an instance that found another relaying looks again. */
const BUSY_RETRY_MS = 10;
/** A pass that takes longer (a dependency that stopped answering) is abandoned and retried. */
const PASS_TIMEOUT_MS = 10_000;

export function createOutbox(deps: {
  prisma: PrismaClient;
  live: Live;
  logger: Logger;
  /** The deployment's Redis key prefix: its notices only. */
  deployment: string;
  pollMs?: number;
  /** After a transaction with notices commits: the organizations it changed (the response cache). */
  committed?: (organizations: string[]) => void;
}): Outbox {
  const { prisma, live, logger, deployment } = deps;
  const lockKey = `live_outbox:${deployment}`;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  // After a failed pass, commits do not each try again: the timer does, once a poll.
  let failing = false;
  let busyRetry: NodeJS.Timeout | null = null;

  /** One batch, under the lock: how many rows there were, or null when another relay holds it. */
  async function pass(): Promise<number | null> {
    const outcome = await prisma.$transaction(
      async (tx) => {
        const [lock] = await tx.$queryRaw<{ ok: boolean }[]>`
          SELECT pg_try_advisory_xact_lock(hashtextextended(${lockKey}, 0)) AS ok`;
        if (!lock?.ok) return null;
        const rows = await tx.liveOutbox.findMany({ where: { deployment }, orderBy: { id: "asc" }, take: BATCH });
        if (!rows.length) return { total: 0, appended: 0 };
        const appended = await live.append(
          rows.map((row) => ({
            feed: row.feed as LiveFeed,
            organizationId: row.organizationId,
            change: { id: row.changeId, kind: row.kind as ChangeKind, data: (row.data ?? undefined) as never },
            noticeId: String(row.id),
          })),
        );
        if (appended)
          await tx.liveOutbox.deleteMany({ where: { id: { in: rows.slice(0, appended).map((r) => r.id) } } });
        return { total: rows.length, appended };
      },
      { timeout: PASS_TIMEOUT_MS, maxWait: PASS_TIMEOUT_MS },
    );
    if (outcome && outcome.appended < outcome.total)
      throw new Error(`the live log took ${outcome.appended} of ${outcome.total} notices`);
    return outcome ? outcome.total : null;
  }

  async function drain() {
    do {
      again = false;
      for (;;) {
        const total = await pass();
        if (total === null) {
          // Another instance is relaying: what this one committed meanwhile may be after its read.
          busyRetry ??= setTimeout(() => {
            busyRetry = null;
            if (!stopped) void run();
          }, BUSY_RETRY_MS);
          busyRetry.unref();
          return;
        }
        if (total < BATCH || stopped) break;
      }
    } while (again && !stopped);
  }

  function run(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = drain()
      .then(() => {
        if (failing) logger.info("live outbox: relaying again");
        failing = false;
      })
      .catch((err: unknown) => {
        // Redis or PostgreSQL away: the rows stay; the timer tries again. Said once per outage.
        if (!failing) logger.warn({ err: (err as Error).message }, "live outbox: relay failed; retrying");
        failing = true;
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  const timer = setInterval(() => {
    if (!stopped) void run();
  }, deps.pollMs ?? POLL_MS);
  timer.unref();
  // Rows an earlier life of this process (or a dead instance) left, without waiting a poll.
  void run();

  return {
    async transaction(write, options) {
      const notices: Prisma.LiveOutboxCreateManyInput[] = [];
      const result = await prisma.$transaction(async (tx) => {
        const value = await write(tx, (feed, organizationId, change) => {
          notices.push({
            feed,
            organizationId,
            changeId: change.id,
            kind: change.kind,
            data: change.data ?? undefined,
            deployment,
          });
        });
        if (notices.length) await tx.liveOutbox.createMany({ data: notices });
        return value;
      }, options);
      if (notices.length) deps.committed?.([...new Set(notices.map((n) => n.organizationId))]);
      if (notices.length && !failing && !stopped) void run();
      return result;
    },
    relay: () => run(),
    pending: () => prisma.liveOutbox.count({ where: { deployment } }),
    // The lowest id is the oldest row, found through the (deployment, id) index.
    oldest: async () => {
      const row = await prisma.liveOutbox.findFirst({
        where: { deployment },
        orderBy: { id: "asc" },
        select: { createdAt: true },
      });
      return row?.createdAt ?? null;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      if (busyRetry) clearTimeout(busyRetry);
      // What this instance committed goes out before it closes, if the log takes it.
      await running;
      await run();
    },
  };
}
