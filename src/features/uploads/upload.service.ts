// Files in: an import of events (CSV or JSON lines), all or nothing with a report of every
// bad line; or a plain file, stored and recorded as an event. Progress is published while
// an import runs, so a client can show it. An upload's events are left out of analysis
// until it completes (see analysis.service.ts), and deleted if it fails, here or, when
// its process died, by the leader's sweep (liveness.ts).
import path from "node:path";
import { setImmediate } from "node:timers/promises";
import type { Context } from "../../context.ts";
import { ValidationError } from "../../errors.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import type { Notify, Tx } from "../../infra/outbox.ts";
import { FileTooLargeError } from "../../infra/storage.ts";
import { isControl } from "../../text.ts";
import {
  type FieldError,
  type IngestTarget,
  ingestTarget,
  noticeRecorded,
  recordEvent,
  validateEvent,
  validateEvents,
  wakeAnalysis,
} from "../events/event.service.ts";
import type { EventDraft } from "../events/eventInput.ts";
import { insertEvents } from "../events/eventInsert.ts";
import { type ImportFormat, readRecords, UnreadableFileError } from "./importLines.ts";
import { EVENT_CHUNK, failUpload, keepAlive, renew, UploadInterruptedError } from "./liveness.ts";

const PROGRESS_EVERY = 1000;
// Lines validated between two turns of the event loop.
const VALIDATE_CHUNK = 1000;
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

/** The upload's row, PROCESSING (and beating, see settle) until it completes or fails. */
async function begin(ctx: Context, target: IngestTarget, file: File, kind: "FILE" | "EVENT_IMPORT") {
  const max = ctx.config.uploads.maxBytes;
  if (file.size > max) throw tooLarge(max);
  return ctx.prisma.upload.create({
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
}

/** Streams the file into storage, under the upload's id. */
async function store(ctx: Context, upload: { id: string; organizationId: string }, file: File) {
  const max = ctx.config.uploads.maxBytes;
  const storageKey = `${upload.organizationId}/${upload.id}`;
  let stored: Awaited<ReturnType<typeof ctx.storage.put>>;
  try {
    // Web streams are async iterable (Yoga's ponyfill's and Node's alike).
    stored = await ctx.storage.put(storageKey, file.stream() as unknown as AsyncIterable<Uint8Array>, max);
  } catch (err) {
    throw err instanceof FileTooLargeError ? tooLarge(max) : err;
  }
  await whileProcessing(ctx.prisma, upload.id, {
    storageKey,
    sha256: stored.sha256,
    sizeBytes: BigInt(stored.sizeBytes),
  });
  return { id: upload.id, organizationId: upload.organizationId, storageKey, sha256: stored.sha256 };
}

/** Updates an upload still PROCESSING; one a sweep has failed meanwhile is interrupted. */
async function whileProcessing(db: Tx, uploadId: string, data: Prisma.UploadUpdateManyMutationInput) {
  const { count } = await db.upload.updateMany({
    where: { id: uploadId, status: "PROCESSING" },
    data: { ...data, heartbeatAt: new Date() },
  });
  if (count === 0) throw new UploadInterruptedError();
}

/**
 * Marks the upload COMPLETED, which makes its events analysable, with what its subscribers
 * hear of it in the same transaction; the pipeline is woken for its events after the commit.
 */
async function complete(
  ctx: Context,
  upload: { id: string; organizationId: string },
  data: Prisma.UploadUpdateManyMutationInput = {},
  announce: (notify: Notify) => void = () => {},
) {
  await ctx.outbox.transaction(async (tx, notify) => {
    await whileProcessing(tx, upload.id, { ...data, status: "COMPLETED", completedAt: new Date() });
    announce(notify);
  });
  wakeAnalysis(ctx, upload.organizationId);
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
  const upload = await begin(ctx, target, file, "FILE");
  return settle(ctx, upload, async () => {
    const stored = await store(ctx, upload, file);
    const draft = validateEvent(target, event(upload.id, stored.sha256));
    await recordEvent({ ctx, target, draft, uploadId: upload.id });
    await complete(ctx, upload);
    return ctx.prisma.upload.findUniqueOrThrow({ where: { id: upload.id } });
  });
}

type Liveness = { readonly lost: boolean };
type ImportNotice = { id: string; kind: "UPDATED"; data: Record<string, string | number | null> };

/**
 * Runs the rest of an upload's work with its heartbeat renewed meanwhile. On any failure
 * the upload is marked FAILED and what it stored deleted; should this process die first,
 * its beat stops and the leader's sweep does the same.
 */
async function settle<T>(
  ctx: Context,
  upload: { id: string; organizationId: string; userId: string | null; kind: string },
  work: (alive: Liveness) => Promise<T>,
): Promise<T> {
  const uploadId = upload.id;
  const beat = keepAlive(ctx, uploadId, ctx.config.uploads.staleMs);
  try {
    return await work(beat);
  } catch (err) {
    const notice = upload.kind === "EVENT_IMPORT" ? upload : undefined;
    await failUpload(ctx, uploadId, { notice }).catch((e: unknown) =>
      ctx.logger.error({ err: e, uploadId }, "could not fail the upload; the sweep will once its beat is stale"),
    );
    throw err;
  } finally {
    beat.stop();
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
  const upload = await begin(ctx, target, file, "EVENT_IMPORT");
  // What is not stored anywhere (how far validation got) is announced on its own; a notice
  // that cannot be stored (the database away) is left out: the import's outcome is not.
  const progress = (phase: string, processedLines: number, totalLines: number | null) =>
    ctx.outbox
      .transaction(async (_tx, notify) =>
        notify("IMPORTS", target.organizationId, progressOf(phase, processedLines, totalLines)),
      )
      .catch((err: unknown) => ctx.logger.warn({ err, uploadId: upload.id }, "import progress not announced"));
  const progressOf = (phase: string, processedLines: number, totalLines: number | null) => ({
    id: upload.id,
    kind: "UPDATED" as const,
    data: { phase, processedLines, totalLines, userId: target.userId },
  });

  return settle(ctx, upload, async (alive) =>
    importStored(ctx, target, await store(ctx, upload, file), kind, { progress, progressOf }, alive),
  );
}

async function importStored(
  ctx: Context,
  target: IngestTarget,
  upload: { id: string; organizationId: string; storageKey: string },
  kind: ImportFormat,
  announce: {
    progress: (phase: string, processedLines: number, totalLines: number | null) => Promise<void>;
    progressOf: (phase: string, processedLines: number, totalLines: number | null) => ImportNotice;
  },
  alive: Liveness,
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
      const processed = drafts.length + errorCount;
      // Awaited: notices in separate transactions must commit in order, or progress goes backwards.
      if (processed % PROGRESS_EVERY === 0) await announce.progress("VALIDATING", processed, null);
      // Reading a buffered file settles promise after promise without ever letting timers or sockets run.
      if (processed % VALIDATE_CHUNK === 0) {
        await setImmediate();
        if (alive.lost) throw new UploadInterruptedError();
      }
    }
    if (drafts.length + errorCount === 0) throw new UnreadableFileError("The file holds no events.");
  } catch (err) {
    if (!(err instanceof UnreadableFileError)) throw err;
    errors.push({ path: "input.file", message: err.message });
    errorCount++;
  }
  if (errorCount > 0) return failImport(ctx, upload.id, target, lines, errors, errorCount);

  // Pass 2: stored in chunks, each its own short statement. One transaction for the whole
  // file would hold the database for its length: PGlite has one connection, so every other
  // request's query waited behind it (100,000 lines: over a minute), and its promise chain
  // never let timers run (the scheduler lost its lease). Between chunks, other requests run.
  // All or nothing still holds: nothing is stored before every line passed, the pipeline
  // leaves the events alone until the upload is COMPLETED, and a failure part-way (or a
  // process killed part-way, through the sweep) deletes what this import stored.
  const total = drafts.length;
  let stored = 0;
  for (let i = 0; i < total; i += EVENT_CHUNK) {
    // Before each chunk: once a sweep has failed this upload (it stalled past the bound), nothing more is stored.
    if (!(await renew(ctx.prisma, upload.id))) throw new UploadInterruptedError();
    const done = Math.min(i + EVENT_CHUNK, total);
    stored += await ctx.outbox.transaction(async (tx, notify) => {
      const count = await insertEvents(tx, target, drafts.slice(i, i + EVENT_CHUNK), upload.id);
      if (done % PROGRESS_EVERY === 0 || done === total)
        notify("IMPORTS", target.organizationId, announce.progressOf("IMPORTING", done, total));
      return count;
    });
    await setImmediate();
  }
  await complete(ctx, upload, { totalLines: lines, importedCount: stored, errorCount: 0 }, (notify) => {
    notify("IMPORTS", target.organizationId, announce.progressOf("COMPLETED", total, total));
    if (stored > 0) noticeRecorded(notify, target, { count: stored });
  });
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
  await ctx.outbox.transaction(async (tx, notify) => {
    await tx.upload.update({
      where: { id: uploadId },
      data: {
        status: "FAILED",
        totalLines: lines,
        errorCount,
        errorReport: { errors } as unknown as Prisma.InputJsonObject,
        completedAt: new Date(),
      },
    });
    notify("IMPORTS", organizationId, {
      id: uploadId,
      kind: "UPDATED",
      data: { phase: "FAILED", processedLines: lines, totalLines: lines, userId },
    });
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
