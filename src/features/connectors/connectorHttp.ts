// Every call a connector makes: only to allowed hosts, with a timeout, and errors that name
// what went wrong without echoing credentials.
import { AppError } from "../../errors.ts";
import { deadlineSignal } from "../../infra/deadline.ts";

export interface ConnectorNetwork {
  allowedHosts: string[];
  timeoutMs: number;
}

export class ConnectorError extends AppError {}

/** "api.github.com" matches itself; "*.amazonaws.com" any subdomain; "127.0.0.1:8080" a host and port. */
export function hostAllowed(url: URL, allowed: string[]): boolean {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  return allowed.some((pattern) => {
    const [name, port] = pattern.split(/:(?=\d+$)/);
    if (port && port !== (url.port || (url.protocol === "https:" ? "443" : "80"))) return false;
    if (name?.startsWith("*.")) return host.endsWith(name.slice(1));
    return host === name;
  });
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
  if (!hostAllowed(target, network.allowedHosts)) {
    throw new ConnectorError(
      "HOST_NOT_ALLOWED",
      `${target.host} is not in CONNECTOR_ALLOWED_HOSTS; ask an operator to allow it.`,
    );
  }
  const deadline = deadlineSignal(init.signal, network.timeoutMs);
  try {
    return await call(target, init, deadline, network.timeoutMs);
  } finally {
    deadline.clear();
  }
}

async function call(
  target: URL,
  init: ConnectorRequest,
  deadline: ReturnType<typeof deadlineSignal>,
  timeoutMs: number,
): Promise<ConnectorResponse> {
  let response: Response;
  try {
    response = await fetch(target, {
      method: init.method,
      headers: init.headers,
      body: init.body as BodyInit | undefined,
      signal: deadline.signal,
      redirect: "manual",
    });
  } catch (err) {
    if (deadline.timedOut()) {
      throw new ConnectorError("CONNECTOR_TIMEOUT", `${target.host} did not answer within ${timeoutMs} ms.`);
    }
    if (init.signal?.aborted) throw new ConnectorError("CANCELLED", "The call was cancelled.");
    throw new ConnectorError(
      "CONNECTOR_UNREACHABLE",
      `${target.host} could not be reached (${(err as Error).cause ? String((err as { cause: { code?: string } }).cause.code ?? "network error") : "network error"}).`,
    );
  }
  const body = await response.text();
  if (response.status >= 400) {
    throw new ConnectorError(
      "CONNECTOR_HTTP_ERROR",
      `${target.host} answered ${response.status}${body ? `: ${body.slice(0, 200)}` : ""}.`,
      { status: response.status },
    );
  }
  return {
    status: response.status,
    body,
    json: () => (body ? JSON.parse(body) : null),
  };
}
