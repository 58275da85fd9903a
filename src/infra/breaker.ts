// The database circuit breaker (cockatiel) and the pool guard. Every database call of the
// process passes here: Prisma's (through the driver adapter, see guardAdapter), transactions,
// and the raw SQL of migrations and health checks. After `failures` outage failures in a row
// (isUnavailable: unreachable, cut, out of connections; never a query error such as a unique
// violation), or as soon as a caller would queue past the pool's bound, the breaker opens:
// calls are refused at once with SERVICE_UNAVAILABLE (503, Retry-After), without queueing or a
// TCP attempt. After `resetMs` the next call is a probe (half-open): its success, or any answer
// from the database, closes the breaker; an outage opens it again. Calls that arrive while
// the probe is out are refused, not queued behind it.
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from "cockatiel";
import type { Logger } from "./logger.ts";
import { isUnavailable, ServiceUnavailableError } from "./unavailable.ts";

export type BreakerState = "closed" | "open" | "half-open";

/** Refused by the open breaker: the database was not tried. */
export class CircuitOpenError extends ServiceUnavailableError {
  override name = "CircuitOpenError";
  constructor(message?: string, cause?: unknown) {
    super(message);
    if (cause !== undefined) this.cause = cause;
  }
  // Prisma rebuilds an error thrown inside a driver adapter keeping only its code and `meta`:
  // the mark goes in `meta` so that a refusal stays recognisable (isCircuitOpen) after it.
  readonly meta = { circuit: "open" };
}

/** Refused because the pool's wait queue is full: opens the breaker at once. */
export class PoolSaturatedError extends CircuitOpenError {
  override name = "PoolSaturatedError";
  constructor() {
    super("The database is saturated; retry the request shortly.");
  }
}

/** Whether an error (or what Prisma made of it) is a refusal of the open breaker. */
export function isCircuitOpen(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
    if (e instanceof CircuitOpenError) return true;
    if ((e as { meta?: { circuit?: unknown } }).meta?.circuit === "open") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface DatabaseBreaker {
  /** Runs one database call (one that takes a connection of the pool) through the breaker. */
  run<T>(call: () => Promise<T>): Promise<T>;
  state(): BreakerState;
}

const STATES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half-open",
  [CircuitState.Isolated]: "open",
};

type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export function createBreaker(options: {
  failures: number;
  resetMs: number;
  logger: Logger;
  /** True when a call needing a connection would wait in the pool past its bound. */
  saturated?: () => boolean;
}): DatabaseBreaker {
  const { logger, saturated } = options;
  let policy: CircuitBreakerPolicy | undefined;
  // A full wait queue opens the breaker on its own; outages count up to `failures` in a row.
  class GuardedBreaker extends ConsecutiveBreaker {
    override failure() {
      const last = policy?.lastFailure;
      return super.failure() || (last !== undefined && "error" in last && last.error instanceof PoolSaturatedError);
    }
  }
  policy = circuitBreaker(handleWhen(isUnavailable), {
    halfOpenAfter: options.resetMs,
    breaker: new GuardedBreaker(options.failures),
  });
  // One line per change of state: what jobs and requests then fail with says nothing new.
  policy.onStateChange((state) => {
    const error = (policy?.lastFailure as { error?: Error } | undefined)?.error;
    if (state === CircuitState.Open)
      logger.warn(
        {
          breaker: "open",
          reason: error instanceof PoolSaturatedError ? "pool wait queue full" : "database unreachable",
          resetMs: options.resetMs,
          err: error?.message,
        },
        "database breaker open: database calls refused",
      );
    else if (state === CircuitState.HalfOpen)
      logger.warn({ breaker: "half-open" }, "database breaker half-open: probing");
    else logger.warn({ breaker: STATES[state] }, "database breaker closed: database calls resumed");
  });
  const breaker = policy;

  return {
    async run<T>(call: () => Promise<T>): Promise<T> {
      // Half-open: the one probe is out; the others are refused rather than held behind it.
      if (breaker.state === CircuitState.HalfOpen) throw new CircuitOpenError();
      let outcome: Outcome<T>;
      try {
        outcome = await breaker.execute(async (): Promise<Outcome<T>> => {
          if (saturated?.()) throw new PoolSaturatedError();
          try {
            return { ok: true, value: await call() };
          } catch (error) {
            // The database answered (a constraint, a bad value): not a failure of the database.
            if (!isUnavailable(error)) return { ok: false, error };
            throw error;
          }
        });
      } catch (err) {
        if (err instanceof BrokenCircuitError) throw new CircuitOpenError();
        // An outage met once the breaker is no longer closed (the failure that opened it, a
        // failed probe, calls that were in flight): the breaker has said so; it is a refusal.
        if (breaker.state !== CircuitState.Closed && isUnavailable(err) && !isCircuitOpen(err))
          throw new CircuitOpenError(undefined, err);
        throw err;
      }
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    },
    state: () => STATES[breaker.state],
  };
}

type Method = (...args: never[]) => Promise<unknown>;

/** `target` with some methods replaced; every other property is the target's own (bound). */
function withMethods<T extends object>(target: T, methods: Record<string, Method>): T {
  return new Proxy(target, {
    get(t, prop) {
      if (typeof prop === "string" && Object.hasOwn(methods, prop)) return methods[prop];
      const value = Reflect.get(t, prop, t);
      return typeof value === "function" ? value.bind(t) : value;
    },
  });
}

interface Queryable {
  queryRaw(query: unknown): Promise<unknown>;
  executeRaw(query: unknown): Promise<number>;
}
interface Adapter extends Queryable {
  executeScript(script: string): Promise<void>;
  startTransaction(isolationLevel?: unknown): Promise<Queryable>;
}

/**
 * The driver adapter factory given to `new PrismaClient({ adapter })`, with every call of its
 * adapters through the breaker. A transaction is admitted when it starts (it takes a pool
 * connection); its own statements then run on the connection it holds, unrefused: refusing its
 * ROLLBACK would hand the connection back to the pool mid-transaction.
 */
export function guardAdapter<F extends { connect(): Promise<unknown> }>(factory: F, breaker: DatabaseBreaker): F {
  return withMethods(factory, {
    connect: async () => {
      const adapter = (await factory.connect()) as Adapter;
      return withMethods(adapter, {
        queryRaw: (query: unknown) => breaker.run(() => adapter.queryRaw(query)),
        executeRaw: (query: unknown) => breaker.run(() => adapter.executeRaw(query)),
        executeScript: (script: string) => breaker.run(() => adapter.executeScript(script)),
        startTransaction: (isolationLevel?: unknown) => breaker.run(() => adapter.startTransaction(isolationLevel)),
      });
    },
  });
}
