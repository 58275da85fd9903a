// The background work of an instance: analysis, suggestion regeneration, executions and the
// scheduler. Started by the API server (unless JOBS_ENABLED=false) and by `npm run worker`.
import type { AppDeps } from "../context.ts";
import { startAnalysisWorker } from "./analysis.job.ts";
import { startExecutionWorker } from "./executions.job.ts";
import { startScheduler } from "./scheduler.ts";
import { createSuggestionScheduler } from "./suggestions.job.ts";

export function startJobs(deps: AppDeps, instanceId: string) {
  const { config } = deps;
  const suggestions = createSuggestionScheduler(deps, config.analysis.suggestionDebounceMs);
  const analysis = startAnalysisWorker(deps, { ...config.analysis, onAnalysed: suggestions.schedule });
  const executions = startExecutionWorker(deps, { ...config.executions, workerId: instanceId });
  const scheduler = startScheduler(deps, {
    ...config.scheduler,
    importStaleMs: config.uploads.staleMs,
    instanceId,
  });
  return {
    scheduler,
    async stop() {
      // The scheduler first, so no new runs are queued while the rest winds down.
      await scheduler.stop();
      await analysis.stop();
      await executions.stop();
      await suggestions.stop();
    },
  };
}

export type Jobs = ReturnType<typeof startJobs>;
