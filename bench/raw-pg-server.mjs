// The floor: what the benchmark's reads and ingestion cost with no GraphQL layer at all. A
// node:http server on `pg` (the API's driver) that answers each workload with one named
// (prepared) statement, the JSON built by PostgreSQL with json_agg, and a multi-row INSERT for
// ingestion. Reads DATABASE_URL, PORT (0 = any free port) and PG_POOL_SIZE (default 10, the
// API's DATABASE_POOL_SIZE default). Prints one line "listening <url>" when ready.
//
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/floyo_bench PORT=5679 node raw-pg-server.mjs
//
// POST /nested {"userId"}: the user's memberships with their organization's name and slug
//   (created_at order, like the API).
// POST /deep {"organizationId"}: the organization's first 20 workflows (most recently changed
//   first) with the first 5 executions of each (newest first), like the API's connections.
// POST /ingest {"userId", "input": {"organizationId", "events": [...]}}: the events, as the
//   API's EventInput, inserted in one INSERT ... VALUES (...), (...) ON CONFLICT DO NOTHING into
//   the columns the API writes; answers {"data":{"received":n,"stored":m}}. It handles the kinds
//   the benchmark sends (no SCRIPT_RUN interpreter inference, no CUSTOM types) and validates
//   nothing beyond that: no authentication, no authorization, no audit entry, no live notice.
//   The organization id may be a uuid or the API's global id (base64 of "Organization:<uuid>").
// Like PostGraphile in the benchmark, it checks no credentials: ids come in the body.
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import pg from "pg";

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("DATABASE_URL is not set");
  process.exit(1);
}
const port = Number(process.env.PORT ?? 0);
const pool = new pg.Pool({ connectionString, max: Number(process.env.PG_POOL_SIZE ?? 10) });

const NESTED = {
  name: "bench_nested",
  text: `SELECT json_build_object('data', json_build_object('memberships',
           COALESCE(json_agg(json_build_object('role', m.role,
             'organization', json_build_object('name', o.name, 'slug', o.slug)) ORDER BY m.created_at, m.id), '[]'::json)))::text AS body
         FROM organization_members m JOIN organizations o ON o.id = m.organization_id
         WHERE m.user_id = $1`,
};

const DEEP = {
  name: "bench_deep",
  text: `SELECT json_build_object('data', json_build_object('organization', json_build_object(
           'rowId', o.id,
           'workflows', COALESCE((
             SELECT json_agg(json_build_object(
                      'rowId', w.id, 'name', w.name, 'status', w.status, 'updatedAt', w.updated_at,
                      'executions', COALESCE((
                        SELECT json_agg(json_build_object('rowId', e.id, 'status', e.status, 'trigger', e.trigger,
                                          'queuedAt', e.queued_at, 'finishedAt', e.finished_at)
                                        ORDER BY e.queued_at DESC, e.id DESC)
                        FROM (SELECT id, status, trigger, queued_at, finished_at FROM workflow_executions
                              WHERE workflow_id = w.id ORDER BY queued_at DESC, id DESC LIMIT 5) e), '[]'::json))
                    ORDER BY w.updated_at DESC, w.id DESC)
             FROM (SELECT id, name, status, updated_at FROM workflows
                   WHERE organization_id = o.id ORDER BY updated_at DESC, id DESC LIMIT 20) w), '[]'::json))))::text AS body
         FROM organizations o WHERE o.id = $1`,
};

// The columns the API writes for an event (src/features/events: rowOf + toDraft); received_at,
// analyzed_at and upload_id are left to their defaults (now(), null, null) as the API does.
const COLUMNS = [
  "id",
  "organization_id",
  "user_id",
  "client_event_id",
  "event_type",
  "file_path",
  "file_extension",
  "previous_path",
  "tool",
  "operation",
  "size_bytes",
  "interpreter",
  "input_paths",
  "output_paths",
  "details",
  "occurred_at",
];
const insertStatements = new Map();
function insertStatement(rows) {
  let statement = insertStatements.get(rows);
  if (!statement) {
    const values = [];
    for (let r = 0; r < rows; r++) {
      values.push(`(${COLUMNS.map((_, c) => `$${r * COLUMNS.length + c + 1}`).join(", ")})`);
    }
    statement = {
      name: `bench_ingest_${rows}`,
      text: `INSERT INTO events (${COLUMNS.join(", ")}) VALUES ${values.join(", ")} ON CONFLICT DO NOTHING`,
    };
    insertStatements.set(rows, statement);
  }
  return statement;
}

/** A version 7 uuid (time-ordered), as Prisma's @default(uuid(7)) makes for the API. */
function uuid7() {
  const b = randomBytes(16);
  const ms = Date.now();
  b.writeUIntBE(ms, 0, 6);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The API's extensionOf: ".py" from "/a/b/run.PY"; null for none. */
function extensionOf(filePath) {
  const name = filePath.slice(Math.max(filePath.lastIndexOf("/"), filePath.lastIndexOf("\\")) + 1);
  const dot = name.lastIndexOf(".");
  if (dot <= 0 || dot === name.length - 1) return null;
  const ext = name.slice(dot).toLowerCase();
  return /^\.[a-z0-9_+-]{1,15}$/.test(ext) ? ext : null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
function organizationIdOf(id) {
  if (typeof id !== "string") throw new Error("organizationId is required");
  if (UUID.test(id)) return id;
  const decoded = Buffer.from(id, "base64").toString("utf8");
  const uuid = decoded.slice(decoded.indexOf(":") + 1);
  if (!UUID.test(uuid)) throw new Error("organizationId is not an id");
  return uuid;
}

async function ingest(body) {
  const events = body?.input?.events;
  if (!Array.isArray(events) || events.length === 0 || events.length > 1000) throw new Error("1 to 1000 events");
  const organizationId = organizationIdOf(body.input.organizationId);
  const userId = body.userId;
  const now = new Date();
  const values = [];
  for (const e of events) {
    const filePath = e.filePath ?? null;
    values.push(
      uuid7(),
      organizationId,
      userId,
      e.clientEventId ?? null,
      String(e.kind).toLowerCase(),
      filePath,
      filePath ? extensionOf(filePath) : null,
      e.previousPath ?? null,
      e.tool ? String(e.tool).toLowerCase() : null,
      e.operation || null,
      e.sizeBytes ?? null,
      null,
      e.inputs ?? [],
      e.outputs ?? [],
      JSON.stringify(e.details ?? {}),
      e.occurredAt ? new Date(e.occurredAt) : now,
    );
  }
  const result = await pool.query({ ...insertStatement(events.length), values });
  return `{"data":{"received":${events.length},"stored":${result.rowCount}}}`;
}

async function handle(url, body) {
  switch (url) {
    case "/nested":
      return (await pool.query({ ...NESTED, values: [body.userId] })).rows[0].body;
    case "/deep":
      return (await pool.query({ ...DEEP, values: [organizationIdOf(body.organizationId)] })).rows[0]?.body ?? null;
    case "/ingest":
      return ingest(body);
    default:
      return undefined;
  }
}

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
    } catch {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid JSON"}');
      return;
    }
    handle(req.url, body).then(
      (json) => {
        if (json === undefined) {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":"POST /nested, /deep or /ingest"}');
        } else if (json === null) {
          res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not found"}');
        } else {
          res.writeHead(200, { "content-type": "application/json" }).end(json);
        }
      },
      (err) => {
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: err.message }));
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.once("error", (err) => {
  console.error(err);
  process.exit(1);
});
// One connection first: "listening" means the database answers.
await pool.query("SELECT 1");
server.listen(port, "127.0.0.1", () => {
  console.log(`listening http://127.0.0.1:${server.address().port}`);
});

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections?.();
    server.close();
    pool.end().finally(() => process.exit(0));
  });
}
