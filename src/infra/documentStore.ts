// Documents registered by automatic persisted queries, by sha256 hash: in Redis (shared by
// every instance, lapsing after a TTL) in the services mode, in a bounded map in-process in
// the embedded mode. A lost entry costs the client one round trip: it sends the text again.
import type { Redis } from "ioredis";

export interface DocumentStore {
  get(hash: string): Promise<string | null>;
  set(hash: string, document: string): Promise<void>;
}

export function createRedisDocuments(redis: Redis, ttlSeconds: number): DocumentStore {
  return {
    get: (hash) => redis.get(`apq:${hash}`),
    async set(hash, document) {
      await redis.set(`apq:${hash}`, document, "EX", ttlSeconds);
    },
  };
}

/** Least recently used first out, past `maxEntries`. */
export function createInProcessDocuments(maxEntries = 10_000): DocumentStore {
  const documents = new Map<string, string>();
  return {
    async get(hash) {
      const document = documents.get(hash);
      if (document === undefined) return null;
      documents.delete(hash);
      documents.set(hash, document);
      return document;
    },
    async set(hash, document) {
      documents.delete(hash);
      documents.set(hash, document);
      if (documents.size > maxEntries) documents.delete(documents.keys().next().value as string);
    },
  };
}
