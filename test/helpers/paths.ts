// The same GraphQL request along every path a request can take to the server: the JSON fast
// path, Yoga's own handler (application/graphql+json, multipart, GET), SSE and graphql-ws,
// each answer reduced to what a client sees (status, the headers that matter, the body
// without its per-request ids) so that the paths can be compared.
import { createClient } from "graphql-ws";
import WebSocket from "ws";

export interface Sent {
  query?: string;
  variables?: Record<string, unknown>;
  operationName?: string;
  extensions?: Record<string, unknown>;
  /** Request headers: authorization, x-api-key, origin... */
  headers?: Record<string, string>;
}

export interface Seen {
  status: number;
  headers: Record<string, string | null>;
  body: unknown;
}

export type PathName = "fast" | "graphql+json" | "multipart" | "get" | "sse" | "ws";

/** Headers whose presence or value must not depend on the path. */
export const COMPARED_HEADERS = [
  "content-type",
  "cache-control",
  "retry-after",
  "ratelimit-limit",
  "ratelimit-remaining",
  "ratelimit-reset",
  "access-control-allow-origin",
  "access-control-expose-headers",
  "vary",
  "x-content-type-options",
  "x-frame-options",
  "referrer-policy",
  "content-security-policy",
  "strict-transport-security",
  "cross-origin-resource-policy",
];

const ACCEPT = "application/graphql-response+json, application/json;q=0.9";

/** Values that move from one request to the next: compared by type. */
const MOVING = new Set(["remaining", "resetAt", "currentlyAvailable"]);
const MOVING_HEADERS = new Set(["ratelimit-remaining", "ratelimit-reset", "retry-after"]);

/** Drops what differs per request by design: request ids, and the remaining budget (it moves). */
export function normalize(body: unknown): unknown {
  if (Array.isArray(body)) return body.map(normalize);
  if (!body || typeof body !== "object") return body;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (key === "requestId") continue;
    out[key] = MOVING.has(key) ? typeof value : normalize(value);
  }
  return out;
}

function headersOf(response: Response): Record<string, string | null> {
  const headers: Record<string, string | null> = {};
  for (const name of COMPARED_HEADERS) {
    const value = response.headers.get(name);
    headers[name] = value !== null && MOVING_HEADERS.has(name) ? value.replace(/\d+/g, "#") : value;
  }
  return headers;
}

async function http(url: string, init: RequestInit): Promise<Seen> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: compared as text.
  }
  return { status: response.status, headers: headersOf(response), body: normalize(body) };
}

const payload = (sent: Sent) => ({
  query: sent.query,
  variables: sent.variables,
  operationName: sent.operationName,
  extensions: sent.extensions,
});

export const paths: Record<PathName, (graphqlUrl: string, sent: Sent) => Promise<Seen>> = {
  fast: (url, sent) =>
    http(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: ACCEPT, ...sent.headers },
      body: JSON.stringify(payload(sent)),
    }),
  "graphql+json": (url, sent) =>
    http(url, {
      method: "POST",
      headers: { "content-type": "application/graphql+json", accept: ACCEPT, ...sent.headers },
      body: JSON.stringify(payload(sent)),
    }),
  multipart: (url, sent) => {
    const form = new FormData();
    form.set("operations", JSON.stringify(payload(sent)));
    form.set("map", "{}");
    return http(url, {
      method: "POST",
      headers: { accept: ACCEPT, "graphql-preflight": "1", ...sent.headers },
      body: form,
    });
  },
  get: (url, sent) => {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(payload(sent))) {
      if (value !== undefined) search.set(key, typeof value === "string" ? value : JSON.stringify(value));
    }
    return http(`${url}?${search}`, { headers: { accept: ACCEPT, ...sent.headers } });
  },
  /** GraphQL over SSE (distinct connections mode): the one result of a query or mutation. */
  sse: async (url, sent) => {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", ...sent.headers },
      body: JSON.stringify(payload(sent)),
    });
    const text = await response.text();
    const data = text
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trim())
      .filter(Boolean)[0];
    return {
      status: response.status,
      headers: headersOf(response),
      body: normalize(data === undefined ? text : JSON.parse(data)),
    };
  },
  ws: (url, sent) =>
    new Promise((resolve, reject) => {
      const headers = sent.headers ?? {};
      const client = createClient({
        url: url.replace(/^http/, "ws"),
        webSocketImpl: WebSocket,
        lazy: true,
        retryAttempts: 0,
        connectionParams: {
          ...(headers.authorization ? { authorization: headers.authorization } : {}),
          ...(headers["x-api-key"] ? { "x-api-key": headers["x-api-key"] } : {}),
        },
      });
      let result: unknown;
      const done = (value: unknown, failed = false) => {
        void client.dispose();
        if (failed) reject(value);
        else resolve({ status: 0, headers: {}, body: normalize(value) });
      };
      client.subscribe(
        {
          query: sent.query ?? "",
          variables: sent.variables,
          operationName: sent.operationName,
          extensions: sent.extensions,
        },
        {
          next: (value) => {
            result = value;
          },
          error: (err) =>
            Array.isArray(err)
              ? done({ errors: err })
              : // A close: its code and reason are what the client sees.
                err && typeof err === "object" && "code" in err
                ? done({ closed: (err as { code: number }).code, reason: (err as { reason?: string }).reason })
                : done(err, true),
          complete: () => done(result),
        },
      );
    }),
};
