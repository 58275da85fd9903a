// Creates the benchmark database from scratch: drops and re-creates it, applies the API's
// migrations with its own `prisma migrate deploy`, and inserts users, organizations and
// memberships with plain SQL. Deterministic apart from the uuids (gen_random_uuid()).
//
//   npx tsx seed.ts [--api HEAD|<git ref>|worktree]      (or: npm run seed)
//
// The migrations are those of the API source that will be measured (see api-source.ts):
// in production the server refuses to start while any of its migrations is pending.
// Environment: BENCH_PG_URL (server URL, default postgresql://postgres@127.0.0.1:5432),
// BENCH_DB (database name, default floyo_bench).
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { apiArg, prepareApiSource, withBin } from "./api-source.ts";

export const PG_SERVER_URL = (process.env.BENCH_PG_URL ?? "postgresql://postgres@127.0.0.1:5432").replace(/\/+$/, "");
export const BENCH_DB = process.env.BENCH_DB ?? "floyo_bench";
export const BENCH_DB_URL = `${PG_SERVER_URL}/${BENCH_DB}`;

/** The user whose memberships the nested workload reads: exactly this many. */
export const BENCH_USER_EMAIL = "bench@bench.test";
export const BENCH_USER_MEMBERSHIPS = 20;

const USERS = 1_000; // including the bench user
const ORGANIZATIONS = 200;
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

  // The API's own migrations, applied by its own Prisma CLI (prisma.config.ts in API_DIR).
  execFileSync(path.join(apiDir, "node_modules", ".bin", "prisma"), ["migrate", "deploy"], {
    cwd: apiDir,
    env: withBin(apiDir, { DATABASE_URL: BENCH_DB_URL }),
    stdio: ["ignore", "pipe", "inherit"],
  });
  log(`seed: migrations of ${apiDir} applied (prisma migrate deploy)`);

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
    await db.query("COMMIT");
    await db.query("ANALYZE");

    const { rows } = await db.query<{ users: number; orgs: number; members: number; bench: number }>(
      `SELECT (SELECT count(*)::int FROM users) AS users,
              (SELECT count(*)::int FROM organizations) AS orgs,
              (SELECT count(*)::int FROM organization_members) AS members,
              (SELECT count(*)::int FROM organization_members m JOIN users u ON u.id = m.user_id
                WHERE u.email = $1) AS bench`,
      [BENCH_USER_EMAIL],
    );
    const c = rows[0];
    if (c.users !== USERS || c.orgs !== ORGANIZATIONS || c.bench !== BENCH_USER_MEMBERSHIPS) {
      throw new Error(`seed: unexpected counts ${JSON.stringify(c)}`);
    }
    log(
      `seed: ${c.users} users, ${c.orgs} organizations, ${c.members} memberships ` +
        `(${BENCH_USER_EMAIL}: ${c.bench}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    await db.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    await db.end();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  Promise.resolve()
    .then(() => seed(prepareApiSource(apiArg()).dir))
    .catch((err) => {
      console.error(err);
      process.exit(1);
    });
}
