// The analysis pipeline, in every instance. Durable because its queue is the events table
// itself (analyzedAt null): after a crash or restart the next round finds the same work.
// Fair because each round takes one chunk per user, oldest waiting first, so one
// organization's flood is worked through alongside everyone else, never ahead of them.
import { setImmediate } from "node:timers/promises";
import type { AppDeps } from "../context.ts";
import { ANALYSIS_TOPIC } from "../features/events/event.service.ts";
import { ANALYSABLE, analyseChunk } from "../features/patterns/analysis.service.ts";
import type { Backlog } from "../infra/metrics.ts";

const GROUPS_PER_ROUND = 100;
const MAX_BACKOFF_MS = 5 * 60_000;

const keyOf = (g: { organizationId: string; userId: string | null }) => `${g.organizationId}:${g.userId}`;

export interface AnalysisWorkerOptions {
  /** Chunks analysed at once by this instance. */
  concurrency: number;
  /** How often to look for work nobody announced (a crash, a missed message). */
  pollMs: number;
  /** Called after a user's patterns changed. */
  onAnalysed: (organizationId: string, userId: string) => void;
}

export interface AnalysisWorker {
  stop(): Promise<void>;
}

export function startAnalysisWorker(
  deps: Pick<AppDeps, "prisma" | "pubsub" | "outbox" | "logger" | "metrics">,
  options: AnalysisWorkerOptions,
) {
  const { prisma, logger } = deps;
  let stopped = false;
  let running: Promise<void> | null = null;
  let again = false;
  const failing = new Map<string, { until: number; backoffMs: number }>();

  async function round(): Promise<boolean> {
    const groups = await prisma.event.groupBy({
      by: ["organizationId", "userId"],
      where: ANALYSABLE,
      _min: { receivedAt: true },
      orderBy: { _min: { receivedAt: "asc" } },
      take: GROUPS_PER_ROUND,
    });
    let more = groups.length === GROUPS_PER_ROUND;
    const now = Date.now();
    const queue = groups.filter((g) => (failing.get(keyOf(g))?.until ?? 0) <= now);
    const work = async () => {
      for (let group = queue.shift(); group && !stopped; group = queue.shift()) {
        const key = keyOf(group);
        let result: Awaited<ReturnType<typeof analyseChunk>>;
        try {
          result = await analyseChunk(deps, group.organizationId, group.userId);
          failing.delete(key);
        } catch (err) {
          deps.metrics.jobRun("analysis", false);
          // One user's failing chunk must not hold up everyone else's: it waits, longer each time.
          const backoffMs = Math.min((failing.get(key)?.backoffMs ?? 500) * 2, MAX_BACKOFF_MS);
          failing.set(key, { until: Date.now() + backoffMs, backoffMs });
          logger.error({ err, organizationId: group.organizationId, backoffMs }, "analysis of a chunk failed");
          continue;
        }
        // Locked elsewhere: that instance will finish it and announce nothing new; look again later.
        if (result.more && result.locked) more = true;
        // A run is a chunk analysed; one another instance holds (or that was empty) is not.
        if (result.analysed > 0) deps.metrics.jobRun("analysis", true);
        if (result.analysed > 0 && group.userId) options.onAnalysed(group.organizationId, group.userId);
        // Lets requests waiting for the database go first: with PGlite's single connection,
        // back-to-back chunks would otherwise hold it until the whole backlog is done.
        await setImmediate();
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, work));
    return more;
  }

  function kick(): Promise<void> {
    if (stopped) return Promise.resolve();
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          if (await round()) again = true;
        } while (again && !stopped);
      } catch (err) {
        deps.metrics.jobRun("analysis", false);
        logger.error({ err }, "analysis round failed; retrying at the next poll");
      } finally {
        running = null;
      }
    })();
    return running;
  }

  const announcements = deps.pubsub.subscribe(ANALYSIS_TOPIC, "all");
  (async () => {
    for await (const _ of announcements) kick();
  })().catch((err) => logger.error({ err }, "analysis announcements ended"));
  const timer = setInterval(kick, options.pollMs);
  timer.unref();
  kick();

  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await announcements.return?.();
      await running;
    },
  } satisfies AnalysisWorker;
}

/** The events waiting for analysis, all organizations', and the oldest one's arrival: for /metrics. */
export async function analysisBacklog(prisma: AppDeps["prisma"]): Promise<Backlog> {
  const found = await prisma.event.aggregate({ where: ANALYSABLE, _count: { _all: true }, _min: { receivedAt: true } });
  return { pending: found._count._all, oldest: found._min.receivedAt };
}
