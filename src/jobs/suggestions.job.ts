// Regenerates a user's suggestions shortly after their patterns change: a burst of analysed
// chunks (a large batch, an import) costs one regeneration, not one per chunk.
import type { AppDeps } from "../context.ts";
import { generateSuggestions } from "../features/suggestions/suggestion.service.ts";

export interface SuggestionScheduler {
  schedule(organizationId: string, userId: string): void;
  stop(): Promise<void>;
}

export function createSuggestionScheduler(
  deps: Pick<AppDeps, "prisma" | "pubsub" | "outbox" | "logger" | "metrics">,
  debounceMs: number,
): SuggestionScheduler {
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<unknown>>();
  let stopped = false;

  return {
    schedule(organizationId, userId) {
      if (stopped) return;
      const key = `${organizationId}:${userId}`;
      clearTimeout(timers.get(key));
      const timer = setTimeout(() => {
        timers.delete(key);
        const run = generateSuggestions(deps, organizationId, userId)
          .then(
            () => deps.metrics.jobRun("suggestions", true),
            (err) => {
              deps.metrics.jobRun("suggestions", false);
              deps.logger.error({ err, organizationId }, "suggestion regeneration failed");
            },
          )
          .finally(() => running.delete(run));
        running.add(run);
      }, debounceMs);
      timer.unref();
      timers.set(key, timer);
    },
    async stop() {
      stopped = true;
      for (const timer of timers.values()) clearTimeout(timer);
      timers.clear();
      await Promise.all(running);
    },
  };
}
