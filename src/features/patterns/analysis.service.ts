// One step of the pipeline: a chunk of one user's unanalysed events, folded into their
// patterns in the same transaction that marks the events analysed. A crash before the
// commit leaves both untouched, so the retry counts every event exactly once.
import { setImmediate } from "node:timers/promises";
import type { Prisma, PrismaClient } from "../../generated/prisma/client.ts";
import type { Outbox } from "../../infra/outbox.ts";
import { type AnalysedEvent, type Deltas, detect, mergeRecent, type Segment, segmentBounds } from "./detect.ts";

export const CHUNK = 500;

/**
 * The pipeline's queue: events not yet analysed, except those of an upload that has not
 * COMPLETED. An import stores its events chunk by chunk and deletes them if it fails (or
 * the sweep does, if its process died), so counting them early would leave patterns
 * counting rows that no longer exist. Completing the upload wakes the pipeline for them.
 * (A left join on the uploads' primary key; the events side stays on analyzed_at.)
 */
export const ANALYSABLE = {
  analyzedAt: null,
  OR: [{ uploadId: null }, { upload: { status: "COMPLETED" } }],
} satisfies Prisma.EventWhereInput;

const EVENT_FIELDS = {
  id: true,
  occurredAt: true,
  eventType: true,
  filePath: true,
  fileExtension: true,
  tool: true,
  inputPaths: true,
  outputPaths: true,
} as const;

export interface ChunkResult {
  /** False when another worker holds this user's analysis: nothing was done. */
  locked: boolean;
  analysed: number;
  /** More events of this user wait. */
  more: boolean;
}

type Tx = Prisma.TransactionClient;

const ON_DEMAND_CHUNKS = 20;

/**
 * What of one user's waits, now, for a caller that wants up-to-date patterns: up to
 * ON_DEMAND_CHUNKS chunks inside the request (a larger backlog is left to the pipeline),
 * yielding between chunks so that other requests are served meanwhile.
 */
export async function analyseUserNow(deps: Deps, organizationId: string, userId: string) {
  for (let i = 0; i < ON_DEMAND_CHUNKS; i++) {
    if (!(await analyseChunk(deps, organizationId, userId, { wait: true })).more) return;
    await setImmediate();
  }
}

/** Analyses a chunk of one user's events (and announces the extension patterns it changed). */
export async function analyseChunk(
  deps: Deps,
  organizationId: string,
  userId: string | null,
  options: { wait?: boolean } = {},
): Promise<ChunkResult> {
  return transaction(deps.outbox, organizationId, userId, options);
}

type Deps = { prisma: PrismaClient; outbox: Outbox };
type Change = { id: string; kind: "CREATED" | "UPDATED" };

/** The extension patterns a chunk changed are announced in its transaction. */
function transaction(
  outbox: Outbox,
  organizationId: string,
  userId: string | null,
  options: { wait?: boolean },
): Promise<ChunkResult> {
  return outbox.transaction(
    async (tx, notify) => {
      // One analyser per user at a time, across instances: the incremental counts depend on it.
      // The pipeline skips a user someone else is on; an on-demand caller waits its turn.
      const key = `analysis:${organizationId}:${userId}`;
      if (options.wait) await tx.$queryRaw`SELECT pg_advisory_xact_lock(hashtextextended(${key}, 0))::text`;
      else {
        const [lock] = await tx.$queryRaw<{ ok: boolean }[]>`
          SELECT pg_try_advisory_xact_lock(hashtextextended(${key}, 0)) AS ok`;
        if (!lock?.ok) return { locked: false, analysed: 0, more: true };
      }

      const fresh = await tx.event.findMany({
        where: { organizationId, userId, ...ANALYSABLE },
        orderBy: [{ occurredAt: "asc" }, { id: "asc" }],
        take: CHUNK + 1,
        select: EVENT_FIELDS,
      });
      const more = fresh.length > CHUNK;
      if (more) fresh.pop();
      if (fresh.length === 0) return { locked: true, analysed: 0, more: false };
      if (userId) {
        const changed = await fold(tx, organizationId, userId, await segmentsFor(tx, organizationId, userId, fresh));
        for (const change of changed) notify("PATTERNS", organizationId, { ...change, data: { userId } });
      }
      await tx.event.updateMany({ where: { id: { in: fresh.map((e) => e.id) } }, data: { analyzedAt: new Date() } });
      return { locked: true, analysed: fresh.length, more };
    },
    { timeout: 120_000, maxWait: 30_000 },
  );
}

async function segmentsFor(tx: Tx, organizationId: string, userId: string, fresh: AnalysedEvent[]) {
  const bounds = segmentBounds(fresh);
  const analysed = await tx.event.findMany({
    where: {
      organizationId,
      userId,
      analyzedAt: { not: null },
      OR: bounds.map((b) => ({ occurredAt: { gte: b.from, lte: b.to } })),
    },
    select: EVENT_FIELDS,
  });
  const segments: Segment[] = bounds.map((b) => ({ analysed: [], fresh: b.fresh }));
  for (const event of analysed) {
    const i = bounds.findIndex((b) => event.occurredAt >= b.from && event.occurredAt <= b.to);
    segments[i]?.analysed.push(event);
  }
  return segments;
}

async function fold(tx: Tx, organizationId: string, userId: string, segments: Segment[]) {
  const deltas = detect(segments);
  const changed = await foldExtensions(tx, organizationId, userId, deltas);
  await foldSequences(tx, organizationId, userId, deltas);
  await foldRelations(tx, organizationId, userId, deltas);
  return changed;
}

async function foldExtensions(tx: Tx, organizationId: string, userId: string, deltas: Deltas): Promise<Change[]> {
  if (deltas.extensions.size === 0) return [];
  const changed: Change[] = [];
  const existing = await tx.pattern.findMany({
    where: { organizationId, userId, fileExtension: { in: [...deltas.extensions.keys()] } },
  });
  const byExt = new Map(existing.map((p) => [p.fileExtension, p]));
  for (const [fileExtension, delta] of deltas.extensions) {
    const row = byExt.get(fileExtension);
    const storedAt = ((row?.metadata as { recentAt?: string[] } | undefined)?.recentAt ?? []).map((s) => new Date(s));
    const stored = (row?.recentPaths ?? []).map((path, i) => ({ path, at: storedAt[i] ?? new Date(0) }));
    const recent = mergeRecent(stored, delta.recentPaths);
    const data = {
      count: (row?.count ?? 0) + delta.count,
      lastUsedAt: row && row.lastUsedAt > delta.lastUsedAt ? row.lastUsedAt : delta.lastUsedAt,
      tools: [...new Set([...(row?.tools ?? []), ...delta.tools])].sort(),
      recentPaths: recent.map((r) => r.path),
      metadata: { recentAt: recent.map((r) => r.at.toISOString()) },
    };
    if (row) {
      await tx.pattern.update({ where: { id: row.id }, data, select: { id: true } });
      changed.push({ id: row.id, kind: "UPDATED" });
    } else {
      const created = await tx.pattern.create({
        data: { organizationId, userId, fileExtension, ...data },
        select: { id: true },
      });
      changed.push({ id: created.id, kind: "CREATED" });
    }
  }
  return changed;
}

async function foldSequences(tx: Tx, organizationId: string, userId: string, deltas: Deltas) {
  const changed = [...deltas.sequences.values()].filter((d) => d.count !== 0 || d.gapMs !== 0);
  if (changed.length === 0) return;
  const existing = await tx.temporalPattern.findMany({
    where: { organizationId, userId, OR: changed.map((d) => ({ fromType: d.fromType, toType: d.toType })) },
  });
  const byKey = new Map(existing.map((p) => [`${p.fromType}\u0000${p.toType}`, p]));
  for (const delta of changed) {
    const row = byKey.get(`${delta.fromType}\u0000${delta.toType}`);
    const count = (row?.count ?? 0) + delta.count;
    if (count <= 0) {
      if (row) await tx.temporalPattern.delete({ where: { id: row.id } });
      continue;
    }
    const data = {
      count,
      gapTotalMs: (row?.gapTotalMs ?? 0n) + BigInt(delta.gapMs),
      lastSeenAt:
        row && (!delta.lastSeenAt || row.lastSeenAt > delta.lastSeenAt)
          ? row.lastSeenAt
          : (delta.lastSeenAt ?? new Date()),
      files: [...new Set([...(row?.files ?? []), ...delta.files])].slice(0, 5),
    };
    if (row) await tx.temporalPattern.update({ where: { id: row.id }, data });
    else
      await tx.temporalPattern.create({
        data: { organizationId, userId, fromType: delta.fromType, toType: delta.toType, ...data },
      });
  }
}

/** Many rows at once: one INSERT … ON CONFLICT adding weights, instead of one upsert per pair. */
async function foldRelations(tx: Tx, organizationId: string, userId: string, deltas: Deltas) {
  const rows = [...deltas.relations.values()];
  for (let i = 0; i < rows.length; i += 1000) {
    const slice = rows.slice(i, i + 1000);
    await tx.$executeRaw`
      INSERT INTO file_relationships
        (id, organization_id, user_id, source_path, target_path, relation_type, weight, first_seen_at, last_seen_at)
      SELECT gen_random_uuid(), ${organizationId}::uuid, ${userId}::uuid, r.source, r.target,
             r.type::relation_type, r.weight, r.first_seen, r.last_seen
      FROM unnest(${slice.map((r) => r.sourcePath)}::text[], ${slice.map((r) => r.targetPath)}::text[],
                  ${slice.map((r) => r.relationType)}::text[], ${slice.map((r) => r.weight)}::int[],
                  ${slice.map((r) => r.firstSeenAt)}::timestamptz[], ${slice.map((r) => r.lastSeenAt)}::timestamptz[])
        AS r(source, target, type, weight, first_seen, last_seen)
      ON CONFLICT (organization_id, user_id, source_path, target_path, relation_type) DO UPDATE SET
        weight = file_relationships.weight + excluded.weight,
        first_seen_at = LEAST(file_relationships.first_seen_at, excluded.first_seen_at),
        last_seen_at = GREATEST(file_relationships.last_seen_at, excluded.last_seen_at)`;
  }
  // A pair a late event split may take a relationship's weight to nothing.
  if (rows.some((r) => r.weight < 0)) {
    await tx.fileRelationship.deleteMany({ where: { organizationId, userId, weight: { lte: 0 } } });
  }
}
