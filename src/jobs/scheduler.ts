// The scheduler: node-cron ticks in every instance, and only the leader acts. Leadership is
// a lease (Redis SET NX PX with a random token in the services mode; in-process when
// embedded), renewed every third of its TTL and released on shutdown. Followers ask for it
// every tenth of the TTL, so a dead leader's lease is taken within TTL + TTL/10.
// A leader counts its lease from when it *sent* its last successful renewal (Redis set the
// expiry later than that, never earlier) and steps down a tenth of the TTL before it could
// lapse, even while a renewal is still on its way: a slow or cut Redis cannot leave it
// leading past its lease while a successor already leads. Every write the leader makes is
// fenced as well (see recordDueOccurrences), so a leader that stalled past its lease (a
// paused process) cannot record anything after its successor has. The leader also sweeps
// uploads whose process died mid-import (at the start of its leadership, then every half
// bound): that sweep needs no fence, each of its writes being conditional.
import cron, { type ScheduledTask } from "node-cron";
import type { AppDeps } from "../context.ts";
import { cleanupAll } from "../features/events/retention.service.ts";
import { sweepInterrupted } from "../features/uploads/liveness.ts";
import { recordDueOccurrences, SCHEDULER_LOCK, StaleLeaderError } from "../features/workflows/schedule.service.ts";
import type { Lease } from "../infra/lock.ts";

const LAPSING = "no renewal succeeded before the lease could lapse";

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
  deps: Pick<AppDeps, "prisma" | "pubsub" | "outbox" | "logger" | "locks" | "metrics" | "responseCache">,
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
  const ttl = options.lockTtlMs;
  const renewEvery = Math.max(50, Math.floor(ttl / 3));
  const followEvery = Math.max(50, Math.floor(ttl / 10));
  /** Stepping down this long before the lease could lapse: room for clock drift and a late timer. */
  const margin = Math.max(10, Math.floor(ttl / 10));
  let lease: Lease | null = null;
  /** performance.now() past which the lease may have lapsed (monotonic: a wall-clock jump moves nothing). */
  let validUntil = 0;
  let since: Date | null = null;
  let stopped = false;
  let inFlight: Promise<void> | null = null;
  let sweeping: Promise<void> | null = null;
  /** The last renewal failed: tried again sooner, while the lease still holds. */
  let behind = false;
  let next: NodeJS.Timeout | null = null;
  let expiry: NodeJS.Timeout | null = null;

  const stepDown = (why?: string) => {
    if (lease && why) {
      // The last instant this instance could act as leader (a late log line says nothing of that).
      const heldUntil = new Date(performance.timeOrigin + Math.min(validUntil, performance.now())).toISOString();
      logger.warn({ instanceId: options.instanceId, why, heldUntil }, "scheduler: no longer the leader");
    }
    lease = null;
    since = null;
    if (expiry) clearTimeout(expiry);
    expiry = null;
  };

  /** The lease while it is surely still ours; checked at each use, so a late timer changes nothing. */
  function current(): Lease | null {
    if (lease && performance.now() >= validUntil) stepDown(LAPSING);
    return lease;
  }

  function hold(held: Lease, until: number) {
    lease = held;
    validUntil = until;
    if (expiry) clearTimeout(expiry);
    // Also steps down (and logs it) when nothing else asks, e.g. while a renewal hangs.
    expiry = setTimeout(() => current(), Math.max(0, until - performance.now()) + 1);
    expiry.unref();
  }

  /** The lock service's answer, or undefined once `ms` have passed without one. */
  async function within<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
    });
    try {
      return await Promise.race([work, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A lease won, valid (by this process's clock) until the returned time; null when taken. */
  async function acquire(): Promise<{ won: Lease; until: number } | null> {
    const sentAt = performance.now();
    const attempt = locks.acquire(SCHEDULER_LOCK, ttl);
    const won = await within(attempt, ttl - margin);
    if (won === undefined) {
      // Given up on: should it still be granted, it is handed back rather than left to lapse.
      attempt
        .then(async (late) => {
          if (late) await locks.release(late);
        })
        .catch(() => undefined);
      return null;
    }
    return won && { won, until: sentAt + ttl - margin };
  }

  async function renew(held: Lease) {
    behind = true;
    const sentAt = performance.now();
    const renewal = locks.renew(held, ttl);
    // A renewal that succeeds after this instance stepped down keeps a lease no one uses: released.
    renewal
      .then(async (ok) => {
        if (ok && lease !== held) await locks.release(held);
      })
      .catch(() => undefined);
    let ok: boolean | undefined;
    try {
      ok = await within(renewal, validUntil - sentAt);
    } catch (err) {
      // Redis unreachable for a moment: still the leader until the lease could lapse; retried soon.
      logger.warn({ err }, "scheduler: the lease could not be renewed, retrying");
      return;
    }
    if (lease !== held) return;
    if (ok) {
      hold(held, sentAt + ttl - margin);
      behind = false;
    } else stepDown(ok === false ? "the lease was lost" : LAPSING);
  }

  async function elect() {
    let got = await acquire();
    // A lock service that lost its counter (Redis restarted empty) would hand out tokens
    // below the one the database holds, and every write would be refused: catch it up.
    const stored = got && (await deps.prisma.leaderFence.findUnique({ where: { name: SCHEDULER_LOCK } }));
    if (got && stored && got.won.fencingToken <= stored.fencingToken) {
      await locks.raiseFence(SCHEDULER_LOCK, stored.fencingToken);
      await locks.release(got.won);
      got = await acquire();
    }
    if (!got) return;
    if (stopped || performance.now() >= got.until) {
      await locks.release(got.won);
      return;
    }
    hold(got.won, got.until);
    since = new Date();
    logger.info({ instanceId: options.instanceId, fencingToken: String(got.won.fencingToken) }, "scheduler: leading");
    // Uploads of a previous leader's (or any instance's) process that died: not a bound later.
    void sweep();
  }

  async function campaign() {
    try {
      const held = current();
      if (held) await renew(held);
      else await elect();
    } catch (err) {
      // Redis or the database unreachable while electing: nothing is held, tried again soon.
      logger.error({ err }, "scheduler: election failed");
    }
  }

  /** One campaign at a time: the next is planned when this one is over, by what this instance now is. */
  async function loop() {
    next = null;
    if (stopped) return;
    await campaign();
    if (stopped) return;
    next = setTimeout(() => void loop(), lease && !behind ? renewEvery : followEvery);
    next.unref();
  }

  function tick() {
    const held = current();
    if (!held || inFlight || stopped) return;
    inFlight = record(held).finally(() => {
      inFlight = null;
    });
    return inFlight;
  }

  async function record(held: Lease) {
    try {
      const recorded = await recordDueOccurrences(deps, held, options.instanceId);
      if (recorded) logger.debug({ recorded }, "scheduler: occurrences recorded");
      deps.metrics.jobRun("scheduler_tick", true);
    } catch (err) {
      deps.metrics.jobRun("scheduler_tick", false);
      if (err instanceof StaleLeaderError) {
        logger.warn({ fencingToken: String(held.fencingToken) }, "scheduler: refused with a stale fencing token");
        if (lease === held) stepDown("a newer leader holds a higher fencing token");
      } else logger.error({ err }, "scheduler: tick failed");
    }
  }

  function sweep() {
    if (!current() || sweeping || stopped) return sweeping;
    sweeping = sweepInterrupted(deps, options.importStaleMs)
      .then(
        (failed) => {
          deps.metrics.jobRun("upload_sweep", true);
          if (failed) logger.warn({ failed }, "scheduler: interrupted uploads failed and their events deleted");
        },
        (err: unknown) => {
          deps.metrics.jobRun("upload_sweep", false);
          logger.error({ err }, "scheduler: upload sweep failed");
        },
      )
      .finally(() => {
        sweeping = null;
      });
    return sweeping;
  }

  const sweeper = setInterval(() => void sweep(), Math.max(500, Math.floor(options.importStaleMs / 2)));
  sweeper.unref();
  void loop();
  const tasks: ScheduledTask[] = [
    cron.schedule("* * * * * *", () => tick(), { name: "scheduler-tick", noOverlap: true }),
    cron.schedule(
      options.retentionCron,
      async () => {
        if (!current()) return;
        let results: Awaited<ReturnType<typeof cleanupAll>>;
        try {
          results = await cleanupAll(deps.prisma);
        } catch (err) {
          deps.metrics.jobRun("retention", false);
          throw err;
        }
        deps.metrics.jobRun("retention", true);
        deps.responseCache.invalidate({
          organizations: results
            .filter((r) => r.events + r.patterns + r.sequences + r.relationships > 0)
            .map((r) => r.organizationId),
        });
        logger.info({ events: results.reduce((n, r) => n + r.events, 0) }, "retention cleanup done");
      },
      { name: "retention", timezone: "UTC", noOverlap: true },
    ),
  ];

  return {
    status(): LeaderStatus {
      const held = current();
      return {
        instanceId: options.instanceId,
        isLeader: held !== null,
        fencingToken: held ? String(held.fencingToken) : null,
        leaderSince: since,
      };
    },
    async stop() {
      stopped = true;
      if (next) clearTimeout(next);
      clearInterval(sweeper);
      for (const task of tasks) await task.destroy();
      await inFlight;
      await sweeping;
      const held = lease;
      stepDown();
      if (held) await locks.release(held).catch(() => undefined);
    },
  };
}

export type Scheduler = ReturnType<typeof startScheduler>;
