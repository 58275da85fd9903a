// Whether a failure is a dependency being out of reach (PostgreSQL or Redis down, cut off, or
// out of connections), as opposed to a bug or bad input: the caller may retry the same request
// later, and is told so (SERVICE_UNAVAILABLE, HTTP 503, Retry-After).
import { AppError } from "../errors.ts";

/** Seconds a client is asked to wait before retrying. */
export const RETRY_AFTER_SECONDS = 2;

export class ServiceUnavailableError extends AppError {
  constructor(message = "The service is briefly unavailable; retry the request shortly.") {
    super("SERVICE_UNAVAILABLE", message, { retryable: true });
  }
}

// Prisma: can't reach the server, timed out, server closed the connection, pool timeout,
// transaction could not start or was closed under it.
// too many connections.
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028", "P2037"]);
// Node's sockets, and the driver adapters' own kinds.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, shutting down)
  "53300", // too_many_connections
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);
const MESSAGES = [
  // pg
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Query read timeout/i,
  /Client has encountered a connection error/i,
  /Connection refused|connect ECONNREFUSED/i,
  /server closed the connection unexpectedly/i,
  /Server has closed the connection/i,
  /Can't reach database server/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
  // ioredis
  /Stream isn't writeable/i,
  /Connection is closed/i,
  /Reached the max retries per request limit/i,
  /Command timed out/i,
];
const KINDS = new Set(["DatabaseNotReachable", "ConnectionClosed", "SocketTimeout", "TooManyConnections"]);

/** Walks the error, its causes and wrapped errors (a few levels) for a sign of an outage. */
export function isUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length && seen.size < 20) {
    const e = queue.shift() as
      | {
          code?: unknown;
          kind?: unknown;
          name?: unknown;
          message?: unknown;
          cause?: unknown;
          originalError?: unknown;
          errors?: unknown;
          originalCode?: unknown;
          meta?: { driverAdapterError?: unknown };
        }
      | null
      | undefined;
    if (!e || typeof e !== "object" || seen.has(e)) continue;
    seen.add(e);
    if (e instanceof ServiceUnavailableError) return true;
    // Our own errors and GraphQL's quote input: their words are not a sign of anything.
    if (e instanceof AppError) continue;
    const quotesInput = e.name === "GraphQLError";
    if (typeof e.code === "string" && (PRISMA_CODES.has(e.code) || SOCKET_CODES.has(e.code))) return true;
    // Our own refusal (the database breaker's) thrown inside a driver adapter: Prisma rebuilds it with its code.
    if (e.code === "SERVICE_UNAVAILABLE") return true;
    if (typeof e.originalCode === "string" && SOCKET_CODES.has(e.originalCode)) return true;
    if (typeof e.kind === "string" && KINDS.has(e.kind)) return true;
    if (e.name === "MaxRetriesPerRequestError" || e.name === "PrismaClientInitializationError") return true;
    if (!quotesInput && typeof e.message === "string" && MESSAGES.some((m) => m.test(e.message as string))) return true;
    // Prisma keeps the driver adapter's own error (with its kind and SQLSTATE) in meta.
    queue.push(e.cause, e.originalError, e.meta?.driverAdapterError);
    if (Array.isArray(e.errors)) queue.push(...e.errors);
  }
  return false;
}
