// One hostile request and what it must get back. Requests are built from the world (the
// victim's ids exist only once it is made), so a case holds a function, not the request.
import type { World } from "./world.ts";

/** Who the request claims to be. */
export type As = "attacker" | "attackerKey" | "anonymous";

export interface HttpRequest {
  method?: string;
  /** Path and query string; /graphql when absent. */
  path?: string;
  headers?: Record<string, string>;
  as?: As;
  /** Sent as JSON (content-type application/json unless headers say otherwise). */
  json?: unknown;
  /** Sent as is: text, bytes, a form, or a stream (sent chunked, without a length). */
  body?: string | Uint8Array | FormData | (() => ReadableStream<Uint8Array>);
}

/** Bytes written straight to a socket: requests no HTTP client would send. */
export interface RawRequest {
  raw: string | Uint8Array;
  /** End the sending side after writing (the server sees the body end early). */
  halfClose?: boolean;
}

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  /** The body as JSON, when it is JSON. */
  json?: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

export interface Expect {
  /** The status, or one of these. */
  status?: number | number[];
  /** The first error's extensions.code, or one of these. */
  code?: string | string[];
  /**
   * A read that must succeed (200, data, no error) and answer only what it should: searches
   * with LIKE or regex metacharacters match them literally, and never the victim's rows.
   */
  data?: (data: Record<string, unknown>, world: World) => void;
  /** Any further check of the reply. */
  check?: (reply: Reply, world: World) => void;
}

export interface Case {
  name: string;
  request: (world: World) => HttpRequest | RawRequest;
  expect?: Expect;
}

/** A GraphQL request body. */
export function op(query: string, variables?: Record<string, unknown>, operationName?: string) {
  return { query, ...(variables ? { variables } : {}), ...(operationName ? { operationName } : {}) };
}

/** The attacker sending one operation as JSON. */
export function attack(query: string, variables?: Record<string, unknown>, as: As = "attacker"): HttpRequest {
  return { as, json: op(query, variables) };
}

/** A body of `bytes` bytes sent chunked (no Content-Length: the server learns its size only by reading). */
export function chunked(bytes: number, piece = "x"): () => ReadableStream<Uint8Array> {
  return () => {
    let sent = 0;
    const chunk = new TextEncoder().encode(piece.repeat(Math.ceil((64 * 1024) / piece.length)));
    return new ReadableStream({
      pull(controller) {
        if (sent >= bytes) return controller.close();
        controller.enqueue(chunk);
        sent += chunk.length;
      },
    });
  };
}

/** A multipart request (with the preflight header) of these operations and an empty map, changed by `extra`. */
export function multipart(operations: unknown, extra: (form: FormData) => void = () => undefined): HttpRequest {
  const form = new FormData();
  form.set("operations", typeof operations === "string" ? operations : JSON.stringify(operations));
  form.set("map", "{}");
  extra(form);
  return { as: "attacker", body: form, headers: { "graphql-preflight": "1" } };
}
