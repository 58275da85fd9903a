// Files in: an import of events (CSV or JSON lines), all or nothing with a report of every
// bad line; or a plain file, stored and recorded as an event. Progress is published while
// an import runs, so a client can show it.
import path from "node:path";
import type { Context } from "../../context.ts";
import { ValidationError } from "../../errors.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { FileTooLargeError } from "../../infra/storage.ts";
import { isControl } from "../../text.ts";
import {
  type FieldError,
  type IngestTarget,
  ingestTarget,
  notifyRecorded,
  recordEvent,
  rowOf,
  validateEvent,
  validateEvents,
} from "../events/event.service.ts";
import type { EventDraft } from "../events/eventInput.ts";
import { type ImportFormat, readRecords, UnreadableFileError } from "./importLines.ts";

const PROGRESS_EVERY = 1000;
const INSERT_CHUNK = 1000;
const REPORTED_ERRORS = 100;

/** The format named, else the one the file name says. */
function formatOf(file: File, named: ImportFormat | null | undefined): ImportFormat {
  if (named) return named;
  const ext = path.extname(file.name).toLowerCase();
  if (ext === ".csv") return "CSV";
  if (ext === ".jsonl" || ext === ".ndjson") return "JSONL";
  throw new ValidationError(
    "Unsupported file type: send a .csv or .jsonl file, or name the format.",
    [{ path: "input.file", message: "must be a .csv, .jsonl or .ndjson file" }],
    "UNSUPPORTED_FILE_TYPE",
  );
}

/** A file name safe to show and to record: its last path segment, without control characters. */
function displayName(name: string) {
  const base = name.split(/[\\/]/).pop() ?? "";
  const clean = [...base]
    .filter((c) => !isControl(c))
    .join("")
    .trim()
    .slice(0, 255);
  return clean || "upload";
}

async function store(ctx: Context, target: IngestTarget, file: File, kind: "FILE" | "EVENT_IMPORT") {
  const max = ctx.config.uploads.maxBytes;
  if (file.size > max) throw tooLarge(max);
  const upload = await ctx.prisma.upload.create({
    data: {
      organizationId: target.organizationId,
      userId: target.userId,
      kind,
      status: "PROCESSING",
      filename: displayName(file.name),
      contentType: file.type || "application/octet-stream",
      sizeBytes: BigInt(file.size),
      sha256: "",
      storageKey: `${target.organizationId}/pending-${crypto.randomUUID()}`,
    },
  });
  const storageKey = `${target.organizationId}/${upload.id}`;
  try {
    // Web streams are async iterable (Yoga's ponyfill's and Node's alike).
    const stored = await ctx.storage.put(storageKey, file.stream() as unknown as AsyncIterable<Uint8Array>, max);
    return ctx.prisma.upload.update({
      where: { id: upload.id },
      data: { storageKey, sha256: stored.sha256, sizeBytes: BigInt(stored.sizeBytes) },
    });
  } catch (err) {
    await ctx.prisma.upload.update({ where: { id: upload.id }, data: { status: "FAILED", completedAt: new Date() } });
    throw err instanceof FileTooLargeError ? tooLarge(max) : err;
  }
}

function tooLarge(max: number) {
  return new ValidationError(
    `The file is over the ${max}-byte limit.`,
    [{ path: "input.file", message: `must be at most ${max} bytes` }],
    "PAYLOAD_TOO_LARGE",
  );
}

export async function uploadFile({
  ctx,
  organizationId,
  file,
}: {
  ctx: Context;
  organizationId?: string | null;
  file: File;
}) {
  const target = await ingestTarget(ctx, organizationId);
  const event = (uploadId: string, sha256: string) => ({
    kind: "FILE_UPLOADED",
    filePath: displayName(file.name),
    sizeBytes: file.size,
    details: { uploadId, contentType: file.type || "application/octet-stream", sha256 },
  });
  // Checked before anything is stored: a file whose event would be refused is not kept.
  validateEvent(target, event("", ""));
  const upload = await store(ctx, target, file, "FILE");
  return settle(ctx, upload.id, async () => {
    const draft = validateEvent(target, event(upload.id, upload.sha256));
    await recordEvent({ ctx, target, draft, uploadId: upload.id });
    return ctx.prisma.upload.update({
      where: { id: upload.id },
      data: { status: "COMPLETED", completedAt: new Date() },
    });
  });
}

/** Runs the rest of an upload's work; on any failure the upload is marked FAILED, never left PROCESSING. */
async function settle<T>(ctx: Context, uploadId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    await ctx.prisma.upload
      .updateMany({
        where: { id: uploadId, status: "PROCESSING" },
        data: { status: "FAILED", completedAt: new Date() },
      })
      .catch((e: unknown) => ctx.logger.error({ err: e, uploadId }, "could not mark the upload failed"));
    throw err;
  }
}

export async function importEvents({
  ctx,
  organizationId,
  file,
  format,
}: {
  ctx: Context;
  organizationId?: string | null;
  file: File;
  format?: ImportFormat | null;
}) {
  const target = await ingestTarget(ctx, organizationId);
  const kind = formatOf(file, format);
  const upload = await store(ctx, target, file, "EVENT_IMPORT");
  const progress = (phase: string, processedLines: number, totalLines: number | null) =>
    ctx.live.publish("IMPORTS", target.organizationId, {
      id: upload.id,
      kind: "UPDATED",
      data: { phase, processedLines, totalLines, userId: target.userId },
    });

  return settle(ctx, upload.id, async () => {
    try {
      return await importStored(ctx, target, upload, kind, progress);
    } catch (err) {
      if (!(err instanceof ImportRejectedError)) await progress("FAILED", 0, null);
      throw err;
    }
  });
}

async function importStored(
  ctx: Context,
  target: IngestTarget,
  upload: { id: string; storageKey: string },
  kind: ImportFormat,
  progress: (phase: string, processedLines: number, totalLines: number | null) => Promise<void>,
) {
  // Pass 1: every line validated before anything is stored.
  const drafts: EventDraft[] = [];
  const errors: FieldError[] = [];
  let errorCount = 0;
  let lines = 0;
  const seen = new Map<string, string>();
  const max = ctx.config.uploads.maxImportLines;
  try {
    for await (const record of readRecords(ctx.storage.read(upload.storageKey), kind)) {
      lines = record.line;
      if (drafts.length + errorCount >= max) {
        throw new UnreadableFileError(`The file has more than ${max} events; split it.`);
      }
      const problems: FieldError[] = [];
      if ("error" in record) problems.push({ path: `line ${record.line}`, message: record.error });
      else {
        const result = validateEvents([record.value], {
          oldest: target.oldest,
          pathOf: () => `line ${record.line}`,
          seen,
        });
        problems.push(...result.fieldErrors);
        drafts.push(...result.drafts);
      }
      if (problems.length) {
        errorCount++;
        if (errors.length < REPORTED_ERRORS) errors.push(...problems);
      }
      if ((drafts.length + errorCount) % PROGRESS_EVERY === 0) progress("VALIDATING", drafts.length + errorCount, null);
    }
    if (drafts.length + errorCount === 0) throw new UnreadableFileError("The file holds no events.");
  } catch (err) {
    if (!(err instanceof UnreadableFileError)) throw err;
    errors.push({ path: "input.file", message: err.message });
    errorCount++;
  }
  if (errorCount > 0) return failImport(ctx, upload.id, target, lines, errors, errorCount);

  // Pass 2: one transaction, so an import lands whole or not at all.
  const total = drafts.length;
  let stored = 0;
  await ctx.prisma.$transaction(
    async (tx) => {
      for (let i = 0; i < total; i += INSERT_CHUNK) {
        const { count } = await tx.event.createMany({
          data: drafts.slice(i, i + INSERT_CHUNK).map((d) => rowOf(target, d, upload.id)),
          skipDuplicates: true,
        });
        stored += count;
        progress("IMPORTING", Math.min(i + INSERT_CHUNK, total), total);
      }
      await tx.upload.update({
        where: { id: upload.id },
        data: { status: "COMPLETED", totalLines: lines, importedCount: stored, errorCount: 0, completedAt: new Date() },
      });
    },
    { timeout: 300_000, maxWait: 30_000 },
  );
  await progress("COMPLETED", total, total);
  if (stored > 0) await notifyRecorded(ctx, target, { count: stored });
  return { uploadId: upload.id, organizationId: target.organizationId, duplicates: total - stored };
}

async function failImport(
  ctx: Context,
  uploadId: string,
  { organizationId, userId }: { organizationId: string; userId: string },
  lines: number,
  errors: FieldError[],
  errorCount: number,
): Promise<never> {
  await ctx.prisma.upload.update({
    where: { id: uploadId },
    data: {
      status: "FAILED",
      totalLines: lines,
      errorCount,
      errorReport: { errors } as unknown as Prisma.InputJsonObject,
      completedAt: new Date(),
    },
  });
  await ctx.live.publish("IMPORTS", organizationId, {
    id: uploadId,
    kind: "UPDATED",
    data: { phase: "FAILED", processedLines: lines, totalLines: lines, userId },
  });
  const shown = errors
    .slice(0, 5)
    .map((e) => `${e.path}: ${e.message}`)
    .join("; ");
  throw new ImportRejectedError(
    `Nothing imported: ${errorCount} bad line(s). ${shown}${errors.length > 5 ? "; …" : ""}`,
    errors,
    uploadId,
    organizationId,
  );
}

/** Every bad line (up to 100) as a field error whose path names the line; the upload keeps the report. */
export class ImportRejectedError extends ValidationError {
  constructor(
    message: string,
    fieldErrors: FieldError[],
    readonly uploadId: string,
    readonly organizationId: string,
  ) {
    super(message, fieldErrors, "IMPORT_INVALID");
  }
}
