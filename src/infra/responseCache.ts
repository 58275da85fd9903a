// Where answers to queries are kept: Redis (shared by every instance) in the services mode, a
// bounded map in the embedded mode. An entry is valid while every scope it was made under
// (a user, an organization) is still at the generation it read before the query ran: a change
// bumps its scopes' generations, and every entry made under an older one is dead at once, on
// every instance, without anyone finding and deleting it. Entries also lapse after a TTL.
//
// Generations are read before the query runs and stored with its answer, so a change that
// commits while the query runs leaves an entry that is already dead: never a stale one.
import type { Redis } from "ioredis";

export interface ResponseStore {
  /** The answer under `key`, if every generation it was made under is still current. */
  get(key: string): Promise<string | null>;
  /** The current generations of `scopes` (read before running what will be stored). */
  generations(scopes: readonly string[]): Promise<string[]>;
  set(key: string, scopes: readonly string[], generations: readonly string[], body: string): Promise<void>;
  /** A change in these scopes: every entry made under them is dead. */
  bump(scopes: readonly string[]): Promise<void>;
}

/** Longer than any entry lives, so that a generation that lapsed cannot come back to match one. */
const GENERATION_TTL_SECONDS = 7 * 86_400;

// KEYS[1]: the entry. Its value: "scope gen scope gen ...\n" then the answer. A missing
// generation reads "0", as generations() reports it.
const GET = `
local entry = redis.call('GET', KEYS[1])
if not entry then return false end
local cut = string.find(entry, '\\n', 1, true)
if not cut then return false end
for scope, gen in string.gmatch(string.sub(entry, 1, cut - 1), '(%S+) (%S+)') do
  if (redis.call('GET', scope) or '0') ~= gen then return false end
end
return string.sub(entry, cut + 1)`;

export function createRedisResponseStore(redis: Redis, ttlSeconds: number): ResponseStore {
  // Lua reads generation keys by their full name: ioredis' keyPrefix applies to KEYS alone.
  const prefix = redis.options.keyPrefix ?? "";
  const gen = (scope: string) => `rc:gen:${scope}`;
  return {
    async get(key) {
      return (await redis.eval(GET, 1, `rc:e:${key}`)) as string | null;
    },
    async generations(scopes) {
      if (!scopes.length) return [];
      const values = await redis.mget(scopes.map(gen));
      return values.map((v) => v ?? "0");
    },
    async set(key, scopes, generations, body) {
      const head = scopes.map((s, i) => `${prefix}${gen(s)} ${generations[i]}`).join(" ");
      await redis.set(`rc:e:${key}`, `${head}\n${body}`, "EX", ttlSeconds);
    },
    async bump(scopes) {
      if (!scopes.length) return;
      const multi = redis.multi();
      for (const scope of scopes) multi.incr(gen(scope)).expire(gen(scope), GENERATION_TTL_SECONDS);
      const results = await multi.exec();
      const failed = results?.find(([err]) => err);
      if (!results || failed) throw failed?.[0] ?? new Error("response cache generations not bumped");
    },
  };
}

/** Least recently used first out, past `maxEntries`. */
export function createInProcessResponseStore(options: { ttlSeconds: number; maxEntries: number }): ResponseStore {
  const entries = new Map<
    string,
    { scopes: readonly string[]; generations: readonly string[]; body: string; until: number }
  >();
  const generations = new Map<string, number>();
  const current = (scope: string) => String(generations.get(scope) ?? 0);
  return {
    async get(key) {
      const entry = entries.get(key);
      if (!entry) return null;
      if (entry.until <= Date.now() || entry.scopes.some((s, i) => current(s) !== entry.generations[i])) {
        entries.delete(key);
        return null;
      }
      entries.delete(key);
      entries.set(key, entry);
      return entry.body;
    },
    async generations(scopes) {
      return scopes.map(current);
    },
    async set(key, scopes, gens, body) {
      entries.delete(key);
      entries.set(key, { scopes, generations: gens, body, until: Date.now() + options.ttlSeconds * 1000 });
      if (entries.size > options.maxEntries) entries.delete(entries.keys().next().value as string);
    },
    async bump(scopes) {
      for (const scope of scopes) generations.set(scope, (generations.get(scope) ?? 0) + 1);
    },
  };
}
