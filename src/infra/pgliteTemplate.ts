// A PGlite data directory made once per installation, initdb'd and migrated, which the embedded
// mode copies into an empty DATA_DIR: initdb in WebAssembly takes seconds, a copy a fraction
// of one. scripts/build.mjs (which `npm start` runs) and the Dockerfile make it; a template
// missing, made by another PGlite or by migrations this code does not have, or damaged, is
// never used: the server then runs initdb as if there were none.
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { alive } from "./dirLock.ts";
import { applyPendingMigrations, localMigrations } from "./migrations.ts";

// This file runs from src/infra/ (tsx, tests) and bundled into dist/ (npm start, build.mjs).
const ROOT =
  ["..", "../.."]
    .map((relative) => path.resolve(import.meta.dirname, relative))
    .find((dir) => existsSync(path.join(dir, "package.json"))) ?? process.cwd();

/** Under node_modules: made per installation, ignored by git, gone with a fresh `npm ci`. */
export const TEMPLATE_DIR = path.join(ROOT, "node_modules", ".cache", "floyo-pglite-template");

/**
 * initdb's options for every cluster this code makes, from the template or not. 1 MB WAL
 * segments instead of 16: a new cluster is 30 MB instead of 39, quicker to copy and to make.
 */
export const INITDB_PARAMS = ["--wal-segsize=1"];

/** What a template was made from, and every entry of its data directory (dir entries end in "/"). */
interface Stamp {
  /** Tells one build from another made from the same inputs. */
  id: string;
  pglite: string;
  initdb: string[];
  migrations: { name: string; checksum: string }[];
  entries: Record<string, number>;
}

function pgliteVersion(): string {
  // The package's "exports" do not expose its package.json: found beside its entry point.
  let dir = path.dirname(createRequire(import.meta.url).resolve("@electric-sql/pglite"));
  for (;;) {
    const file = path.join(dir, "package.json");
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; version: string };
      if (pkg.name === "@electric-sql/pglite") return pkg.version;
    }
    if (dir === path.dirname(dir)) throw new Error("@electric-sql/pglite's package.json not found");
    dir = path.dirname(dir);
  }
}

function readStamp(templateDir: string): Stamp | null {
  try {
    return JSON.parse(readFileSync(path.join(templateDir, "stamp.json"), "utf8")) as Stamp;
  } catch {
    return null;
  }
}

/** Why the template cannot seed a data directory for this code, or null when it can. */
export function templateProblem(templateDir: string): string | null {
  return stampProblem(readStamp(templateDir), templateDir);
}

/** templateProblem of a stamp already read: the one checked is the one a copy is made against. */
function stampProblem(stamp: Stamp | null, templateDir: string): string | null {
  if (!stamp) return `no template (or no readable stamp) in ${templateDir}`;
  if (typeof stamp.id !== "string" || !Array.isArray(stamp.migrations) || typeof stamp.entries !== "object")
    return "template stamp incomplete";
  const version = pgliteVersion();
  if (stamp.pglite !== version) return `template made by PGlite ${stamp.pglite}, this is ${version}`;
  if (JSON.stringify(stamp.initdb) !== JSON.stringify(INITDB_PARAMS)) return "template made with other initdb options";
  // Migrations the template lacks are applied at start, as on any database; one it has that
  // this code does not (another branch), or has with other contents, would be wrong here.
  const local = new Map(localMigrations().map((m) => [m.name, m.checksum]));
  const foreign = stamp.migrations.find((m) => local.get(m.name) !== m.checksum);
  if (foreign) return `template has migration ${foreign.name}, which this code has not (or has changed)`;
  return null;
}

/** Every file (with its size) and directory under `dir`, by path relative to it. */
function listEntries(dir: string, prefix = "", into: Record<string, number> = {}): Record<string, number> {
  for (const entry of readdirSync(path.join(dir, prefix), { withFileTypes: true })) {
    const relative = path.posix.join(prefix, entry.name);
    if (entry.isDirectory()) {
      into[`${relative}/`] = 0;
      listEntries(dir, relative, into);
    } else {
      // Anything but a regular file (a socket, a link) is not a cluster's: -1 never matches.
      into[relative] = entry.isFile() ? statSync(path.join(dir, relative)).size : -1;
    }
  }
  return into;
}

function sameEntries(a: Record<string, number>, b: Record<string, number>) {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => Object.hasOwn(b, key) && a[key] === b[key]);
}

/** Copies leftovers are named from the target, so one beside it is always recognised as such. */
const copyPrefix = (target: string) => `.${path.basename(target)}-copy-`;

/**
 * Fills the missing or empty data directory `target` from the template, all or nothing: the
 * copy is made beside it and renamed into place only once every file is there at its size, so
 * an interrupted copy never leaves a directory a later start would take for a cluster. The
 * caller holds the data directory's lock. Returns why not, or null once it is in place.
 */
export function seedFromTemplate(target: string, templateDir: string = TEMPLATE_DIR): string | null {
  const parent = path.dirname(target);
  // A copy left by a process killed mid-way (the lock says no other is copying now).
  for (const name of readdirSync(parent))
    if (name.startsWith(copyPrefix(target))) rmSync(path.join(parent, name), { recursive: true, force: true });
  const stamp = readStamp(templateDir);
  let problem: string | null;
  try {
    problem = stampProblem(stamp, templateDir);
  } catch (err) {
    problem = (err as Error).message;
  }
  if (problem || !stamp) return problem;
  const copy = path.join(parent, `${copyPrefix(target)}${process.pid}`);
  try {
    // A copy-on-write clone where the file system can (btrfs, XFS, APFS), a plain copy elsewhere.
    cpSync(path.join(templateDir, "pgdata"), copy, { recursive: true, mode: constants.COPYFILE_FICLONE });
    if (!sameEntries(listEntries(copy), stamp.entries)) throw new Error("template files differ from its stamp");
    // A template rebuilt meanwhile (renamed in mid-copy) could have mixed two clusters' files.
    if (readStamp(templateDir)?.id !== stamp.id) throw new Error("template replaced during the copy");
    // rename() replaces an empty directory, not a full one: the target can only be empty here.
    if (existsSync(target)) rmdirSync(target);
    renameSync(copy, target);
    return null;
  } catch (err) {
    rmSync(copy, { recursive: true, force: true });
    return `template not copied: ${(err as Error).message}`;
  }
}

/**
 * Makes the template unless a usable one with every migration of this code exists. Made beside
 * its place and renamed into it, so servers starting meanwhile see the old one or the new one.
 * Returns what it did.
 */
export async function ensurePgliteTemplate(templateDir: string = TEMPLATE_DIR): Promise<"current" | "built"> {
  sweep(templateDir);
  if (isCurrent(templateDir)) return "current";
  const migrations = localMigrations().map(({ name, checksum }) => ({ name, checksum }));
  const building = `${templateDir}.tmp-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  try {
    const pgdata = path.join(building, "pgdata");
    mkdirSync(pgdata, { recursive: true });
    const { PGlite } = await import("@electric-sql/pglite");
    const db = await PGlite.create(pgdata, { initDbStartParams: INITDB_PARAMS });
    try {
      await applyPendingMigrations({
        query: async (sql, params) => (await db.query(sql, params)).rows as never[],
        exec: async (sql) => {
          await db.exec(sql);
        },
      });
    } finally {
      await db.close();
    }
    // Readable by whoever starts a server (the image's app user copies a root-owned template).
    const entries = listEntries(pgdata);
    for (const entry of Object.keys(entries)) chmodSync(path.join(pgdata, entry), entry.endsWith("/") ? 0o755 : 0o644);
    const stamp: Stamp = { id: randomUUID(), pglite: pgliteVersion(), initdb: INITDB_PARAMS, migrations, entries };
    writeFileSync(path.join(building, "stamp.json"), `${JSON.stringify(stamp, null, 1)}\n`);
    install(building, templateDir);
    return "built";
  } finally {
    rmSync(building, { recursive: true, force: true });
  }
}

/** Removes what builds that were killed left beside the template (a build is seconds: Ctrl-C happens). */
function sweep(templateDir: string) {
  const parent = path.dirname(templateDir);
  const prefix = `${path.basename(templateDir)}.`;
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? /^(?:tmp|old)-(\d+)$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid && Number(pid) !== process.pid && !alive(Number(pid)))
      rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

/** Usable, and with every migration of this code (usable ones may lack the newest). */
function isCurrent(templateDir: string) {
  return !templateProblem(templateDir) && readStamp(templateDir)?.migrations.length === localMigrations().length;
}

function install(building: string, templateDir: string) {
  try {
    renameSync(building, templateDir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
    // Another build finished first: keep it. Otherwise replace the stale one.
    if (isCurrent(templateDir)) return;
    const old = `${templateDir}.old-${process.pid}`;
    renameSync(templateDir, old);
    renameSync(building, templateDir);
    rmSync(old, { recursive: true, force: true });
  }
}
