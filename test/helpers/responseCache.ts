// What both response-cache suites share: the run modes they cover, and the cache's own count.
import type { TestServer } from "./server.ts";
import { services } from "./server.ts";

/** Embedded always; the services mode too when the run has PostgreSQL and Redis. */
export const modes = [
  { mode: "embedded", env: () => ({ DATABASE_URL: undefined, REDIS_URL: undefined }) },
  ...(services ? [{ mode: "services", env: () => ({}) }] : []),
];

/** What the instance's cache did so far (floyo_response_cache_total). */
export async function cacheCounts(server: TestServer) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const count = (result: string) =>
    Number(new RegExp(`^floyo_response_cache_total\\{result="${result}"\\} (\\d+)`, "m").exec(text)?.[1] ?? 0);
  return { hit: count("hit"), miss: count("miss"), skip: count("skip") };
}
