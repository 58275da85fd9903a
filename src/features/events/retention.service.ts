// Retention: events older than their organization's setting are deleted, with the patterns,
// sequences and relationships last seen before that. Callable now (eventRetentionCleanup)
// and run by the scheduler.
import type { Context } from "../../context.ts";
import type { PrismaClient } from "../../generated/prisma/client.ts";
import { authorize } from "../auth/access.ts";

export interface CleanupResult {
  organizationId: string;
  cutoff: Date;
  events: number;
  patterns: number;
  sequences: number;
  relationships: number;
}

export async function cleanupOrganization(prisma: PrismaClient, organizationId: string): Promise<CleanupResult> {
  const org = await prisma.organization.findUniqueOrThrow({
    where: { id: organizationId },
    select: { eventRetentionDays: true },
  });
  const cutoff = new Date(Date.now() - org.eventRetentionDays * 86_400_000);
  const [events, patterns, sequences, relationships] = await prisma.$transaction([
    prisma.event.deleteMany({ where: { organizationId, occurredAt: { lt: cutoff } } }),
    prisma.pattern.deleteMany({ where: { organizationId, lastUsedAt: { lt: cutoff } } }),
    prisma.temporalPattern.deleteMany({ where: { organizationId, lastSeenAt: { lt: cutoff } } }),
    prisma.fileRelationship.deleteMany({ where: { organizationId, lastSeenAt: { lt: cutoff } } }),
  ]);
  return {
    organizationId,
    cutoff,
    events: events.count,
    patterns: patterns.count,
    sequences: sequences.count,
    relationships: relationships.count,
  };
}

/** Every organization, one at a time: the scheduler's job. */
export async function cleanupAll(prisma: PrismaClient): Promise<CleanupResult[]> {
  const orgs = await prisma.organization.findMany({ select: { id: true }, orderBy: { id: "asc" } });
  const results: CleanupResult[] = [];
  for (const org of orgs) results.push(await cleanupOrganization(prisma, org.id));
  return results;
}

export async function cleanupNow({ ctx, organizationId }: { ctx: Context; organizationId: string }) {
  await authorize(ctx, organizationId, "delete");
  return cleanupOrganization(ctx.prisma, organizationId);
}
