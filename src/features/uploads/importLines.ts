// Reads an import file as a stream of records, one at a time: JSON lines, or CSV (RFC 4180:
// a header row, quoted fields with "" escapes and line breaks inside quotes). Each record
// carries its line number, so a report can point at the line to fix.
import type { Readable } from "node:stream";
import { EXPORT_ONLY_FIELDS, INPUT_FIELDS } from "../events/eventInput.ts";

export type ImportFormat = "CSV" | "JSONL";

export type ImportRecord = { line: number; value: Record<string, unknown> } | { line: number; error: string };

export class UnreadableFileError extends Error {}

const COLUMNS = new Set<string>(INPUT_FIELDS);

const IGNORED = new Set<string>(EXPORT_ONLY_FIELDS);

/** Text chunks of a UTF-8 stream; a byte sequence that is not UTF-8, or a NUL, makes it unreadable. */
async function* text(stream: Readable): AsyncGenerator<string> {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  try {
    for await (const chunk of stream) {
      const s = decoder.decode(chunk as Buffer, { stream: true });
      if (s.includes("\u0000")) throw new UnreadableFileError("The file is binary, not text.");
      yield s;
    }
    yield decoder.decode();
  } catch (err) {
    if (err instanceof UnreadableFileError) throw err;
    if (err instanceof TypeError) throw new UnreadableFileError("The file is not UTF-8 text.");
    throw err;
  }
}

export function readRecords(stream: Readable, format: ImportFormat): AsyncGenerator<ImportRecord> {
  return format === "CSV" ? csvRecords(stream) : jsonLines(stream);
}

async function* jsonLines(stream: Readable): AsyncGenerator<ImportRecord> {
  let rest = "";
  let line = 0;
  const parse = (raw: string): ImportRecord | null => {
    line++;
    const trimmed = raw.trim();
    if (!trimmed) return null;
    try {
      const value: unknown = JSON.parse(trimmed);
      if (value && typeof value === "object" && !Array.isArray(value))
        return { line, value: value as Record<string, unknown> };
      return { line, error: "is not a JSON object" };
    } catch {
      return { line, error: "is not valid JSON" };
    }
  };
  for await (const chunk of text(stream)) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop() ?? "";
    for (const raw of parts) {
      const record = parse(raw);
      if (record) yield record;
    }
  }
  const last = parse(rest);
  if (last) yield last;
}

/** CSV cells to an event input: typed columns converted, empty cells left out. */
function toInput(header: string[], cells: string[]): Record<string, unknown> | string {
  if (cells.length !== header.length) return `has ${cells.length} fields; the header has ${header.length}`;
  const value: Record<string, unknown> = {};
  for (let i = 0; i < header.length; i++) {
    const column = header[i] as string;
    const raw = cells[i] as string;
    if (raw === "" || IGNORED.has(column)) continue;
    // An export keeps formula-like cells as text with a leading quote: read them back without it.
    const cell = /^'[=+\-@\t\r]/.test(raw) ? raw.slice(1) : raw;
    if (column === "sizeBytes") value[column] = /^\d+$/.test(cell) ? Number(cell) : cell;
    else if (column === "inputs" || column === "outputs") value[column] = cell.split(";").map((p) => p.trim());
    else if (column === "details") {
      try {
        value[column] = JSON.parse(cell);
      } catch {
        return "details: is not valid JSON";
      }
    } else value[column] = cell;
  }
  return value;
}

async function* csvRecords(stream: Readable): AsyncGenerator<ImportRecord> {
  let header: string[] | null = null;
  for await (const { line, cells } of csvRows(stream)) {
    if (!header) {
      header = cells.map((c) => c.trim());
      const unknown = header.filter((c) => !COLUMNS.has(c) && !IGNORED.has(c));
      if (unknown.length)
        throw new UnreadableFileError(
          `Unknown CSV column(s): ${unknown.join(", ")}. Columns: ${[...COLUMNS].join(", ")}.`,
        );
      if (!header.includes("kind")) throw new UnreadableFileError('The CSV header needs a "kind" column.');
      continue;
    }
    if (cells.length === 1 && cells[0] === "") continue;
    const value = toInput(header, cells);
    yield typeof value === "string" ? { line, error: value } : { line, value };
  }
  if (!header) throw new UnreadableFileError("The CSV file is empty: it needs a header row.");
}

/** RFC 4180 rows with the line each starts on. */
async function* csvRows(stream: Readable): AsyncGenerator<{ line: number; cells: string[] }> {
  let cells: string[] = [];
  let cell = "";
  let quoted = false;
  let afterQuote = false;
  let line = 1;
  let rowLine = 1;
  let pendingCR = false;
  for await (const chunk of text(stream)) {
    for (const ch of chunk) {
      if (pendingCR) {
        pendingCR = false;
        if (ch === "\n") continue;
      }
      if (quoted) {
        if (ch === '"') {
          quoted = false;
          afterQuote = true;
        } else {
          if (ch === "\n") line++;
          cell += ch;
        }
        continue;
      }
      if (ch === '"') {
        // "" inside a quoted cell is one quote; a quote opening a cell starts quoting.
        if (afterQuote) cell += '"';
        quoted = true;
        afterQuote = false;
      } else if (ch === ",") {
        cells.push(cell);
        cell = "";
        afterQuote = false;
      } else if (ch === "\n" || ch === "\r") {
        cells.push(cell);
        yield { line: rowLine, cells };
        cells = [];
        cell = "";
        afterQuote = false;
        line++;
        rowLine = line;
        pendingCR = ch === "\r";
      } else {
        cell += ch;
        afterQuote = false;
      }
    }
  }
  if (quoted) throw new UnreadableFileError(`Line ${rowLine}: a quoted field is never closed.`);
  if (cell !== "" || cells.length) {
    cells.push(cell);
    yield { line: rowLine, cells };
  }
}
