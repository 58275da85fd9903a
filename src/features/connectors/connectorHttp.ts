// Every call a connector makes: only to allowed hosts, ports and addresses, with a timeout, a
// bounded response, and errors that name what went wrong without echoing credentials.
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
 * The address a connection may use, checked against the allow-list (name, port, resolved
 * addresses); throws HOST_NOT_ALLOWED otherwise.
 */
export async function allowedAddress(
  network: ConnectorNetwork,
  target: { hostname: string; port: number; usualPorts: readonly number[] },
): Promise<Resolved> {
  const resolved = await resolveTarget(target, network.allowedHosts);
  if ("refused" in resolved) {
    throw new ConnectorError("HOST_NOT_ALLOWED", `${resolved.refused}; ask an operator to allow it.`);
  }
  return resolved;
}

/** A lookup that always answers the checked address: no second DNS answer can move the socket. */
export function pinnedLookup(pinned: Resolved): LookupFunction {
  return (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as unknown as (e: null, a: Resolved[]) => void)(null, [pinned]);
    } else callback(null, pinned.address, pinned.family);
  };
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
  const pinned = await allowedAddress(network, { hostname: target.hostname, port, usualPorts: HTTP_PORTS });
  const deadline = deadlineSignal(init.signal, network.timeoutMs);
  try {
    const { status, body } = await send(target, pinned, init, deadline.signal).catch((err: unknown) => {
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

/** One request on its own socket to the pinned address; redirects are not followed. */
function send(target: URL, pinned: Resolved, init: ConnectorRequest, signal: AbortSignal) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const body = init.body === undefined ? undefined : Buffer.from(init.body);
    const req = (target.protocol === "https:" ? https : http).request(
      target,
      {
        method: init.method,
        headers: { ...init.headers, ...(body ? { "content-length": String(body.length) } : {}) },
        lookup: pinnedLookup(pinned),
        agent: false,
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
