// An upload in PROCESSING belongs to the process doing its work only while that process
// renews its heartbeat. A process killed part-way (SIGKILL, a crash, a lost machine) stops
// renewing; the leader's sweep then fails the upload and deletes whatever it had stored,
// so an import is never left half in. Every step is a conditional update, so any number of
// sweeps and the import itself can race and still agree on one outcome.
import { setImmediate } from "node:timers/promises";
import type { AppDeps } from "../../context.ts";
import { ConflictError } from "../../errors.ts";
import type { Prisma, PrismaClient } from "../../generated/prisma/client.ts";

/** Rows per statement when storing or deleting an upload's events. */
export const EVENT_CHUNK = 250;

export const INTERRUPTED = "The import was interrupted before it finished (its server stopped); nothing was kept.";

/** The upload was failed by a sweep while this process still worked on it (it stalled past the bound). */
export class UploadInterruptedError extends ConflictError {
  constructor() {
    super("IMPORT_INTERRUPTED", `${INTERRUPTED} Send the file again.`);
  }
}

/** Renews the heartbeat; false when the upload is no longer PROCESSING (a sweep failed it). */
export async function renew(prisma: PrismaClient, uploadId: string): Promise<boolean> {
  const { count } = await prisma.upload.updateMany({
    where: { id: uploadId, status: "PROCESSING" },
    data: { heartbeatAt: new Date() },
  });
  return count > 0;
}

/**
 * Renews the heartbeat on a timer while work runs whose pace this process does not set
 * (a slow client's body, a long validation). `lost` turns true once a renewal finds the
 * upload failed: the work then stops at its next check.
 */
export function keepAlive(deps: Pick<AppDeps, "prisma" | "logger">, uploadId: string, staleMs: number) {
  const state = { lost: false };
  const timer = setInterval(
    () => {
      renew(deps.prisma, uploadId)
        .then((alive) => {
          if (!alive) state.lost = true;
        })
        // A missed beat is not fatal: the next one, or the per-chunk renewals, may succeed.
        .catch((err: unknown) => deps.logger.warn({ err, uploadId }, "upload heartbeat failed"));
    },
    Math.max(250, Math.floor(staleMs / 4)),
  );
  timer.unref();
  return {
    get lost() {
      return state.lost;
    },
    stop: () => clearInterval(timer),
  };
}

/**
 * Fails an upload and deletes what it stored. The claim (PROCESSING → FAILED, completedAt
 * still null) comes first, so the importing process, should it still be alive, stores
 * nothing more; completedAt is set once the events are gone, so a cleanup cut short is
 * finished by the next sweep. The events of an upload failed by someone else are deleted
 * too (an import that stalled past the bound may have stored a chunk after the sweep's
 * delete); a COMPLETED upload's never. Returns false when the upload was not PROCESSING.
 */
export async function failUpload(
  deps: Pick<AppDeps, "prisma" | "outbox">,
  uploadId: string,
  options: {
    where?: Prisma.UploadWhereInput;
    report?: { path: string; message: string }[];
    /** An import's subscribers hear it failed, in the claim's transaction. */
    notice?: { organizationId: string; userId: string | null };
  } = {},
): Promise<boolean> {
  const { where = {}, report, notice } = options;
  const claimed = await deps.outbox.transaction(async (tx, notify) => {
    const { count } = await tx.upload.updateMany({
      where: { ...where, id: uploadId, status: "PROCESSING" },
      data: {
        status: "FAILED",
        completedAt: null,
        ...(report ? { errorReport: { errors: report } as unknown as Prisma.InputJsonObject } : {}),
      },
    });
    if (count > 0 && notice) {
      notify("IMPORTS", notice.organizationId, {
        id: uploadId,
        kind: "UPDATED",
        data: { phase: "FAILED", processedLines: 0, totalLines: null, userId: notice.userId },
      });
    }
    return count > 0;
  });
  await deleteEventsOf(deps.prisma, uploadId);
  return claimed;
}

/** Deletes a failed upload's events a chunk at a time (PGlite: one connection, others run between), then closes it. */
async function deleteEventsOf(prisma: PrismaClient, uploadId: string) {
  for (;;) {
    const ids = await prisma.event.findMany({
      where: { uploadId, upload: { status: "FAILED" } },
      select: { id: true },
      take: EVENT_CHUNK,
    });
    if (!ids.length) break;
    await prisma.event.deleteMany({ where: { id: { in: ids.map((e) => e.id) } } });
    await setImmediate();
  }
  await prisma.upload.updateMany({
    where: { id: uploadId, status: "FAILED", completedAt: null },
    data: { completedAt: new Date() },
  });
}

/**
 * Fails every upload whose process stopped renewing it, and finishes cleanups cut short.
 * Run by the leader; safe on several instances at once (the claim is conditional, the
 * deletes are idempotent). Returns how many uploads it failed.
 */
export async function sweepInterrupted(deps: Pick<AppDeps, "prisma" | "outbox" | "logger">, staleMs: number) {
  const { prisma, logger } = deps;
  const cutoff = new Date(Date.now() - staleMs);
  let failed = 0;
  const stale = await prisma.upload.findMany({
    where: { status: "PROCESSING", heartbeatAt: { lt: cutoff } },
    select: { id: true, organizationId: true, userId: true },
    orderBy: { heartbeatAt: "asc" },
    take: 100,
  });
  for (const upload of stale) {
    const report = [{ path: "input.file", message: INTERRUPTED }];
    // The same bound again: a process that renewed since the read keeps its upload.
    const claimed = { where: { heartbeatAt: { lt: cutoff } }, report, notice: upload };
    if (!(await failUpload(deps, upload.id, claimed))) continue;
    failed++;
    logger.warn({ uploadId: upload.id }, "upload interrupted: failed, and its events deleted");
  }
  // Cleanups cut short (the process failing an upload died part-way): their beat is as old.
  const unfinished = await prisma.upload.findMany({
    where: { status: "FAILED", completedAt: null, heartbeatAt: { lt: cutoff } },
    select: { id: true },
    take: 100,
  });
  for (const upload of unfinished) await deleteEventsOf(prisma, upload.id);
  return failed;
}
