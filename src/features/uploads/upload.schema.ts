import { AppError } from "../../errors.ts";
import { builder } from "../../schema/builder.ts";
import { encodeId, optionalId } from "../../schema/globalId.ts";
import { noteAudit } from "../audit/audit.ts";
import { EventRef } from "../events/event.schema.ts";
import { visibleAnalytics } from "../events/visibility.ts";
import { liveEventType, liveRow, liveSubscription, subjectId } from "../live/live.schema.ts";
import { OrganizationRef, orgPermission } from "../organizations/organization.schema.ts";
import { UserRef } from "../users/user.schema.ts";
import { ImportRejectedError, importEvents, uploadFile } from "./upload.service.ts";

const UploadKindRef = builder.enumType("UploadKind", {
  values: { FILE: { description: "A file, recorded as a FILE_UPLOADED event." }, EVENT_IMPORT: {} } as const,
});
const UploadStatusRef = builder.enumType("UploadStatus", {
  values: ["PENDING", "PROCESSING", "COMPLETED", "FAILED"] as const,
});
const ImportFormatRef = builder.enumType("ImportFormat", {
  values: {
    CSV: { description: "A header row naming EventInput fields; inputs/outputs separated by ';', details as JSON." },
    JSONL: { description: "One EventInput as a JSON object per line." },
  } as const,
});

const LineError = builder.objectRef<{ path: string; message: string }>("ImportLineError").implement({
  fields: (t) => ({
    path: t.exposeString("path", { description: '"line 12.filePath", or "input.file" for the whole file.' }),
    message: t.exposeString("message"),
  }),
});

export const UploadRef = builder.prismaNode("Upload", {
  id: { field: "id" },
  select: { id: true },
  nullable: true,
  authScopes: { authenticated: true },
  findUnique: (id, ctx) => ({ id, ...visibleAnalytics(ctx) }),
  fields: (t) => ({
    kind: t.expose("kind", { type: UploadKindRef }),
    status: t.expose("status", { type: UploadStatusRef }),
    filename: t.exposeString("filename"),
    contentType: t.exposeString("contentType"),
    sizeBytes: t.expose("sizeBytes", { type: "SafeInt" }),
    sha256: t.exposeString("sha256"),
    totalLines: t.exposeInt("totalLines", { nullable: true }),
    importedCount: t.exposeInt("importedCount"),
    errorCount: t.exposeInt("errorCount", { description: "Bad lines; any makes the import fail whole." }),
    errors: t.field({
      type: [LineError],
      description: "The first 100 problems of a failed import.",
      select: { errorReport: true },
      resolve: (u) => (u.errorReport as { errors?: { path: string; message: string }[] } | null)?.errors ?? [],
    }),
    user: t.relation("user", { type: UserRef, nullable: true }),
    events: t.relatedConnection("events", { type: EventRef, cursor: "id", query: { orderBy: { id: "asc" } } }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    completedAt: t.expose("completedAt", { type: "DateTime", nullable: true }),
  }),
});

builder.prismaObjectField(OrganizationRef, "uploads", (t) =>
  t.relatedConnection("uploads", {
    type: UploadRef,
    cursor: "id",
    description: "Files and imports, newest first: yours, or everyone's for owners and admins.",
    authScopes: orgPermission("read"),
    query: (_args, ctx) => ({ where: visibleAnalytics(ctx), orderBy: [{ createdAt: "desc" }, { id: "desc" }] }),
  }),
);

const EventImportInput = builder.inputType("EventImportInput", {
  fields: (t) => ({
    organizationId: t.id({ required: false, description: "Defaults to the active organization." }),
    file: t.field({ type: "File", required: true }),
    format: t.field({ type: ImportFormatRef, required: false, description: "Defaults to the file's extension." }),
  }),
});
const FileUploadInput = builder.inputType("FileUploadInput", {
  fields: (t) => ({
    organizationId: t.id({ required: false, description: "Defaults to the active organization." }),
    file: t.field({ type: "File", required: true }),
  }),
});

const EventImportPayload = builder.objectRef<{ uploadId: string; duplicates: number }>("EventImportPayload").implement({
  fields: (t) => ({
    upload: t.prismaField({
      type: UploadRef,
      resolve: (query, p, _a, ctx) => ctx.prisma.upload.findUniqueOrThrow({ ...query, where: { id: p.uploadId } }),
    }),
    duplicates: t.exposeInt("duplicates", { description: "Events whose clientEventId was stored before: skipped." }),
  }),
});

builder.mutationFields((t) => ({
  eventImport: t.field({
    type: EventImportPayload,
    authScopes: { authenticated: true },
    description:
      "Imports events from a CSV or JSON-lines file (a multipart request). Every line is checked first: one bad line and nothing is imported; the error lists the bad lines (extensions.fieldErrors) and names the upload (extensions.uploadId), which keeps the report.",
    // Up to IMPORT_MAX_LINES lines, its progress on a subscription: no OPERATION_TIMEOUT_MS.
    extensions: { auditInput: false, operationDeadline: false },
    args: { input: t.arg({ type: EventImportInput, required: true }) },
    resolve: async (_root, { input }, ctx, info) => {
      try {
        const result = await importEvents({
          ctx,
          organizationId: optionalId(input.organizationId, "Organization"),
          file: input.file,
          format: input.format,
        });
        noteAudit(ctx, info, {
          organizationId: result.organizationId,
          resourceType: "Upload",
          resourceId: result.uploadId,
          details: { file: input.file.name },
        });
        return result;
      } catch (err) {
        if (!(err instanceof ImportRejectedError)) throw err;
        noteAudit(ctx, info, {
          organizationId: err.organizationId,
          resourceType: "Upload",
          resourceId: err.uploadId,
          details: { file: input.file.name },
        });
        throw new AppError(err.code, err.message, { ...err.details, uploadId: encodeId("Upload", err.uploadId) });
      }
    },
  }),
  fileUpload: t.prismaField({
    type: UploadRef,
    authScopes: { authenticated: true },
    description: "Stores a file (a multipart request) and records it as a FILE_UPLOADED event.",
    extensions: { auditInput: false },
    args: { input: t.arg({ type: FileUploadInput, required: true }) },
    resolve: async (query, _root, { input }, ctx, info) => {
      const upload = await uploadFile({
        ctx,
        organizationId: optionalId(input.organizationId, "Organization"),
        file: input.file,
      });
      noteAudit(ctx, info, {
        organizationId: upload.organizationId,
        resourceType: "Upload",
        resourceId: upload.id,
        details: { file: upload.filename },
      });
      return ctx.prisma.upload.findUniqueOrThrow({ ...query, where: { id: upload.id } });
    },
  }),
}));

const PHASES = ["VALIDATING", "IMPORTING", "COMPLETED", "FAILED"] as const;
type Phase = (typeof PHASES)[number];
const ImportPhaseRef = builder.enumType("ImportPhase", { values: PHASES });

const ImportProgressRef = liveEventType(
  "EventImportProgress",
  "Progress of an import while it runs: validation, then insertion, by line.",
);
builder.objectFields(ImportProgressRef, (t) => ({
  uploadId: t.id({ nullable: true, resolve: subjectId("Upload") }),
  upload: t.prismaField({
    type: UploadRef,
    description: "The upload as it is now.",
    nullable: true,
    resolve: (query, p, _a, ctx) =>
      liveRow(ctx, p, "Upload", query, (where) => ctx.prisma.upload.findFirst({ ...query, where })),
  }),
  phase: t.field({
    type: ImportPhaseRef,
    nullable: true,
    resolve: (p) => (p.data?.phase as Phase | undefined) ?? null,
  }),
  processedLines: t.int({ nullable: true, resolve: (p) => (p.data ? Number(p.data.processedLines) : null) }),
  totalLines: t.int({
    nullable: true,
    description: "Known once every line is validated.",
    resolve: (p) => (p.data?.totalLines == null ? null : Number(p.data.totalLines)),
  }),
}));

liveSubscription("eventImportProgress", {
  type: ImportProgressRef,
  description: "Progress of the imports you may see in an organization, while they run.",
  feed: "IMPORTS",
  permission: "read",
  perUser: true,
});
