// Prometheus metrics of one instance, in a registry of its own (tests run several apps in one
// process; prom-client's global registry would mix them). Counters are pushed by the code that
// counts; gauges read their sources when scraped. Every label value is either one of a fixed
// set or bounded here (operation names and error codes are chosen by clients or by code paths
// no one audits for cardinality): an attacker cannot grow the number of series without bound.
import client from "prom-client";
import type { DatabaseStats } from "./db.ts";

/** Background jobs counted by floyo_job_runs_total and floyo_job_failures_total. */
export const JOBS = [
  "analysis",
  "suggestions",
  "executions",
  "execution_sweep",
  "scheduler_tick",
  "retention",
  "upload_sweep",
] as const;
export type JobName = (typeof JOBS)[number];

/** Work waiting in a table: how much, and since when. */
export interface Backlog {
  pending: number;
  oldest: Date | null;
}

/** What the scrape-time gauges read; bound once the runtime is open (see attach). */
export interface MetricSources {
  database(): DatabaseStats;
  websockets(): number;
  leader(): { isLeader: boolean; fencingToken: string | null } | null;
  liveOutbox(): Promise<Backlog>;
  analysisBacklog(): Promise<Backlog>;
}

export interface MetricsOptions {
  /** Distinct operation names given series of their own; later ones are counted as "other". */
  maxOperationNames?: number;
  /** A gauge read from the database gives up after this long (NaN), so a scrape never hangs. */
  readTimeoutMs?: number;
  onOperationNamesFull?: () => void;
}

// GraphQL names (https://spec.graphql.org/draft/#Name), at most 64 characters.
const OPERATION_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_ERROR_CODES = 100;
const BREAKER_STATES = ["closed", "open", "half-open"] as const;

export function createMetrics(options: MetricsOptions = {}) {
  const maxNames = options.maxOperationNames ?? 200;
  const readTimeoutMs = options.readTimeoutMs ?? 3_000;
  const registry = new client.Registry();
  // process_* and nodejs_* (CPU, memory, event loop lag, GC, handles), unprefixed as dashboards expect.
  client.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  let sources: MetricSources | undefined;

  const names = new Set<string>();
  let namesFull = false;
  const codes = new Set<string>();

  const jobRuns = new client.Counter({
    name: "floyo_job_runs_total",
    help: "Runs of background jobs (a chunk analysed, a workflow run handled, a scheduler tick...), failed ones included.",
    labelNames: ["job"] as const,
    registers,
  });
  const jobFailures = new client.Counter({
    name: "floyo_job_failures_total",
    help: "Runs of background jobs that failed (an error the job logged, not a workflow whose step failed).",
    labelNames: ["job"] as const,
    registers,
  });
  // Series from the start: rate() and alerts need a zero before the first run.
  for (const job of JOBS) {
    jobRuns.inc({ job }, 0);
    jobFailures.inc({ job }, 0);
  }

  /** A gauge read when scraped; NaN when its source cannot be read (the scrape still answers). */
  const scraped = (name: string, help: string, read: () => number | null | Promise<number | null>) =>
    new client.Gauge({
      name,
      help,
      registers,
      async collect() {
        if (!sources) return this.set(Number.NaN);
        try {
          this.set((await read()) ?? Number.NaN);
        } catch {
          this.set(Number.NaN);
        }
      },
    });

  const outbox = shared(() => sources?.liveOutbox(), readTimeoutMs);
  const backlog = shared(() => sources?.analysisBacklog(), readTimeoutMs);
  const ageOf = (b: Backlog | undefined) =>
    b ? (b.oldest ? Math.max(0, Date.now() - b.oldest.getTime()) / 1000 : 0) : null;

  scraped("floyo_websockets_open", "WebSocket connections open on this instance.", () => sources?.websockets() ?? null);
  scraped("floyo_scheduler_leader", "1 while this instance leads the scheduler, else 0.", () =>
    sources?.leader()?.isLeader ? 1 : 0,
  );
  scraped(
    "floyo_scheduler_fencing_token",
    "The fencing token of this instance's scheduler lease while it leads, else 0.",
    () => Number(sources?.leader()?.fencingToken ?? 0),
  );
  scraped(
    "floyo_live_outbox_pending",
    "Live-feed notices committed but not yet relayed to the feeds (the whole deployment's).",
    async () => (await outbox())?.pending ?? null,
  );
  scraped(
    "floyo_live_outbox_oldest_seconds",
    "Age of the oldest notice waiting to be relayed (0 when none): how late live feeds are.",
    async () => ageOf(await outbox()),
  );
  scraped(
    "floyo_analysis_backlog_events",
    "Events waiting for pattern analysis (the whole deployment's).",
    async () => (await backlog())?.pending ?? null,
  );
  scraped(
    "floyo_analysis_backlog_oldest_seconds",
    "Age of the oldest event waiting for analysis (0 when none).",
    async () => ageOf(await backlog()),
  );
  new client.Gauge({
    name: "floyo_db_breaker_state",
    help: "The database circuit breaker: 1 for its current state, 0 for the others.",
    labelNames: ["state"] as const,
    registers,
    collect() {
      const state = sources?.database().breaker;
      for (const s of BREAKER_STATES) this.set({ state: s }, s === state ? 1 : 0);
    },
  });

  return {
    registry,
    rateLimitRejections: new client.Counter({
      name: "floyo_rate_limit_rejections_total",
      help: "Requests and operations refused by a rate-limit bucket.",
      labelNames: ["bucket"] as const,
      registers,
    }),
    costSpent: new client.Counter({
      name: "floyo_cost_spent_total",
      help: "Calculated cost of the operations charged to callers' budgets.",
      labelNames: ["caller"] as const,
      registers,
    }),
    operations: new client.Histogram({
      name: "floyo_graphql_operation_duration_seconds",
      help: "GraphQL operations from parse to result (a subscription: until it is set up), by name, type and outcome.",
      labelNames: ["operation_name", "operation_type", "outcome"] as const,
      registers,
    }),
    errors: new client.Counter({
      name: "floyo_graphql_errors_total",
      help: "Errors in GraphQL results (and refusals before execution), by extensions.code.",
      labelNames: ["code"] as const,
      registers,
    }),
    responseCache: new client.Counter({
      name: "floyo_response_cache_total",
      help: "Queries the response cache answered (hit), ran and kept (miss), or let through (skip: not cacheable, or the cache unreachable).",
      labelNames: ["result"] as const,
      registers,
    }),
    subscriptionsOpen: new client.Gauge({
      name: "floyo_graphql_subscriptions_open",
      help: "Subscriptions running on this instance (graphql-ws and SSE).",
      registers,
    }),

    /**
     * The label for an operation's name: its own when it is a GraphQL name of at most 64
     * characters among the first `maxOperationNames` distinct ones admitted (only operations
     * that passed validation are admitted), else "other"; "anonymous" without a name.
     */
    operationName(name: string | null | undefined, admit: boolean): string {
      if (!name) return "anonymous";
      if (names.has(name)) return name;
      if (!admit || !OPERATION_NAME.test(name)) return "other";
      if (names.size >= maxNames) {
        // Said once: a sign that clients name operations freely (or that someone is trying).
        if (!namesFull) options.onOperationNamesFull?.();
        namesFull = true;
        return "other";
      }
      names.add(name);
      return name;
    },

    /** The label for an error code: the code, or OTHER past the first distinct ones or when malformed. */
    errorCode(code: unknown): string {
      if (typeof code !== "string" || !ERROR_CODE.test(code)) return "OTHER";
      if (codes.has(code)) return code;
      if (codes.size >= MAX_ERROR_CODES) return "OTHER";
      codes.add(code);
      return code;
    },

    jobRun(job: JobName, ok: boolean) {
      jobRuns.inc({ job });
      if (!ok) jobFailures.inc({ job });
    },

    /** Binds the scrape-time gauges to the runtime (the pool gauges only where there is a pool). */
    attach(bound: MetricSources) {
      sources = bound;
      if (!bound.database().pool) return;
      const pool = () => sources?.database().pool ?? null;
      scraped("floyo_db_pool_in_use", "Database connections checked out of the pool.", () => {
        const p = pool();
        return p && p.total - p.idle;
      });
      scraped("floyo_db_pool_idle", "Database connections open and idle in the pool.", () => pool()?.idle ?? null);
      scraped(
        "floyo_db_pool_waiting",
        "Queries waiting for a database connection (the pool is exhausted while this is above 0).",
        () => pool()?.waiting ?? null,
      );
      scraped("floyo_db_pool_max", "The pool's maximum number of connections.", () => pool()?.max ?? null);
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * One read shared by the gauges of a scrape (and by scrapes that overlap a slow one), given up
 * after `ms`: a database that hangs costs a scrape NaN, never a pile of queries or a timeout.
 */
function shared<T>(read: () => Promise<T> | undefined, ms: number): () => Promise<T | undefined> {
  let inFlight: Promise<T | undefined> | null = null;
  return () => {
    if (!inFlight) {
      const started = read();
      inFlight = (started ?? Promise.resolve(undefined)).catch(() => undefined);
      void inFlight.finally(() => {
        inFlight = null;
      });
    }
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, ms, undefined);
      timer.unref();
    });
    return Promise.race([inFlight, late]).finally(() => clearTimeout(timer));
  };
}
