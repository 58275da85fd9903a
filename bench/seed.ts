// Creates the benchmark database from scratch: drops and re-creates it, applies the API's
// migrations (see api-source.ts: `node scripts/migrate.mjs migrate deploy` on commits that have
// it, else their own `prisma migrate deploy`), and inserts with plain SQL:
//   - 1,000 users, 200 organizations, 10 memberships each; the bench user (bench@bench.test) with
//     exactly 20, and a session its access tokens name (the nested read);
//   - 25 workflows, each with 8 finished executions, in one organization: the bench user's first
//     (DEEP_ORG_SQL; the bench user is ADMIN there). The deep read reads its first 20 workflows
//     and 5 executions of each. Only that organization has workflows: workflow_executions has
//     no index that starts with workflow_id (only (organization_id, workflow_id, queued_at)), so
//     "the executions of a workflow", which all three servers ask for, is a sequential scan of
//     the table; with workflows in every organization (40,000 executions) that scan (13 ms per
//     workflow here) would be all a deep read measures, for every server alike;
//   - an ingestion user (bench-ingest@bench.test), the only member (OWNER) of an organization of
//     its own (slug bench-ingest), with a session: the ingestion scenario writes events there and
//     cleanIngest() deletes them (and what the API derived from them) afterwards.
// Deterministic apart from the uuids (gen_random_uuid()). The database's comment records
// SEED_VERSION: a database seeded by another version of this file is seeded again.
//
//   npx tsx seed.ts [--api HEAD|<git ref>|worktree]      (or: npm run seed)
//
// The migrations are those of the API source that will be measured (see api-source.ts):
// in production the server refuses to start while any of its migrations is pending.
// Environment: BENCH_PG_URL (server URL, default postgresql://postgres@127.0.0.1:5432),
// BENCH_DB (database name, default floyo_bench).
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { apiArg, migrate, prepareApiSource } from "./api-source.ts";

export const PG_SERVER_URL = (process.env.BENCH_PG_URL ?? "postgresql://postgres@127.0.0.1:5432").replace(/\/+$/, "");
export const BENCH_DB = process.env.BENCH_DB ?? "floyo_bench";
export const BENCH_DB_URL = `${PG_SERVER_URL}/${BENCH_DB}`;

/** Bumped whenever what the seed inserts changes; recorded as the database's comment. */
export const SEED_VERSION = 2;
export const SEED_COMMENT = `floyo-bench seed ${SEED_VERSION}`;

/** The user whose memberships the nested workload reads: exactly this many. */
export const BENCH_USER_EMAIL = "bench@bench.test";
export const BENCH_USER_MEMBERSHIPS = 20;

/** The deep read's organization: the bench user's first membership. Returns (id). */
export const DEEP_ORG_SQL = `SELECT m.organization_id AS id FROM organization_members m JOIN users u ON u.id = m.user_id
  WHERE u.email = '${BENCH_USER_EMAIL}' ORDER BY m.created_at, m.organization_id LIMIT 1`;
/** The deep read's organization's workflows, and each workflow's executions (all finished). */
export const WORKFLOWS_PER_ORG = 25;
export const EXECUTIONS_PER_WORKFLOW = 8;

/** The ingestion scenario's user and organization (nobody else is a member). */
export const INGEST_USER_EMAIL = "bench-ingest@bench.test";
export const INGEST_ORG_SLUG = "bench-ingest";

const USERS = 1_000; // including the bench user, not the ingestion user
const ORGANIZATIONS = 200; // not counting the ingestion organization
const MEMBERSHIPS_PER_USER = 10; // every user but the bench user

if (!/^[a-z_][a-z0-9_]*$/.test(BENCH_DB)) throw new Error(`BENCH_DB must be a plain identifier, got ${BENCH_DB}`);

/** apiDir: the API source whose migrations are applied. */
export async function seed(apiDir: string, log: (line: string) => void = console.log): Promise<void> {
  const started = Date.now();
  const admin = new pg.Client({ connectionString: `${PG_SERVER_URL}/postgres` });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${BENCH_DB}`);
  } finally {
    await admin.end();
  }
  log(`seed: created database ${BENCH_DB}`);

  // The API's own migrations, applied by its own tooling.
  const how = migrate(apiDir, BENCH_DB_URL);
  log(`seed: migrations of ${apiDir} applied (${how})`);

  const db = new pg.Client({ connectionString: BENCH_DB_URL });
  await db.connect();
  try {
    await db.query("BEGIN");
    // Users 1..USERS; user 1 is the bench user. created_at spaced a second apart so ordering is total.
    await db.query(
      `INSERT INTO users (id, email, password_hash, full_name, email_verified_at, created_at, updated_at)
       SELECT gen_random_uuid(),
              CASE WHEN n = 1 THEN $2 ELSE 'user' || n || '@bench.test' END,
              '$argon2id$bench-not-a-real-hash',
              'Bench User ' || n,
              now(),
              timestamptz '2025-01-01' + n * interval '1 second',
              now()
       FROM generate_series(1, $1::int) AS n`,
      [USERS, BENCH_USER_EMAIL],
    );
    await db.query(
      `INSERT INTO organizations (id, name, slug, description, tier, created_at, updated_at)
       SELECT gen_random_uuid(),
              'Organization ' || n,
              'org-' || n,
              'Benchmark organization number ' || n,
              (ARRAY['FREE','PRO','ENTERPRISE']::organization_tier[])[1 + n % 3],
              timestamptz '2025-01-01' + n * interval '1 second',
              now()
       FROM generate_series(1, $1::int) AS n`,
      [ORGANIZATIONS],
    );
    // User u joins organizations (7u + 13k) mod ORGANIZATIONS for k = 0..K-1: all distinct for
    // K <= 20 (13 and 200 are coprime), so the (organization_id, user_id) unique key holds.
    await db.query(
      `WITH u AS (
         SELECT id, row_number() OVER (ORDER BY created_at) AS n FROM users
       ), o AS (
         SELECT id, row_number() OVER (ORDER BY created_at) - 1 AS i FROM organizations
       )
       INSERT INTO organization_members (id, organization_id, user_id, role, created_at, updated_at)
       SELECT gen_random_uuid(), o.id, u.id,
              (ARRAY['OWNER','ADMIN','MEMBER','VIEWER']::org_role[])[1 + (u.n + k) % 4],
              timestamptz '2025-02-01' + u.n * interval '1 minute' + k * interval '1 second',
              now()
       FROM u
       CROSS JOIN LATERAL generate_series(0, CASE WHEN u.n = 1 THEN $1::int ELSE $2::int END - 1) AS k
       JOIN o ON o.i = (7 * u.n + 13 * k) % $3::int`,
      [BENCH_USER_MEMBERSHIPS, MEMBERSHIPS_PER_USER, ORGANIZATIONS],
    );
    // A session for the bench user: the access token names it in `sid` (the API's tokens are
    // bound to sessions; a server that checks the session finds it live for a year).
    await db.query(
      `INSERT INTO user_sessions (id, user_id, device, user_agent, expires_at)
       SELECT gen_random_uuid(), id, 'bench', 'floyo-bench', now() + interval '1 year' FROM users WHERE email = $1`,
      [BENCH_USER_EMAIL],
    );
    // Workflows: WORKFLOWS_PER_ORG in the deep read's organization, updated_at a minute apart (the API lists
    // them most recently changed first), each with EXECUTIONS_PER_WORKFLOW finished executions
    // queued a second apart (newest first). Nothing is QUEUED or RUNNING and no workflow has a
    // schedule, so the API's workers and scheduler leave them alone.
    await db.query(
      `INSERT INTO workflows (id, organization_id, name, description, definition, status, current_version, created_at, updated_at)
       SELECT gen_random_uuid(), o.id,
              'Workflow ' || w || ' of ' || o.slug,
              'Benchmark workflow ' || w,
              jsonb_build_object('steps', jsonb_build_array(
                jsonb_build_object('key', 'log', 'type', 'log', 'config', jsonb_build_object('message', 'hello ' || w)))),
              (ARRAY['DRAFT','ACTIVE','ARCHIVED']::workflow_status[])[1 + w % 3],
              1,
              timestamptz '2025-03-01' + w * interval '1 minute',
              timestamptz '2025-03-01' + w * interval '1 minute' + interval '1 hour'
       FROM organizations o CROSS JOIN generate_series(1, $1::int) AS w
       WHERE o.id = (${DEEP_ORG_SQL})`,
      [WORKFLOWS_PER_ORG],
    );
    await db.query(
      `INSERT INTO workflow_executions (id, organization_id, workflow_id, status, trigger, attempt, error, queued_at, started_at, finished_at)
       SELECT gen_random_uuid(), w.organization_id, w.id,
              (ARRAY['SUCCEEDED','FAILED','CANCELLED','SUCCEEDED']::execution_status[])[1 + e % 4],
              (ARRAY['MANUAL','SCHEDULE','API']::execution_trigger[])[1 + e % 3],
              1,
              CASE WHEN e % 4 = 1 THEN 'step log failed: benchmark' END,
              w.created_at + interval '1 day' + e * interval '1 second',
              w.created_at + interval '1 day' + e * interval '1 second' + interval '100 milliseconds',
              w.created_at + interval '1 day' + e * interval '1 second' + interval '900 milliseconds'
       FROM workflows w CROSS JOIN generate_series(1, $1::int) AS e`,
      [EXECUTIONS_PER_WORKFLOW],
    );
    // The ingestion user and its organization (OWNER, the only member), with a session.
    await db.query(
      `INSERT INTO users (id, email, password_hash, full_name, email_verified_at, created_at, updated_at)
       VALUES (gen_random_uuid(), $1, '$argon2id$bench-not-a-real-hash', 'Bench Ingestion', now(), now(), now())`,
      [INGEST_USER_EMAIL],
    );
    await db.query(
      `INSERT INTO organizations (id, name, slug, description, tier, created_at, updated_at)
       VALUES (gen_random_uuid(), 'Bench ingestion', $1, 'Where the ingestion scenario writes', 'ENTERPRISE', now(), now())`,
      [INGEST_ORG_SLUG],
    );
    await db.query(
      `INSERT INTO organization_members (id, organization_id, user_id, role, created_at, updated_at)
       SELECT gen_random_uuid(), o.id, u.id, 'OWNER', now(), now()
       FROM organizations o, users u WHERE o.slug = $1 AND u.email = $2`,
      [INGEST_ORG_SLUG, INGEST_USER_EMAIL],
    );
    await db.query(
      `INSERT INTO user_sessions (id, user_id, device, user_agent, expires_at)
       SELECT gen_random_uuid(), id, 'bench', 'floyo-bench', now() + interval '1 year' FROM users WHERE email = $1`,
      [INGEST_USER_EMAIL],
    );
    await db.query(`COMMENT ON DATABASE ${BENCH_DB} IS '${SEED_COMMENT}'`);
    await db.query("COMMIT");
    await db.query("ANALYZE");

    const { rows } = await db.query<{
      users: number;
      orgs: number;
      members: number;
      bench: number;
      workflows: number;
      executions: number;
    }>(
      `SELECT (SELECT count(*)::int FROM users) AS users,
              (SELECT count(*)::int FROM organizations) AS orgs,
              (SELECT count(*)::int FROM organization_members) AS members,
              (SELECT count(*)::int FROM organization_members m JOIN users u ON u.id = m.user_id
                WHERE u.email = $1) AS bench,
              (SELECT count(*)::int FROM workflows) AS workflows,
              (SELECT count(*)::int FROM workflow_executions) AS executions`,
      [BENCH_USER_EMAIL],
    );
    const c = rows[0];
    if (
      c.users !== USERS + 1 ||
      c.orgs !== ORGANIZATIONS + 1 ||
      c.bench !== BENCH_USER_MEMBERSHIPS ||
      c.workflows !== WORKFLOWS_PER_ORG ||
      c.executions !== WORKFLOWS_PER_ORG * EXECUTIONS_PER_WORKFLOW
    ) {
      throw new Error(`seed: unexpected counts ${JSON.stringify(c)}`);
    }
    log(
      `seed: ${c.users} users, ${c.orgs} organizations, ${c.members} memberships ` +
        `(${BENCH_USER_EMAIL}: ${c.bench}), ${c.workflows} workflows, ${c.executions} executions ` +
        `in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    await db.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    await db.end();
  }
}

/** Which seed version a database holds (its comment), or null. */
export async function seedVersionOf(db: pg.Client): Promise<string | null> {
  const { rows } = await db.query<{ c: string | null }>(
    "SELECT shobj_description(oid, 'pg_database') AS c FROM pg_database WHERE datname = current_database()",
  );
  return rows[0]?.c ?? null;
}

/**
 * Deletes what the ingestion scenario wrote: every row of the ingestion organization in every
 * table with an organization_id column (events, the audit entries of the batches, outbox rows,
 * whatever the analysis derived), except the organization's membership. Children go before
 * parents: a statement refused by a foreign key is retried after the others.
 */
export async function cleanIngest(db: pg.Client): Promise<number> {
  const { rows: org } = await db.query<{ id: string }>("SELECT id FROM organizations WHERE slug = $1", [
    INGEST_ORG_SLUG,
  ]);
  const orgId = org[0]?.id;
  if (!orgId) return 0;
  const { rows: tables } = await db.query<{ t: string }>(
    `SELECT c.table_name AS t FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'public' AND c.column_name = 'organization_id' AND t.table_type = 'BASE TABLE'
       AND c.table_name <> 'organization_members'`,
  );
  let pending = tables.map((r) => r.t);
  let deleted = 0;
  for (let pass = 0; pending.length && pass < 10; pass++) {
    const refused: string[] = [];
    for (const table of pending) {
      try {
        const r = await db.query(`DELETE FROM "${table.replaceAll('"', '""')}" WHERE organization_id = $1`, [orgId]);
        deleted += r.rowCount ?? 0;
      } catch (err) {
        if ((err as { code?: string }).code !== "23503") throw err; // foreign key violation: later
        refused.push(table);
      }
    }
    pending = refused;
  }
  if (pending.length) throw new Error(`cleanIngest: could not empty ${pending.join(", ")}`);
  return deleted;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  Promise.resolve()
    .then(() => seed(prepareApiSource(apiArg()).dir))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
