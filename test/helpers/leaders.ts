// Which instances lead the scheduler, as a load balancer's probe sees it: GET /health.
import type { ServerProcess } from "./process.ts";

export async function schedulerHealth(url: string) {
  const body = (await (await fetch(`${url}/health`)).json()) as {
    scheduler: { isLeader: boolean; leaderSince: string | null };
  };
  return body.scheduler;
}

/** The instances among these that say they lead (one, once an election settled). */
export async function leaders(among: ServerProcess[]) {
  const states = await Promise.all(among.map((p) => schedulerHealth(p.url)));
  return among.filter((_, i) => states[i]?.isLeader);
}
