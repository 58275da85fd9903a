// A GraphQL client as the web app or a partner would use: JSON over HTTP, graphql-ws over WebSocket.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
}

type Doc<T, V> = string | TypedDocumentNode<T, V>;

export async function gql<T = Record<string, unknown>, V = Record<string, unknown>>(
  url: string,
  document: Doc<T, V>,
  options: { variables?: V; token?: string; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: JSON.stringify({
      query: typeof document === "string" ? document : print(document),
      variables: options.variables,
    }),
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

/** Opens a graphql-ws client; `lazy: false` so connection problems surface at once. */
export function wsClient(url: string, connectionParams?: Record<string, unknown>) {
  return createClient({ url, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0, connectionParams });
}

/** Runs one operation over graphql-ws and resolves with its single result. */
export function wsRequest<T = Record<string, unknown>>(
  client: ReturnType<typeof wsClient>,
  query: string,
  variables?: Record<string, unknown>,
): Promise<Omit<GraphQLResponse<T>, "status" | "headers">> {
  return new Promise((resolve, reject) => {
    let result: Omit<GraphQLResponse<T>, "status" | "headers"> | undefined;
    client.subscribe<T>(
      { query, variables },
      {
        next: (value) => {
          result = value as never;
        },
        error: (err) => (Array.isArray(err) ? resolve({ errors: err as never }) : reject(err)),
        complete: () => (result ? resolve(result) : reject(new Error("completed without a result"))),
      },
    );
  });
}

/** A GraphQL multipart request (the spec Yoga implements): one file in variable `path`. */
export async function gqlUpload<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  file: { path: string; name: string; content: string | Uint8Array; type?: string },
  options: { token?: string } = {},
): Promise<GraphQLResponse<T>> {
  const form = new FormData();
  form.set("operations", JSON.stringify({ query, variables }));
  form.set("map", JSON.stringify({ 0: [`variables.${file.path}`] }));
  form.set("0", new Blob([file.content as BlobPart], { type: file.type ?? "text/plain" }), file.name);
  const response = await fetch(url, {
    method: "POST",
    headers: {
      accept: "application/graphql-response+json",
      // Required of multipart requests (CSRF): a header no HTML form can send.
      "graphql-preflight": "1",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
    body: form,
  });
  const body = (await response.json()) as Omit<GraphQLResponse<T>, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

/** A subscription's results as they arrive, and a way to wait for one that matches. */
export function collect<T>(
  client: ReturnType<typeof wsClient>,
  query: string,
  variables: Record<string, unknown>,
): { items: T[]; until(match: (items: T[]) => boolean): Promise<void> } {
  const items: T[] = [];
  const waiters: { match: (items: T[]) => boolean; resolve: () => void; reject: (e: unknown) => void }[] = [];
  client.subscribe<T>(
    { query, variables },
    {
      next: ({ data, errors }) => {
        if (errors?.length) for (const w of waiters) w.reject(new Error(JSON.stringify(errors)));
        if (data) items.push(data as T);
        for (const w of waiters) if (w.match(items)) w.resolve();
      },
      error: (err) => {
        for (const w of waiters) w.reject(err);
      },
      complete: () => undefined,
    },
  );
  return {
    items,
    until: (match) =>
      new Promise<void>((resolve, reject) => (match(items) ? resolve() : waiters.push({ match, resolve, reject }))),
  };
}
