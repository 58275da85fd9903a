// Live subscriptions as a client uses them: read the feed's cursor with the data, subscribe
// after it, and take events as they come; or drop the connection and resume from a cursor.
import WebSocket from "ws";
import { gql, wsClient } from "./client.ts";

export type Feed = "EVENTS" | "PATTERNS" | "SUGGESTIONS" | "EXECUTIONS" | "IMPORTS" | "AUDIT" | "MEMBERSHIPS";

export async function liveCursor(url: string, token: string, organizationId: string, feed: Feed) {
  const r = await gql<{ liveCursor: string }>(
    url,
    "query($org: ID!, $feed: LiveFeed!) { liveCursor(organizationId: $org, feed: $feed) }",
    {
      token,
      variables: { org: organizationId, feed },
    },
  );
  if (!r.data) throw new Error(JSON.stringify(r.errors));
  return r.data.liveCursor;
}

export interface Feed$<T> {
  items: T[];
  errors: unknown[];
  /** Resolves once `count` items have arrived (rejects if the subscription errors first). */
  next(count?: number): Promise<T[]>;
  /** Resolves with the subscription's terminal error. */
  ended(): Promise<unknown>;
  close(): Promise<void>;
}

/** Subscribes on its own connection; each item is the subscription field's value. */
export function subscribe<T = Record<string, unknown>>(
  wsUrl: string,
  credentials: Record<string, unknown>,
  query: string,
  variables: Record<string, unknown>,
): Feed$<T> {
  const client = wsClient(wsUrl, credentials);
  const items: T[] = [];
  const errors: unknown[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  client.subscribe<Record<string, T>>(
    { query, variables },
    {
      next: ({ data, errors: e }) => {
        if (e?.length) errors.push(e);
        if (data) items.push(Object.values(data)[0] as T);
        wake();
      },
      error: (err) => {
        errors.push(err);
        wake();
      },
      complete: wake,
    },
  );
  let taken = 0;
  return {
    items,
    errors,
    next(count = 1) {
      const want = taken + count;
      return new Promise((resolve, reject) => {
        const check = () => {
          if (items.length >= want) {
            waiters.delete(check);
            const out = items.slice(taken, want);
            taken = want;
            resolve(out);
          } else if (errors.length) {
            waiters.delete(check);
            reject(new Error(JSON.stringify(errors)));
          }
        };
        waiters.add(check);
        check();
      });
    },
    ended() {
      return new Promise((resolve) => {
        const check = () => {
          if (errors.length) {
            waiters.delete(check);
            resolve(errors[0]);
          }
        };
        waiters.add(check);
        check();
      });
    },
    close: () => client.dispose() as Promise<void>,
  };
}

/** A raw graphql-ws socket: for what a library client hides (close codes, pings, init). */
export function rawSocket(wsUrl: string, options: WebSocket.ClientOptions = {}) {
  const socket = new WebSocket(wsUrl, "graphql-transport-ws", options);
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const opened = new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const messages: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  socket.on("message", (data) => {
    messages.push(JSON.parse(data.toString()));
    for (const w of waiters) w();
  });
  return {
    socket,
    opened,
    closed,
    messages,
    send: (message: unknown) => socket.send(JSON.stringify(message)),
    /** The first message matching `match`, now or when it arrives. */
    message(match: (m: Record<string, unknown>) => boolean) {
      return new Promise<Record<string, unknown>>((resolve) => {
        const check = () => {
          const found = messages.find(match);
          if (found) {
            waiters.delete(check);
            resolve(found);
          }
        };
        waiters.add(check);
        check();
      });
    },
  };
}
