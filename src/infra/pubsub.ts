// Typed pub/sub: in-process in the embedded mode, Redis in the services mode, so a client on
// any instance hears what a mutation on any other instance published.
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { createPubSub } from "graphql-yoga";
import type { Redis } from "ioredis";

export type ChangeKind = "CREATED" | "UPDATED" | "DELETED";

/**
 * Channels are per organization; payloads carry ids and a change kind, never rows (plus, for
 * progress that is not stored anywhere, a few numbers).
 */
export interface ChangePayload {
  id: string;
  kind: ChangeKind;
  data?: Record<string, string | number | null>;
}

export interface Channels {
  [topic: string]: [organizationId: string, payload: ChangePayload];
}

/**
 * Yoga's pub/sub, plus `listen`: a plain callback, called as each message arrives. Subscribing
 * hands messages over through a Repeater, which holds at most 1024 undelivered pushes and
 * throws past that, in the publisher's call stack; a listener that must not fall behind a
 * burst (live feeds, revocations) takes them as they come and keeps its own bounds.
 */
export type PubSub = ReturnType<typeof createPubSub<Channels>> & {
  listen(topic: string, id: string, listener: (payload: ChangePayload) => void): () => void;
  /**
   * Calls back when this instance's subscription came back after a Redis outage: what was
   * published meanwhile never arrived, so whatever a message would have invalidated (cached
   * credentials) must be looked at again.
   */
  onReconnect(listener: () => void): () => void;
};

function withListen(target: EventTarget, onReconnect: PubSub["onReconnect"] = () => () => {}): PubSub {
  const pubsub = createPubSub<Channels>({ eventTarget: target as never });
  return {
    ...pubsub,
    onReconnect,
    listen(topic, id, listener) {
      // createPubSub's own naming of a routed topic.
      const type = `${topic}:${id}`;
      const callback = (event: Event) => listener((event as CustomEvent).detail as ChangePayload);
      target.addEventListener(type, callback);
      return () => target.removeEventListener(type, callback);
    },
  };
}

export function createInProcessPubSub(): PubSub {
  return withListen(new EventTarget());
}

/**
 * Channel names are not covered by ioredis' keyPrefix, so the prefix is added here: two
 * deployments (or test runs) on one Redis never hear each other.
 */
export function createRedisPubSub(
  publishClient: Redis,
  subscribeClient: Redis,
  prefix: string,
  onError: (err: Error) => void = () => {},
): PubSub {
  // The event target neither waits for nor catches (UN)SUBSCRIBE: one sent as the connection
  // closes (at shutdown) would be an unhandled rejection. ioredis subscribes again on reconnect.
  const quiet = {
    on: subscribeClient.on.bind(subscribeClient),
    subscribe: (channel: string) => subscribeClient.subscribe(channel).catch(() => 0),
    unsubscribe: (channel: string) => subscribeClient.unsubscribe(channel).catch(() => 0),
  };
  // Nor PUBLISH: with Redis away, one publish would end the process. What goes through here
  // is a wake-up or an invalidation, each with a fallback (workers poll, caches lapse and are
  // dropped on reconnect); what subscribers must hear goes through the outbox instead.
  // Reported once per outage, not once per message.
  let failing = false;
  const publisher = {
    publish: (channel: string, message: string) =>
      publishClient.publish(channel, message).then(
        (n) => {
          failing = false;
          return n;
        },
        (err: Error) => {
          if (!failing) onError(err);
          failing = true;
          return 0;
        },
      ),
  };
  const target = createRedisEventTarget<CustomEvent>({
    publishClient: publisher as unknown as Redis,
    subscribeClient: quiet as unknown as Redis,
  });
  const prefixed: EventTarget = {
    addEventListener: (type, listener, options) => target.addEventListener(prefix + type, listener as never, options),
    removeEventListener: (type, listener, options) =>
      target.removeEventListener(prefix + type, listener as never, options),
    dispatchEvent: (event) =>
      target.dispatchEvent(new CustomEvent(prefix + event.type, { detail: (event as CustomEvent).detail })),
  };
  const reconnectListeners = new Set<() => void>();
  let connected = true;
  subscribeClient.on("close", () => {
    connected = false;
  });
  subscribeClient.on("ready", () => {
    if (!connected) for (const listener of reconnectListeners) listener();
    connected = true;
  });
  return withListen(prefixed, (listener) => {
    reconnectListeners.add(listener);
    return () => reconnectListeners.delete(listener);
  });
}
