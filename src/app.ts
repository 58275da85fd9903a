// buildApp(config) -> { start, stop, url }: the whole server, used by main.ts and by tests.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import type { Config } from "./config.ts";
import type { AppDeps } from "./context.ts";
import { type AuditWriter, createAuditWriter } from "./features/audit/auditWriter.ts";
import { createPrincipalResolver, type PrincipalResolver } from "./features/auth/principal.ts";
import { syncConnectors } from "./features/connectors/integration.service.ts";
import { createBudgets } from "./features/limits/budgets.ts";
import { withinDeadline } from "./infra/deadline.ts";
import { createHealth } from "./infra/health.ts";
import { createLive } from "./infra/live.ts";
import { createLogger, type Logger } from "./infra/logger.ts";
import { createMailer, type Mailer } from "./infra/mailer.ts";
import { createMetrics } from "./infra/metrics.ts";
import { createOutbox, type Outbox } from "./infra/outbox.ts";
import { openRuntime, type Runtime } from "./infra/runtime.ts";
import { createFileStorage } from "./infra/storage.ts";
import { analysisBacklog } from "./jobs/analysis.job.ts";
import { type Jobs, startJobs } from "./jobs/jobs.ts";
import {
  announcedTooLarge,
  BodyTooLargeError,
  hasBody,
  readBody,
  sendLengthRequired,
  sendTooLarge,
} from "./server/body.ts";
import { mediaType } from "./server/csrf.ts";
import { createDownloadRoutes } from "./server/downloads.ts";
import { createFastPath, takesFastPath } from "./server/fastPath.ts";
import { createHealthRoutes } from "./server/healthRoutes.ts";
import { createMetricsRoute } from "./server/metricsRoute.ts";
import { createPersistedDocuments } from "./server/persisted.ts";
import { createResponseCache, type ResponseCache } from "./server/responseCache.ts";
import { createSecurityHeaders } from "./server/securityHeaders.ts";
import { attachWebSocketServer } from "./server/ws.ts";
import { createYogaServer } from "./server/yoga.ts";

const REQUEST_ID = /^[\w.:-]{1,128}$/;

export interface App {
  /** Opens the database (migrating it in the embedded mode), Redis, and listens. */
  start(): Promise<{ url: string }>;
  /** Graceful: stop accepting, finish in-flight requests within the deadline, close everything. */
  stop(): Promise<void>;
  readonly url: string;
  readonly runtime: Runtime;
  readonly logger: Logger;
  readonly server: Server;
}

/**
 * `role: "worker"` (`npm run worker`): the same process without HTTP, running only the
 * background jobs (analysis, executions, the scheduler), for deployments that separate them.
 */
export function buildApp(config: Config, options: { logger?: Logger; role?: "api" | "worker" } = {}): App {
  const role = options.role ?? "api";
  const logger = options.logger ?? createLogger(config);
  let runtime: Runtime | undefined;
  let url = "";
  let draining = false;
  let stopping: Promise<void> | undefined;

  // Longer than the 60 s idle timeout of common load balancers, so they close first and never
  // send a request down a socket we are closing.
  const server = createServer({
    keepAliveTimeout: 65_000,
    // Slowloris: a client trickling its headers or body is answered 408 and disconnected.
    // Node looks for such connections every connectionsCheckingInterval (30 s by default).
    headersTimeout: config.timeouts.headersMs,
    requestTimeout: config.timeouts.requestMs,
    connectionsCheckingInterval: Math.min(30_000, Math.max(50, Math.floor(config.timeouts.headersMs / 4))),
  });
  const securityHeaders = createSecurityHeaders(config);
  let ws: ReturnType<typeof attachWebSocketServer> | undefined;
  let principals: PrincipalResolver | undefined;
  let mailer: Mailer | undefined;
  let jobs: Jobs | undefined;
  let outbox: Outbox | undefined;
  let audit: AuditWriter | undefined;
  let responseCache: ResponseCache | undefined;
  // Names this process in leases and claimed runs: host, pid and a random part.
  const instanceId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const metrics = createMetrics({
    maxOperationNames: config.metrics.maxOperationNames,
    onOperationNamesFull: () =>
      logger.warn(
        { max: config.metrics.maxOperationNames },
        'metrics: METRICS_MAX_OPERATION_NAMES distinct operation names seen; further ones are counted as "other"',
      ),
  });

  async function start() {
    runtime = await openRuntime(config, logger);
    const shared = { config, logger, prisma: runtime.db.prisma, pubsub: runtime.pubsub };
    principals = createPrincipalResolver(shared);
    mailer = createMailer(config, logger);
    const live = createLive({ pubsub: runtime.pubsub, log: runtime.liveLog, logger, maxQueue: config.live.maxQueue });
    responseCache = createResponseCache({
      store: runtime.responses,
      logger,
      maxEntryBytes: config.responseCache.maxEntryBytes,
      metrics,
    });
    const cache = responseCache;
    outbox = createOutbox({
      prisma: shared.prisma,
      live,
      logger,
      deployment: config.redisKeyPrefix,
      committed: (organizations) => cache.invalidate({ organizations }),
    });
    audit = createAuditWriter({ outbox, logger });
    const deps: AppDeps = {
      ...shared,
      live,
      outbox,
      audit,
      responseCache,
      slots: runtime.slots,
      locks: runtime.locks,
      mailer,
      metrics,
      budgets: createBudgets({ config: config.rateLimits, limiters: runtime.limiters, metrics, logger }),
      principals,
      persisted: createPersistedDocuments(config.documents, runtime.documents, logger, metrics),
      storage: createFileStorage(config.uploadDir),
      secrets: runtime.secrets,
      leaderStatus: () => jobs?.scheduler.status() ?? null,
    };
    // Not fatal: a database still starting must not stop the server; integrations retry it.
    await syncConnectors(deps.prisma).catch((err: unknown) => logger.warn({ err }, "connectors not synced at start"));
    const yoga = createYogaServer(deps);
    const health = createHealth({ db: runtime.db, redis: runtime.redis, isDraining: () => draining, logger });
    // Public: whether this instance leads, not who it is or its token (schedulerStatus has those).
    const healthRoutes = createHealthRoutes(health, () => {
      const status = deps.leaderStatus();
      return {
        scheduler: status ? { isLeader: status.isLeader, leaderSince: status.leaderSince } : { jobs: "disabled" },
      };
    });
    const downloads = createDownloadRoutes(deps, runtime.once);
    const fastPath = createFastPath(yoga, deps);
    if (config.jobsEnabled || role === "worker") jobs = startJobs(deps, instanceId);
    const db = runtime.db;
    metrics.attach({
      database: () => db.stats(),
      websockets: () => ws?.wss.clients.size ?? 0,
      leader: deps.leaderStatus,
      liveOutbox: async () => {
        const [pending, oldest] = await Promise.all([deps.outbox.pending(), deps.outbox.oldest()]);
        return { pending, oldest };
      },
      analysisBacklog: () => analysisBacklog(deps.prisma),
    });
    const metricsRoute = createMetricsRoute(metrics, config.metrics, logger);
    if (role === "worker") {
      logger.info({ instanceId, mode: config.mode }, "Floyo worker running");
      return { url: "" };
    }

    const accessLog = logger.isLevelEnabled("debug");
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      // While draining, a request that arrives on a kept-alive connection is its last one.
      if (draining) res.shouldKeepAlive = false;
      const incoming = req.headers["x-request-id"];
      const requestId = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
      res.setHeader("x-request-id", requestId);
      res.setHeaders(securityHeaders(req));
      // One line per request at debug level; checked once, so it costs nothing when off.
      if (accessLog) {
        const started = performance.now();
        res.once("finish", () =>
          logger.debug(
            {
              requestId,
              method: req.method,
              url: req.url,
              status: res.statusCode,
              ms: Math.round(performance.now() - started),
            },
            "request",
          ),
        );
      }
      // One byte limit for every body, announced or chunked, before anything parses it. A
      // multipart upload carries one file of up to UPLOAD_MAX_BYTES besides its operations;
      // it streams to Yoga's parser, so it must announce its length (every browser and upload
      // client does): a chunked one could only be cut off mid-parse.
      const multipart = mediaType(req.headers["content-type"]) === "multipart/form-data";
      const limit = multipart ? config.maxBodyBytes + config.uploads.maxBytes : config.maxBodyBytes;
      if (multipart && req.headers["content-length"] === undefined) return sendLengthRequired(res, requestId);
      if (announcedTooLarge(req, limit)) return sendTooLarge(res, limit, requestId);
      const url = req.url ?? "/";
      // Answered before GraphQL like /health; it answers its own failures.
      if (url === "/metrics" || url.startsWith("/metrics?")) return void metricsRoute(req, res);
      const done =
        url === "/health" || url.startsWith("/health/") || url.startsWith("/health?")
          ? healthRoutes(req, res)
          : url.startsWith("/downloads/")
            ? downloads(req, res, requestId)
            : takesFastPath(req)
              ? fastPath(req, res, requestId)
              : multipart || !hasBody(req.method)
                ? yoga(req, res, { req, res, requestId })
                : readBody(req, limit).then(
                    (body) => {
                      // Yoga reads a body already read from here (what framework adapters pass it).
                      Object.assign(req, { body });
                      return yoga(req, res, { req, res, requestId });
                    },
                    (err: unknown) => {
                      if (err instanceof BodyTooLargeError) return sendTooLarge(res, limit, requestId);
                      throw err;
                    },
                  );
      Promise.resolve(done).catch((err: unknown) => {
        logger.error({ err, requestId }, "request failed outside GraphQL");
        if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            errors: [{ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR", requestId } }],
          }),
        );
      });
    });
    ws = attachWebSocketServer(server, yoga, deps);

    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(config.port, config.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const host =
      address.family === "IPv6"
        ? address.address === "::"
          ? "localhost"
          : `[${address.address}]`
        : address.address === "0.0.0.0"
          ? "localhost"
          : address.address;
    url = `http://${host}:${address.port}`;
    logger.info({ url: `${url}/graphql`, mode: config.mode }, "Floyo API listening");
    return { url };
  }

  /**
   * Background jobs wind down within the shutdown deadline too: a run stuck in a call that
   * ignores its abort must not keep the process alive. What is left is found by others
   * (stale runs are taken up again; a lapsed lease is taken over).
   */
  async function stopJobs() {
    if (!jobs) return;
    if (!(await withinDeadline(jobs.stop(), config.shutdownTimeoutMs))) {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, "background jobs did not stop in time; leaving them");
    }
  }

  /**
   * Held audit entries are written, and what this instance committed relayed, before it
   * closes, if the database and the log take them in time (else another instance relays).
   */
  async function stopWriters() {
    if (audit && !(await withinDeadline(audit.stop(), config.shutdownTimeoutMs)))
      logger.error({ held: audit.held() }, "held audit entries not written before exit");
    if (outbox && !(await withinDeadline(outbox.stop(), config.shutdownTimeoutMs)))
      logger.warn("live outbox did not drain in time; other instances relay what is left");
    responseCache?.stop();
  }

  async function shutdown() {
    draining = true;
    logger.info("shutting down: draining connections");
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // server.close() only ends the connections idle at that moment; a kept-alive connection
    // whose request finishes later would hold it open until the deadline. Sweep them.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const drained = Promise.all([ws?.close(), closed]);
    // The deadline covers WebSockets too.
    if (!(await withinDeadline(drained, config.shutdownTimeoutMs))) {
      logger.warn({ timeoutMs: config.shutdownTimeoutMs }, "shutdown deadline reached: closing remaining connections");
      for (const socket of ws?.wss.clients ?? []) socket.terminate();
      server.closeAllConnections();
      await drained;
    }
    clearInterval(sweep);
    await stopJobs();
    await stopWriters();
    await principals?.close();
    mailer?.close();
    await runtime?.close();
    logger.info("shut down");
  }

  return {
    start,
    stop: () => {
      stopping ??= server.listening
        ? shutdown()
        : (async () => {
            await stopJobs();
            await stopWriters();
            await principals?.close();
            mailer?.close();
            await runtime?.close();
          })();
      return stopping;
    },
    get url() {
      return url;
    },
    get runtime() {
      if (!runtime) throw new Error("app not started");
      return runtime;
    },
    logger,
    server,
  };
}
