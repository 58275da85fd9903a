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

export type PubSub = ReturnType<typeof createPubSub<Channels>>;

export function createInProcessPubSub(): PubSub {
  return createPubSub<Channels>();
}

/**
 * Channel names are not covered by ioredis' keyPrefix, so the prefix is added here: two
 * deployments (or test runs) on one Redis never hear each other.
 */
export function createRedisPubSub(publishClient: Redis, subscribeClient: Redis, prefix: string): PubSub {
  const target = createRedisEventTarget<CustomEvent>({ publishClient, subscribeClient });
  const prefixed: EventTarget = {
    addEventListener: (type, listener, options) => target.addEventListener(prefix + type, listener as never, options),
    removeEventListener: (type, listener, options) =>
      target.removeEventListener(prefix + type, listener as never, options),
    dispatchEvent: (event) =>
      target.dispatchEvent(new CustomEvent(prefix + event.type, { detail: (event as CustomEvent).detail })),
  };
  return createPubSub<Channels>({ eventTarget: prefixed as never });
}
