// How a batch of events is stored: one INSERT of every row, sent as one JSON parameter and
// unpacked by PostgreSQL. Prisma's createMany planned and expanded a 100-row insert in its
// query compiler on every batch (more than half the API's CPU under ingestion); a raw
// statement is one fixed text, prepared once per connection. Rows are validated before
// (eventInput.ts, validateEvents): nothing here is text PostgreSQL would refuse.
import type { Tx } from "../../infra/outbox.ts";
import { uuid7 } from "../../infra/uuid7.ts";
import type { EventDraft } from "./eventInput.ts";

/** Stores the drafts for `target`; a client id the same user sent before is skipped. Returns how many were stored. */
export function insertEvents(
  tx: Tx,
  target: { organizationId: string; userId: string },
  drafts: readonly EventDraft[],
  uploadId: string | null = null,
): Promise<number> {
  const rows = JSON.stringify(
    drafts.map((d) => ({
      id: uuid7(),
      client_event_id: d.clientEventId,
      event_type: d.eventType,
      file_path: d.filePath,
      file_extension: d.fileExtension,
      previous_path: d.previousPath,
      tool: d.tool,
      operation: d.operation,
      size_bytes: d.sizeBytes === null ? null : String(d.sizeBytes),
      interpreter: d.interpreter,
      input_paths: d.inputPaths,
      output_paths: d.outputPaths,
      details: d.details,
      occurred_at: d.occurredAt.toISOString(),
    })),
  );
  return tx.$executeRaw`
    INSERT INTO events (id, organization_id, user_id, upload_id, client_event_id, event_type, file_path,
      file_extension, previous_path, tool, operation, size_bytes, interpreter, input_paths, output_paths,
      details, occurred_at)
    SELECT r.id, ${target.organizationId}::uuid, ${target.userId}::uuid, ${uploadId}::uuid, r.client_event_id,
      r.event_type, r.file_path, r.file_extension, r.previous_path, r.tool, r.operation, r.size_bytes::bigint,
      r.interpreter, ARRAY(SELECT jsonb_array_elements_text(r.input_paths)),
      ARRAY(SELECT jsonb_array_elements_text(r.output_paths)), r.details, r.occurred_at::timestamptz
    FROM jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, client_event_id text, event_type text,
      file_path text, file_extension text, previous_path text, tool text, operation text, size_bytes text,
      interpreter text, input_paths jsonb, output_paths jsonb, details jsonb, occurred_at text)
    ON CONFLICT DO NOTHING`;
}
