// Writes audit entries, with their notices on the AUDIT feed in the same transaction. While
// the database is unreachable, the entries of the mutations it refused are held in memory and
// written once it answers again (in order, with their original time), up to MAX_HELD: past
// that, and for a process that exits before the database returns, they are lost and counted
// in the log. What is held is redacted already; nothing secret waits here.
import type { AppDeps } from "../../context.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { isUnavailable } from "../../infra/unavailable.ts";

const MAX_HELD = 10_000;
/** And at most this much of their inputs (each entry's details can be large). */
const MAX_HELD_BYTES = 64 * 1024 * 1024;
const RETRY_MS = 2_000;

export interface AuditWriter {
  write(rows: Prisma.AuditLogCreateManyInput[], requestId: string): Promise<void>;
  /** Entries waiting for the database. */
  held(): number;
  /** Writes what is held, if the database takes it. */
  flush(): Promise<void>;
  stop(): Promise<void>;
}

export function createAuditWriter(deps: Pick<AppDeps, "outbox" | "logger">): AuditWriter {
  const { outbox, logger } = deps;
  const held: Prisma.AuditLogCreateManyInput[] = [];
  const sizes: number[] = [];
  let heldBytes = 0;
  const take = (n: number) => {
    held.splice(0, n);
    for (const size of sizes.splice(0, n)) heldBytes -= size;
  };
  let dropped = 0;
  let flushing: Promise<void> | null = null;
  // Said once per outage (and once per overflow), not once per refused mutation.
  let saidHeld = false;
  let saidDropped = false;

  const insert = (rows: Prisma.AuditLogCreateManyInput[]) =>
    outbox.transaction(async (tx, notify) => {
      const written = await tx.auditLog.createManyAndReturn({ data: rows, select: { id: true, organizationId: true } });
      for (const entry of written)
        if (entry.organizationId) notify("AUDIT", entry.organizationId, { id: entry.id, kind: "CREATED" });
    });

  function hold(rows: Prisma.AuditLogCreateManyInput[]) {
    let kept = 0;
    for (const row of rows) {
      const size = JSON.stringify(row.details ?? null).length;
      if (held.length >= MAX_HELD || heldBytes + size > MAX_HELD_BYTES) break;
      held.push(row);
      sizes.push(size);
      heldBytes += size;
      kept++;
    }
    if (rows.length > kept) {
      dropped += rows.length - kept;
      if (!saidDropped)
        logger.error({ dropped }, "audit entries lost: too many held while the database is unreachable");
      saidDropped = true;
    }
  }

  async function write(rows: Prisma.AuditLogCreateManyInput[], requestId: string) {
    const createdAt = new Date();
    const stamped = rows.map((row) => ({ ...row, createdAt: row.createdAt ?? createdAt }));
    // Behind what waits, so that entries (and their notices) keep their order.
    if (held.length) {
      hold(stamped);
      return flush();
    }
    try {
      await insert(stamped);
    } catch (err) {
      if (isUnavailable(err)) {
        if (!saidHeld) logger.warn({ requestId }, "database unreachable: audit entries held until it answers");
        saidHeld = true;
        return hold(stamped);
      }
      // One bad row (an organization deleted by the same request) must not lose the others:
      // write them one by one, detached from any organization that is gone.
      logger.error({ err, requestId }, "audit entries failed as a batch; writing one by one");
      for (const row of stamped) {
        await insert([row])
          .catch(() => insert([{ ...row, organizationId: null }]))
          .catch((e: unknown) => {
            if (isUnavailable(e)) return hold([row]);
            logger.error({ err: e, requestId, action: row.action }, "audit entry not written");
          });
      }
    }
  }

  function flush(): Promise<void> {
    if (flushing || !held.length) return flushing ?? Promise.resolve();
    flushing = (async () => {
      while (held.length) {
        const batch = held.slice(0, 500);
        try {
          await insert(batch);
          take(batch.length);
        } catch (err) {
          if (isUnavailable(err)) throw err;
          // Not the database being away: the one-by-one path keeps every row it can.
          take(batch.length);
          await write(batch, "held");
          continue;
        }
        logger.info({ entries: batch.length, left: held.length, lost: dropped }, "held audit entries written");
      }
      saidHeld = false;
      saidDropped = false;
    })()
      .catch((err: unknown) => logger.debug({ err: (err as Error).message }, "held audit entries wait on"))
      .finally(() => {
        flushing = null;
      });
    return flushing;
  }

  const timer = setInterval(() => void flush(), RETRY_MS);
  timer.unref();
  return {
    write,
    held: () => held.length,
    flush,
    async stop() {
      clearInterval(timer);
      await flush();
      if (held.length)
        logger.error({ lost: held.length }, "audit entries lost: the database did not answer before exit");
    },
  };
}
