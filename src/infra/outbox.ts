// The transactional outbox of live feeds. A feature changes rows and announces the change in
// one transaction (`outbox.transaction`): the notice is a row of live_outbox, so it commits
// or rolls back with the change. After commit a relay moves rows into the feeds' log (Redis
// Streams, or the in-process log) in order, and deletes a row only once its entry is there:
// an outage of Redis (or of PostgreSQL after the commit) delays delivery, never drops it,
// and a row relayed twice (a relay died between append and delete) is appended once.
//
// The writing instance relays its own rows at once; every instance also relays rows older
// than ORPHAN_MS from anyone (an instance that died, an earlier life of this process).
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
  /** Rows waiting to be relayed, by this instance or any: for readiness and tests. */
  pending(): Promise<number>;
  stop(): Promise<void>;
}

const BATCH = 500;
/** A row this old is relayed by whoever sees it: its writer may be gone. */
const ORPHAN_MS = 5_000;
const POLL_MS = 1_000;

export function createOutbox(deps: {
  prisma: PrismaClient;
  live: Live;
  logger: Logger;
  instanceId: string;
  pollMs?: number;
}): Outbox {
  const { prisma, live, logger, instanceId } = deps;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  // After a failed pass, commits do not each try again: the timer does, once a poll.
  let failing = false;

  async function pass(where: Prisma.LiveOutboxWhereInput): Promise<number> {
    const rows = await prisma.liveOutbox.findMany({ where, orderBy: { id: "asc" }, take: BATCH });
    if (!rows.length) return 0;
    const appended = await live.append(
      rows.map((row) => ({
        feed: row.feed as LiveFeed,
        organizationId: row.organizationId,
        change: { id: row.changeId, kind: row.kind as ChangeKind, data: (row.data ?? undefined) as never },
        noticeId: String(row.id),
      })),
    );
    if (appended)
      await prisma.liveOutbox.deleteMany({ where: { id: { in: rows.slice(0, appended).map((r) => r.id) } } });
    if (appended < rows.length) throw new Error(`live log took ${appended} of ${rows.length} notices`);
    return rows.length;
  }

  async function drain(orphans: boolean) {
    do {
      again = false;
      while ((await pass({ instanceId })) === BATCH && !stopped);
    } while (again && !stopped);
    if (orphans) {
      const before = new Date(Date.now() - ORPHAN_MS);
      while ((await pass({ createdAt: { lt: before } })) === BATCH && !stopped);
    }
  }

  function run(orphans: boolean): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = drain(orphans)
      .then(() => {
        if (failing) logger.info("live outbox: relaying again");
        failing = false;
      })
      .catch((err: unknown) => {
        // Redis or PostgreSQL away: the rows stay; the timer tries again.
        if (!failing) logger.warn({ err: (err as Error).message }, "live outbox: relay failed; retrying");
        failing = true;
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  const timer = setInterval(() => {
    if (!stopped) void run(true);
  }, deps.pollMs ?? POLL_MS);
  timer.unref();
  // Rows an earlier life of this process (or a dead instance) left, without waiting a poll.
  void run(true);

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
            instanceId,
          });
        });
        if (notices.length) await tx.liveOutbox.createMany({ data: notices });
        return value;
      }, options);
      if (notices.length && !failing && !stopped) void run(false);
      return result;
    },
    relay: () => run(true),
    pending: () => prisma.liveOutbox.count(),
    async stop() {
      stopped = true;
      clearInterval(timer);
      // What this instance committed goes out before it closes, if the log takes it.
      await running;
      await run(false);
    },
  };
}
