// What an event is, as the local agent, a batch, or an import line sends it: one zod schema
// for all three, so a line of a CSV file is held to exactly the rules of a recorded event.
import { z } from "zod";
import { hasControl, MAX_JSON_DEPTH, unstorableJson } from "../../text.ts";

export const EVENT_KINDS = [
  "FILE_CREATED",
  "FILE_MODIFIED",
  "FILE_DELETED",
  "FILE_MOVED",
  "FILE_OPENED",
  "SCRIPT_RUN",
  "TOOL_USED",
  "FILE_UPLOADED",
  "CUSTOM",
] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

/** The reference's interpreters by script extension; a script run may name another. */
export const INTERPRETERS: Record<string, string> = {
  ".py": "python",
  ".sh": "bash",
  ".js": "node",
  ".mjs": "node",
  ".ts": "node",
  ".rb": "ruby",
  ".pl": "perl",
  ".ps1": "powershell",
  ".vba": "vba",
  ".sql": "sql",
  ".r": "r",
};

/** An event's fields as a CSV header names them: what an import reads. */
export const INPUT_FIELDS = [
  "clientEventId",
  "kind",
  "customType",
  "filePath",
  "previousPath",
  "tool",
  "operation",
  "sizeBytes",
  "interpreter",
  "inputs",
  "outputs",
  "details",
  "occurredAt",
] as const;

/** What an export adds, and an import reads past: an export imports as it is. */
export const EXPORT_ONLY_FIELDS = ["id", "fileExtension", "receivedAt", "userId"] as const;

export const MAX_BATCH = 1000;
const MAX_DETAILS_BYTES = 8 * 1024;
const MAX_FUTURE_MS = 5 * 60_000;
const EARLIEST = new Date("2000-01-01T00:00:00Z");

// Paths come from any OS: no control characters (they break logs and CSV), and at most 1024
// bytes, not characters: two paths must fit one index row of file_relationships.
const path = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .refine((p) => Buffer.byteLength(p) <= 1024, "must be at most 1024 bytes (UTF-8)")
  .refine((p) => !hasControl(p), "must not contain control characters");
const tool = z
  .string()
  .trim()
  .regex(/^[\p{L}\p{N}][\p{L}\p{N} ._+#/-]{0,63}$/u, "must be 1-64 letters, digits, spaces or ._+#/-")
  .transform((t) => t.toLowerCase());

export const eventInput = z
  .object({
    clientEventId: z
      .string()
      .regex(/^[\w.:-]{1,128}$/, "must be 1-128 letters, digits or _.:-")
      .nullish(),
    kind: z.enum(EVENT_KINDS),
    customType: z
      .string()
      .regex(/^[a-z][a-z0-9_.-]{0,63}$/, "must be 1-64 lowercase letters, digits or _.- starting with a letter")
      .nullish(),
    filePath: path.nullish(),
    previousPath: path.nullish(),
    tool: tool.nullish(),
    operation: z
      .string()
      .trim()
      .max(256, "must be at most 256 characters")
      .refine((o) => !hasControl(o), "must not contain control characters")
      .nullish(),
    sizeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
    interpreter: tool.nullish(),
    inputs: z.array(path).max(50, "at most 50 paths").nullish(),
    outputs: z.array(path).max(50, "at most 50 paths").nullish(),
    details: z
      .record(z.string(), z.unknown())
      .refine(
        (d) => JSON.stringify(d).length <= MAX_DETAILS_BYTES,
        `must be at most ${MAX_DETAILS_BYTES} bytes as JSON`,
      )
      .refine(
        (d) => !unstorableJson(d),
        `must be nested at most ${MAX_JSON_DEPTH} levels, without NUL characters or lone surrogates`,
      )
      .nullish(),
    occurredAt: z.coerce
      .date()
      .refine((d) => d >= EARLIEST, "must be after 2000-01-01")
      .refine((d) => d.getTime() <= Date.now() + MAX_FUTURE_MS, "must not be in the future")
      .nullish(),
  })
  .superRefine((e, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    const needsPath = e.kind.startsWith("FILE_") || e.kind === "SCRIPT_RUN";
    if (needsPath && !e.filePath) issue("filePath", `is required for ${e.kind}`);
    if (e.kind === "TOOL_USED" && !e.tool) issue("tool", "is required for TOOL_USED");
    if (e.kind === "CUSTOM" && !e.customType) issue("customType", "is required for CUSTOM");
    if (e.kind !== "CUSTOM" && e.customType) issue("customType", "is only for CUSTOM events");
    if (e.kind === "FILE_MOVED" && !e.previousPath) issue("previousPath", "is required for FILE_MOVED");
    if (e.kind !== "FILE_MOVED" && e.previousPath) issue("previousPath", "is only for FILE_MOVED events");
    if (e.kind !== "SCRIPT_RUN") {
      for (const key of ["interpreter", "inputs", "outputs"] as const)
        if (e[key]) issue(key, "is only for SCRIPT_RUN events");
    } else if (!e.interpreter && e.filePath && !INTERPRETERS[extensionOf(e.filePath) ?? ""]) {
      issue("interpreter", "is required: the script's extension does not name one");
    }
  });

export type EventInput = z.input<typeof eventInput>;

/** A validated event, ready to store. */
export interface EventDraft {
  clientEventId: string | null;
  eventType: string;
  filePath: string | null;
  fileExtension: string | null;
  previousPath: string | null;
  tool: string | null;
  operation: string | null;
  sizeBytes: bigint | null;
  interpreter: string | null;
  inputPaths: string[];
  outputPaths: string[];
  details: Record<string, unknown>;
  occurredAt: Date;
}

/** "file_created", or "custom:<name>" for custom kinds: the names temporal sequences use. */
export function eventTypeOf(kind: EventKind, customType?: string | null): string {
  return kind === "CUSTOM" ? `custom:${customType}` : kind.toLowerCase();
}

export function kindOf(eventType: string): EventKind {
  return eventType.startsWith("custom:") ? "CUSTOM" : (eventType.toUpperCase() as EventKind);
}

/** ".py" from "/a/b/run.PY"; null for no extension, dotfiles, or anything not a plain suffix. */
export function extensionOf(filePath: string): string | null {
  const name = filePath.slice(Math.max(filePath.lastIndexOf("/"), filePath.lastIndexOf("\\")) + 1);
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return null;
  const ext = name.slice(dot).toLowerCase();
  return /^\.[a-z0-9_+-]{1,15}$/.test(ext) ? ext : null;
}

export function toDraft(e: z.output<typeof eventInput>, now: Date): EventDraft {
  const ext = e.filePath ? extensionOf(e.filePath) : null;
  const interpreter = e.kind === "SCRIPT_RUN" ? (e.interpreter ?? INTERPRETERS[ext ?? ""] ?? null) : null;
  return {
    clientEventId: e.clientEventId ?? null,
    eventType: eventTypeOf(e.kind, e.customType),
    filePath: e.filePath ?? null,
    fileExtension: ext,
    previousPath: e.previousPath ?? null,
    // A script run is its interpreter's use, unless the agent says which tool ran it.
    tool: e.tool ?? interpreter,
    operation: e.operation || null,
    sizeBytes: e.sizeBytes == null ? null : BigInt(e.sizeBytes),
    interpreter,
    inputPaths: e.inputs ?? [],
    outputPaths: e.outputs ?? [],
    details: e.details ?? {},
    occurredAt: e.occurredAt ?? now,
  };
}
