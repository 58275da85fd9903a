// Events or patterns as CSV or JSON, streamed page by page to the response: a large export
// never sits in memory. The CSV columns of events are the ones an import reads, so an
// export can be imported elsewhere as it is.
import type { Context } from "../../context.ts";
import { ValidationError } from "../../errors.ts";
import type { Prisma } from "../../generated/prisma/client.ts";
import { encodeId } from "../../schema/globalId.ts";
import { authorize } from "../auth/access.ts";
import { eventWhere } from "./eventFilter.ts";
import { EXPORT_ONLY_FIELDS, INPUT_FIELDS, kindOf } from "./eventInput.ts";
import { visibleAnalytics } from "./visibility.ts";

export type ExportFormat = "CSV" | "JSON";
export type ExportDataset = "EVENTS" | "PATTERNS";

export interface ExportParams {
  organizationId: string;
  dataset: ExportDataset;
  format: ExportFormat;
  filter?: Record<string, unknown> | null;
}

const PAGE = 1000;

type Row = Record<string, string | number | null | string[] | Record<string, unknown>>;

function eventRow(e: Prisma.EventGetPayload<object>): Row {
  const kind = kindOf(e.eventType);
  return {
    id: encodeId("Event", e.id),
    clientEventId: e.clientEventId,
    kind,
    customType: kind === "CUSTOM" ? e.eventType.slice("custom:".length) : null,
    filePath: e.filePath,
    fileExtension: e.fileExtension,
    previousPath: e.previousPath,
    tool: e.tool,
    operation: e.operation,
    sizeBytes: e.sizeBytes === null ? null : Number(e.sizeBytes),
    interpreter: e.interpreter,
    inputs: e.inputPaths,
    outputs: e.outputPaths,
    details: e.details as Record<string, unknown>,
    occurredAt: e.occurredAt.toISOString(),
    receivedAt: e.receivedAt.toISOString(),
    userId: e.userId && encodeId("User", e.userId),
  };
}

function patternRow(p: Prisma.PatternGetPayload<object>): Row {
  return {
    id: encodeId("Pattern", p.id),
    fileExtension: p.fileExtension,
    count: p.count,
    lastUsedAt: p.lastUsedAt.toISOString(),
    tools: p.tools,
    recentPaths: p.recentPaths,
    userId: encodeId("User", p.userId),
  };
}

function csvCell(value: Row[string]): string {
  if (value === null) return "";
  const text = Array.isArray(value)
    ? value.join(";")
    : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
  // A cell a spreadsheet would run as a formula is kept as text ('=…); an import reads it back.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]|^\s|\s$/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Pages through the rows by id. */
async function* pages(ctx: Context, params: ExportParams): AsyncGenerator<Row[]> {
  let cursor: string | undefined;
  for (;;) {
    const page =
      params.dataset === "EVENTS"
        ? (
            await ctx.prisma.event.findMany({
              where: {
                AND: [{ organizationId: params.organizationId }, visibleAnalytics(ctx), eventWhere(params.filter)],
              },
              orderBy: { id: "asc" },
              take: PAGE,
              ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
            })
          ).map((e) => ({ key: e.id, row: eventRow(e) }))
        : (
            await ctx.prisma.pattern.findMany({
              where: { AND: [{ organizationId: params.organizationId }, visibleAnalytics(ctx)] },
              orderBy: { id: "asc" },
              take: PAGE,
              ...(cursor ? { cursor: { id: cursor }, skip: 1 } : {}),
            })
          ).map((p) => ({ key: p.id, row: patternRow(p) }));
    if (page.length === 0) return;
    yield page.map((p) => p.row);
    cursor = page.at(-1)?.key;
    if (page.length < PAGE) return;
  }
}

/** Allowed, and a filter that will run: checked when the link is made and again when it is used. */
export async function checkExport(ctx: Context, params: ExportParams) {
  await authorize(ctx, params.organizationId, "read");
  eventWhere(params.filter);
}

// A Map: the dataset arrives in a link's params, and a name like "constructor" must find nothing.
const COLUMNS = new Map<ExportDataset, string[]>([
  ["EVENTS", [...EXPORT_ONLY_FIELDS, ...INPUT_FIELDS]],
  ["PATTERNS", ["id", "fileExtension", "count", "lastUsedAt", "tools", "recentPaths", "userId"]],
]);

/** The file, as text chunks: a page of rows each, so a large export never sits in memory. */
export async function* exportChunks(ctx: Context, params: ExportParams): AsyncGenerator<string> {
  const columns = COLUMNS.get(params.dataset);
  if (!columns) throw new ValidationError("Unknown dataset.", [{ path: "dataset", message: "is not a dataset" }]);
  let first = true;
  yield params.format === "JSON" ? "[" : `${columns.join(",")}\r\n`;
  for await (const rows of pages(ctx, params)) {
    if (params.format === "CSV") {
      yield rows.map((r) => `${columns.map((c) => csvCell(r[c] ?? null)).join(",")}\r\n`).join("");
    } else {
      yield `${first ? "" : ","}\n${rows.map((r) => JSON.stringify(r)).join(",\n")}`;
    }
    first = false;
  }
  if (params.format === "JSON") yield "\n]\n";
}
