// The scrubber of one run. What a step stores must not hold any secret its calls used, even
// one rotated or deleted while the step ran (the organization's integrations, read when the
// step ends, no longer hold it), nor any secret the organization holds now (a step's output
// may echo another integration's). Building one costs a query and a decryption per
// integration: it is built once per run and again only when the integrations changed.
import type { Context } from "../../context.ts";
import { organizationScrubber } from "./integration.service.ts";
import type { Scrubber } from "./scrub.ts";

export interface RunScrubber {
  /** Secrets a call of this run sent, as it read them: covered for the rest of the run. */
  readonly used: Set<string>;
  /** A scrubber for the organization's secrets as they are now, and every one in `used`. */
  current(): Promise<Scrubber>;
}

export function runScrubber(deps: Pick<Context, "prisma" | "secrets">, organizationId: string): RunScrubber {
  const used = new Set<string>();
  let cached: { version: string; used: number; scrubber: Scrubber } | null = null;
  return {
    used,
    async current() {
      // Read before the build: a change landing in between only makes the next check rebuild.
      const version = await secretsVersion(deps, organizationId);
      if (cached?.version === version && cached.used === used.size) return cached.scrubber;
      const scrubber = await organizationScrubber(deps, organizationId, used);
      cached = { version, used: used.size, scrubber };
      return scrubber;
    },
  };
}

/**
 * Changes when an integration of the organization is added, updated (secrets rotated) or
 * deleted: how many there are and when the latest changed, in one aggregate query.
 */
async function secretsVersion(deps: Pick<Context, "prisma">, organizationId: string): Promise<string> {
  const r = await deps.prisma.integration.aggregate({
    where: { organizationId },
    _count: { _all: true },
    _max: { updatedAt: true },
  });
  return `${r._count._all}:${r._max.updatedAt?.getTime() ?? 0}`;
}
