// Every call a connector makes: only to allowed hosts, ports and addresses, with a timeout
// (DNS included), a bounded response, kept-alive connections, and errors that name what went
// wrong without echoing credentials.
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import { AppError } from "../../errors.ts";
import { deadlineSignal } from "../../infra/deadline.ts";
import { type Resolved, resolveTarget } from "./allowList.ts";

export interface ConnectorNetwork {
  allowedHosts: string[];
  timeoutMs: number;
}

export class ConnectorError extends AppError {}

/** A response larger than this is refused: a step's output is stored, and read by every member. */
const MAX_RESPONSE_BYTES = 5 * 1024 * 1024;
export const HTTP_PORTS = [443, 80] as const;

/**
 * The addresses a connection may use (at least one), checked against the allow-list (name,
 * port, resolved addresses); throws HOST_NOT_ALLOWED otherwise. Resolving counts against the
 * connector timeout: a resolver that never answers must not hold a step past it. With a
 * signal, its abort (the caller's deadline or a cancel) is thrown as is.
 */
export async function allowedAddresses(
  network: ConnectorNetwork,
  target: { hostname: string; port: number; usualPorts: readonly number[] },
  signal?: AbortSignal,
): Promise<Resolved[]> {
  const deadline = deadlineSignal(signal, network.timeoutMs);
  try {
    const resolved = await raced(resolveTarget(target, network.allowedHosts), deadline.signal);
    if ("refused" in resolved) {
      throw new ConnectorError("HOST_NOT_ALLOWED", `${resolved.refused}; ask an operator to allow it.`);
    }
    return resolved.addresses;
  } catch (err) {
    if (deadline.timedOut()) {
      throw new ConnectorError(
        "CONNECTOR_TIMEOUT",
        `${target.hostname} did not resolve within ${network.timeoutMs} ms.`,
      );
    }
    throw err;
  } finally {
    deadline.clear();
  }
}

/** work, or the signal's reason as soon as it aborts (DNS lookups cannot be aborted themselves). */
function raced<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason);
    signal.addEventListener("abort", abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * A lookup that always answers the checked addresses: no second DNS answer can move the
 * socket. All of them when asked for all (happy eyeballs tries the next when one fails).
 */
export function pinnedLookup(pinned: readonly Resolved[]): LookupFunction {
  const first = pinned[0] as Resolved;
  return (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Resolved[]) => void)(null, [...pinned]);
    } else callback(null, first.address, first.family);
  };
}

/** Agents kept, the least recently used dropped first; an idle socket is closed after IDLE_MS. */
const MAX_AGENTS = 32;
const IDLE_MS = 4_000;
const agents = new Map<string, http.Agent>();

/**
 * A keep-alive agent per protocol, name, port and checked addresses: calls to one service
 * reuse their connection (no TCP and TLS handshake each), and a socket only ever goes where
 * the addresses it was made for were checked to lead (another DNS answer, another agent).
 */
function agentFor(target: URL, pinned: readonly Resolved[]): http.Agent {
  const key = JSON.stringify([target.protocol, target.hostname, target.port, pinned.map((a) => a.address)]);
  const found = agents.get(key);
  if (found) {
    agents.delete(key);
    agents.set(key, found);
    return found;
  }
  // IDLE_MS under Node's default server keep-alive (5 s): a socket is not reused as it closes.
  const options = { keepAlive: true, timeout: IDLE_MS, maxFreeSockets: 8, lookup: pinnedLookup(pinned) };
  const agent = target.protocol === "https:" ? new https.Agent(options) : new http.Agent(options);
  agents.set(key, agent);
  for (const [oldKey, old] of agents) {
    if (agents.size <= MAX_AGENTS) break;
    agents.delete(oldKey);
    retire(old);
  }
  return agent;
}

/** Closes an agent's idle sockets, and each busy one once its call is over (none is cut). */
function retire(agent: http.Agent) {
  agent.maxFreeSockets = 0;
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

/**
 * A request's headers with an `Idempotency-Key` (the IETF httpapi draft, as Stripe and others
 * read it): the same for every delivery of one step of one run, so a service that honours it
 * does the work once however often the step is re-run. Left out of GET and HEAD, which change
 * nothing, and never over a key the caller set itself (in any letter case).
 */
export function withIdempotencyKey(
  headers: Record<string, string>,
  method: string,
  key: string | undefined,
): Record<string, string> {
  if (!key || /^(GET|HEAD)$/i.test(method)) return headers;
  if (Object.keys(headers).some((name) => name.toLowerCase() === "idempotency-key")) return headers;
  return { ...headers, "idempotency-key": key };
}

export interface ConnectorResponse {
  status: number;
  body: string;
  json(): unknown;
}

interface ConnectorRequest {
  method: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array;
  signal?: AbortSignal;
}

export async function connectorFetch(
  network: ConnectorNetwork,
  url: string,
  init: ConnectorRequest,
): Promise<ConnectorResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new ConnectorError("CONNECTOR_CONFIG_INVALID", "The connector's URL is not a valid URL.");
  }
  if (target.protocol !== "https:" && target.protocol !== "http:") {
    throw new ConnectorError("CONNECTOR_CONFIG_INVALID", "Connectors speak HTTP(S) only.");
  }
  if (target.username || target.password) {
    throw new ConnectorError("CONNECTOR_CONFIG_INVALID", "Put credentials in the integration's secrets, not the URL.");
  }
  const port = Number(target.port || (target.protocol === "https:" ? 443 : 80));
  // Started before resolving: the timeout covers the whole call, DNS included.
  const deadline = deadlineSignal(init.signal, network.timeoutMs);
  try {
    const call = async () => {
      const where = { hostname: target.hostname, port, usualPorts: HTTP_PORTS };
      return send(target, await allowedAddresses(network, where, deadline.signal), init, deadline.signal);
    };
    const { status, body } = await call().catch((err: unknown) => {
      if (err instanceof ConnectorError) throw err;
      if (deadline.timedOut()) {
        throw new ConnectorError("CONNECTOR_TIMEOUT", `${target.host} did not answer within ${network.timeoutMs} ms.`);
      }
      if (init.signal?.aborted) throw new ConnectorError("CANCELLED", "The call was cancelled.");
      const code = (err as { code?: string }).code;
      throw new ConnectorError(
        "CONNECTOR_UNREACHABLE",
        `${target.host} could not be reached (${code && /^[A-Z_]+$/.test(code) ? code : "network error"}).`,
      );
    });
    if (status >= 400) {
      // The whole body (bounded by MAX_RESPONSE_BYTES): whoever stores or shows the message
      // scrubs it and only then shortens it (Scrubber.clip). Cut here, a secret cut in half
      // would be a spelling the scrubber no longer recognises.
      throw new ConnectorError("CONNECTOR_HTTP_ERROR", `${target.host} answered ${status}${body ? `: ${body}` : ""}.`, {
        status,
      });
    }
    return { status, body, json: () => (body ? JSON.parse(body) : null) };
  } finally {
    deadline.clear();
  }
}

/** One request to the pinned addresses, on a kept-alive connection; redirects are not followed. */
function send(target: URL, pinned: readonly Resolved[], init: ConnectorRequest, signal: AbortSignal) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const req = (target.protocol === "https:" ? https : http).request(
      target,
      {
        method: init.method,
        headers: { ...init.headers, ...(body ? { "content-length": String(body.length) } : {}) },
        agent: agentFor(target, pinned),
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            res.destroy();
            reject(
              new ConnectorError(
                "CONNECTOR_RESPONSE_TOO_LARGE",
                `${target.host} answered with more than ${MAX_RESPONSE_BYTES} bytes.`,
              ),
            );
          } else chunks.push(chunk);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}
