// /health/liveness, /health/readiness and /health: plain JSON for load balancers and
// orchestrators, answered before GraphQL is involved.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Health } from "../infra/health.ts";

/** `details`: what /health adds for operators (the scheduler's leadership), not for probes. */
export function createHealthRoutes(health: Health, details: () => Record<string, unknown> = () => ({})) {
  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url?.split("?")[0];
    if (path !== "/health" && path !== "/health/liveness" && path !== "/health/readiness") {
      return send(res, 404, { error: "Not found: /health, /health/liveness or /health/readiness." });
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, { error: "Use GET." });
    if (path === "/health/liveness") return send(res, 200, { status: "ok" });
    const readiness = await health.readiness();
    const body = { status: readiness.ok ? "ready" : "unavailable", checks: readiness.checks };
    send(
      res,
      readiness.ok ? 200 : 503,
      path === "/health" ? { status: body.status, liveness: { status: "ok" }, readiness: body, ...details() } : body,
    );
  };
}

function send(res: ServerResponse, status: number, body: unknown) {
  const json = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(json);
}
