// GET /metrics: the Prometheus text format, answered before GraphQL like /health. With
// METRICS_TOKEN set, only to `Authorization: Bearer <token>`; without it, in the open outside
// production, and in production only when METRICS_PUBLIC=true says so (else 404): an operator
// who forgot the token should not publish the instance's internals by default.
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config.ts";
import type { Logger } from "../infra/logger.ts";
import type { Metrics } from "../infra/metrics.ts";

const digest = (text: string) => createHash("sha256").update(text).digest();

export function createMetricsRoute(metrics: Metrics, config: Config["metrics"], logger: Logger) {
  // Compared as digests: equal lengths for timingSafeEqual, and no early exit on a prefix.
  const expected = config.token ? digest(config.token) : null;

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url?.split("?")[0] !== "/metrics") return send(res, 404, "Not found: /metrics.\n");
    if (!expected && !config.public) {
      return send(res, 404, "Metrics are off: set METRICS_TOKEN (or METRICS_PUBLIC=true) to serve them.\n");
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "Use GET.\n", { allow: "GET, HEAD" });
    if (expected) {
      const match = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? "");
      if (!match?.[1] || !timingSafeEqual(digest(match[1]), expected)) {
        return send(res, 401, "A bearer token is required.\n", { "www-authenticate": 'Bearer realm="metrics"' });
      }
    }
    let body: string;
    try {
      body = await metrics.registry.metrics();
    } catch (err) {
      // Gauges that cannot read their source say NaN; this is a bug, not an outage.
      logger.error({ err }, "metrics could not be collected");
      return send(res, 500, "Metrics could not be collected.\n");
    }
    res.writeHead(200, {
      "content-type": metrics.registry.contentType,
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
}

function send(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { ...headers, "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}
