// The scheduler: node-cron ticks in every instance, and only the leader acts. Leadership is
// a lease (Redis SET NX PX with a random token in the services mode; in-process when
// embedded), renewed at a third of its TTL, released on shutdown; a leader that cannot renew
// steps down, and another instance takes over once the lease lapses. Every write the
// leader makes is fenced (see recordDueOccurrences), so a leader that stalled past its lease
// cannot record anything after its successor has. The leader also sweeps uploads whose
// process died mid-import (at the start of its leadership, then every half bound): that
// sweep needs no fence, each of its writes being conditional.
import cron, { type ScheduledTask } from "node-cron";
import type { AppDeps } from "../context.ts";
import { cleanupAll } from "../features/events/retention.service.ts";
import { sweepInterrupted } from "../features/uploads/liveness.ts";
import { recordDueOccurrences, SCHEDULER_LOCK, StaleLeaderError } from "../features/workflows/schedule.service.ts";
import type { Lease } from "../infra/lock.ts";

export interface SchedulerOptions {
  instanceId: string;
  lockTtlMs: number;
  /** When retention cleanup runs (cron, UTC). */
  retentionCron: string;
  /** An upload PROCESSING without a heartbeat for this long was interrupted. */
  importStaleMs: number;
}

export interface LeaderStatus {
  instanceId: string;
  isLeader: boolean;
  fencingToken: string | null;
  leaderSince: Date | null;
}

export function startScheduler(
  deps: Pick<AppDeps, "prisma" | "pubsub" | "live" | "logger" | "locks">,
  options: SchedulerOptions,
) {
  const { logger, locks } = deps;
  // node-cron's own warnings (a tick missed while the process was busy) go to our log.
  cron.setLogger({
    info: (m) => logger.debug({ cron: m }),
    warn: (m) => logger.warn({ cron: m }),
    error: (m, err) => logger.error({ cron: String(m), err }),
    debug: (m) => logger.debug({ cron: String(m) }),
  });
  let lease: Lease | null = null;
  let since: Date | null = null;
  let stopped = false;
  let inFlight: Promise<void> | null = null;
  let sweeping: Promise<void> | null = null;

  const stepDown = (why: string) => {
    if (lease) logger.warn({ instanceId: options.instanceId, why }, "scheduler: no longer the leader");
    lease = null;
    since = null;
  };

  async function campaign() {
    if (stopped) return;
    try {
      if (lease) {
        if (!(await locks.renew(lease, options.lockTtlMs))) stepDown("the lease could not be renewed");
        return;
      }
      let won = await locks.acquire(SCHEDULER_LOCK, options.lockTtlMs);
      // A lock service that lost its counter (Redis restarted empty) would hand out tokens
      // below the one the database holds, and every write would be refused: catch it up.
      const stored = won && (await deps.prisma.leaderFence.findUnique({ where: { name: SCHEDULER_LOCK } }));
      if (won && stored && won.fencingToken <= stored.fencingToken) {
        await locks.raiseFence(SCHEDULER_LOCK, stored.fencingToken);
        await locks.release(won);
        won = await locks.acquire(SCHEDULER_LOCK, options.lockTtlMs);
      }
      if (won && !stopped) {
        lease = won;
        since = new Date();
        logger.info({ instanceId: options.instanceId, fencingToken: String(won.fencingToken) }, "scheduler: leading");
        // Uploads of a previous leader's (or any instance's) process that died: not a bound later.
        void sweep();
      } else if (won) await locks.release(won);
    } catch (err) {
      // Redis unreachable: a leader cannot know it still leads.
      stepDown("the lock service failed");
      logger.error({ err }, "scheduler: election failed");
    }
  }

  function tick() {
    if (!lease || inFlight || stopped) return;
    inFlight = record(lease).finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  async function record(current: Lease) {
    try {
      const recorded = await recordDueOccurrences(deps, current, options.instanceId);
      if (recorded) logger.debug({ recorded }, "scheduler: occurrences recorded");
    } catch (err) {
      if (err instanceof StaleLeaderError) {
        logger.warn({ fencingToken: String(current.fencingToken) }, "scheduler: refused with a stale fencing token");
        stepDown("a newer leader holds a higher fencing token");
      } else logger.error({ err }, "scheduler: tick failed");
    }
  }

  function sweep() {
    if (!lease || sweeping || stopped) return sweeping;
    sweeping = sweepInterrupted(deps, options.importStaleMs)
      .then((failed) => {
        if (failed) logger.warn({ failed }, "scheduler: interrupted uploads failed and their events deleted");
      })
      .catch((err: unknown) => logger.error({ err }, "scheduler: upload sweep failed"))
      .finally(() => {
        sweeping = null;
      });
    return sweeping;
  }

  const election = setInterval(() => void campaign(), Math.max(50, Math.floor(options.lockTtlMs / 3)));
  election.unref();
  const sweeper = setInterval(() => void sweep(), Math.max(500, Math.floor(options.importStaleMs / 2)));
  sweeper.unref();
  void campaign();
  const tasks: ScheduledTask[] = [
    cron.schedule("* * * * * *", () => tick(), { name: "scheduler-tick", noOverlap: true }),
    cron.schedule(
      options.retentionCron,
      async () => {
        if (!lease) return;
        const results = await cleanupAll(deps.prisma);
        logger.info({ events: results.reduce((n, r) => n + r.events, 0) }, "retention cleanup done");
      },
      { name: "retention", timezone: "UTC", noOverlap: true },
    ),
  ];

  return {
    status(): LeaderStatus {
      return {
        instanceId: options.instanceId,
        isLeader: lease !== null,
        fencingToken: lease ? String(lease.fencingToken) : null,
        leaderSince: since,
      };
    },
    async stop() {
      stopped = true;
      clearInterval(election);
      clearInterval(sweeper);
      for (const task of tasks) await task.destroy();
      await inFlight;
      await sweeping;
      const held = lease;
      lease = null;
      if (held) await locks.release(held).catch(() => undefined);
    },
  };
}

export type Scheduler = ReturnType<typeof startScheduler>;
