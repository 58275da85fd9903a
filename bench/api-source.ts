// Which code of the Floyo API is measured, how its migrations are applied, and how it starts.
//
//   --api HEAD (default) or any git ref: a snapshot of that commit, `git archive`d into a cache
//     directory outside the repository (BENCH_API_CACHE, default $TMPDIR/floyo-bench-api/<sha>),
//     with its own node_modules installed from its own package-lock.json (`npm ci
//     --ignore-scripts`), then what its postinstall would have done (`npm run generate`: the
//     Prisma client and the SDK's trusted documents; `prisma generate` alone for commits without
//     that script) and, when its package.json has a `build` script, `npm run build` (dist/).
//     Built once per commit, reused after; the 3 most recently used snapshots are kept
//     (BENCH_API_KEEP). A commit is what a result can be reproduced from, and the snapshot keeps
//     the run independent of whatever is being edited in the work tree at the time.
//   --api worktree: the work tree of the repository as it is (uncommitted changes included),
//     with its own node_modules and generated client. Nothing is installed, generated or built
//     there (the bench writes nothing outside bench/): it runs from dist/main.js only when that
//     is newer than every file under src/, else through tsx.
//
// Prisma: commits on Prisma 7's client apply migrations with `node scripts/migrate.mjs migrate
// deploy` (the 6.19.3 CLI's WebAssembly schema engine); older ones with their own
// `node_modules/.bin/prisma migrate deploy`. Prisma 7's CLI downloads a schema engine before any
// command unless PRISMA_SCHEMA_ENGINE_BINARY names an existing file; `generate` never runs it, so
// any file does (node itself). Older CLIs ignore the variable.
import { execFileSync, execSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The repository the bench directory lives in. */
export const REPO_DIR = path.resolve(BENCH_DIR, "..");

export interface ApiStart {
  /** Arguments to `node` (process.execPath), run in the API directory. */
  args: string[];
  /** What the results say about how it was started. */
  how: string;
  /** true: compiled JavaScript (dist/main.js); false: TypeScript through tsx. */
  compiled: boolean;
}

export interface ApiSource {
  /** Where `src/main.ts`, `prisma/migrations` and `node_modules` are. */
  dir: string;
  /** What the results say was measured. */
  description: string;
  commit: string;
  /** How the throughput scenarios start the server (see apiStart). */
  start: ApiStart;
}

const READY_MARKER = ".bench-ready";
/** For `prisma generate` (and the build): Prisma 7's CLI wants a schema engine file to exist. */
const GENERATE_ENV: NodeJS.ProcessEnv = {
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
  PRISMA_HIDE_UPDATE_MESSAGE: "1",
};
/** Written after `npm run build` succeeded (or with the failure, so it is not retried every run). */
const BUILD_MARKER = ".bench-build";
/** Snapshots kept (each holds a full node_modules, about 500 MB); the least recently used go. */
const KEEP_SNAPSHOTS = Number(process.env.BENCH_API_KEEP ?? 3);

function git(args: string[]): string {
  return execFileSync("git", args, { cwd: REPO_DIR }).toString().trim();
}

/** `--api <value>` from argv, else BENCH_API, else HEAD. */
export function apiArg(argv: string[] = process.argv.slice(2)): string {
  const i = argv.indexOf("--api");
  if (i !== -1 && argv[i + 1]) return argv[i + 1];
  const eq = argv.find((a) => a.startsWith("--api="));
  if (eq) return eq.slice("--api=".length);
  return process.env.BENCH_API ?? "HEAD";
}

// biome-ignore lint/suspicious/noExplicitAny: a package.json
function packageJson(dir: string): any {
  return JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8"));
}

export function scriptOf(dir: string, name: string): string | undefined {
  const script = packageJson(dir).scripts?.[name];
  return typeof script === "string" ? script : undefined;
}

export function prepareApiSource(spec: string, log: (line: string) => void = console.log): ApiSource {
  if (spec === "worktree") {
    const sha = git(["rev-parse", "HEAD"]);
    const dirty = git(["status", "--porcelain", "--", ".", ":(exclude)bench"]);
    const start = worktreeStart(REPO_DIR);
    return {
      dir: REPO_DIR,
      commit: dirty ? `${sha} + uncommitted changes` : sha,
      description: `the work tree of ${REPO_DIR}${dirty ? " (with uncommitted changes outside bench/)" : ""}`,
      start,
    };
  }

  const sha = git(["rev-parse", "--verify", `${spec}^{commit}`]);
  const cacheRoot = process.env.BENCH_API_CACHE ?? path.join(os.tmpdir(), "floyo-bench-api");
  const dir = path.join(cacheRoot, sha);
  if (!existsSync(path.join(dir, READY_MARKER))) {
    log(`api: preparing a snapshot of ${spec} (${sha.slice(0, 12)}) in ${dir}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execSync(`git archive --format=tar ${sha} | tar -x -C "${dir}"`, { cwd: REPO_DIR, stdio: "inherit" });
    // --ignore-scripts: no install script of any dependency runs; the project's own postinstall
    // (generate) is run below, explicitly, with the settings this machine needs.
    execFileSync("npm", ["ci", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (scriptOf(dir, "generate")) {
      // The Prisma client and graphql-codegen (the SDK's persisted-documents.json, which the
      // server loads as its trusted documents and refuses to start without).
      execFileSync("npm", ["run", "-s", "generate"], {
        cwd: dir,
        env: withBin(dir, GENERATE_ENV),
        stdio: ["ignore", "ignore", "inherit"],
      });
    } else {
      execFileSync(path.join(dir, "node_modules", ".bin", "prisma"), ["generate"], {
        cwd: dir,
        env: withBin(dir, GENERATE_ENV),
        stdio: ["ignore", "ignore", "inherit"],
      });
    }
    writeFileSync(path.join(dir, READY_MARKER), `${sha}\n`);
    log("api: snapshot ready");
  }
  const build = buildSnapshot(dir, log);
  const now = new Date();
  utimesSync(path.join(dir, READY_MARKER), now, now);
  pruneSnapshots(cacheRoot, log);
  const start: ApiStart = build.ok
    ? {
        args: ["dist/main.js"],
        how: "`node dist/main.js` (compiled once per snapshot with `npm run build`)",
        compiled: true,
      }
    : {
        args: ["--import", "tsx", "src/main.ts"],
        how: `\`node --import tsx src/main.ts\` (${build.why})`,
        compiled: false,
      };
  return { dir, commit: sha, description: `commit ${sha} (snapshot: git archive + npm ci in ${dir})`, start };
}

/**
 * `npm run build` once per snapshot, when its package.json has a build script. Returns whether
 * dist/main.js is there to start; a failed build is recorded (and the server runs through tsx).
 */
function buildSnapshot(dir: string, log: (line: string) => void): { ok: boolean; why: string } {
  const script = scriptOf(dir, "build");
  if (!script) return { ok: false, why: "the commit has no build script" };
  const marker = path.join(dir, BUILD_MARKER);
  if (!existsSync(marker)) {
    log(`api: building the snapshot (npm run build: ${script})`);
    try {
      execFileSync("npm", ["run", "-s", "build"], {
        cwd: dir,
        env: withBin(dir, GENERATE_ENV),
        stdio: ["ignore", "pipe", "pipe"],
      });
      writeFileSync(marker, existsSync(path.join(dir, "dist", "main.js")) ? "ok\n" : "no dist/main.js\n");
    } catch (err) {
      const e = err as { stdout?: Buffer; stderr?: Buffer };
      const output = `${e.stdout?.toString() ?? ""}${e.stderr?.toString() ?? ""}`.trim();
      writeFileSync(marker, `failed\n${output}\n`);
      log(
        `api: npm run build failed; the server runs through tsx instead:\n${output.split("\n").slice(0, 20).join("\n")}`,
      );
    }
  }
  const result = readFileSync(marker, "utf8").split("\n")[0];
  if (result === "ok" && existsSync(path.join(dir, "dist", "main.js"))) return { ok: true, why: "" };
  return {
    ok: false,
    why: result === "failed" ? `npm run build failed, see ${marker}` : "npm run build produced no dist/main.js",
  };
}

/** Newest modification time of the files under `dir`. */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function worktreeStart(dir: string): ApiStart {
  const dist = path.join(dir, "dist", "main.js");
  if (scriptOf(dir, "build") && existsSync(dist) && statSync(dist).mtimeMs >= newestMtime(path.join(dir, "src"))) {
    return {
      args: ["dist/main.js"],
      how: "`node dist/main.js` (the work tree's dist/, newer than src/)",
      compiled: true,
    };
  }
  return {
    args: ["--import", "tsx", "src/main.ts"],
    how: "`node --import tsx src/main.ts` (work tree: the bench builds nothing there, and its dist/ is missing or older than src/)",
    compiled: false,
  };
}

/**
 * How `npm start` starts the server in `dir`, without npm: its `start` script, run by a shell
 * with node_modules/.bin on PATH, `exec`ed so that the process we time and signal is the
 * server (or tsx, which relays signals to it). A start script on dist/ gets a build first.
 */
export function npmStartCommand(dir: string, log: (line: string) => void = console.log): { script: string } {
  const script = scriptOf(dir, "start");
  if (!script) throw new Error(`${dir}/package.json has no start script`);
  if (/\bdist\//.test(script) && dir !== REPO_DIR) {
    const build = buildSnapshot(dir, log);
    if (!build.ok) throw new Error(`the start script (${script}) needs dist/, and ${build.why}`);
  }
  return { script };
}

/** Applies the migrations of the API source in `dir` to `databaseUrl`. Returns the command used. */
export function migrate(dir: string, databaseUrl: string): string {
  const env = withBin(dir, { DATABASE_URL: databaseUrl, PRISMA_HIDE_UPDATE_MESSAGE: "1" });
  if (existsSync(path.join(dir, "scripts", "migrate.mjs"))) {
    execFileSync(process.execPath, ["scripts/migrate.mjs", "migrate", "deploy"], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    return "node scripts/migrate.mjs migrate deploy";
  }
  execFileSync(path.join(dir, "node_modules", ".bin", "prisma"), ["migrate", "deploy"], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return "prisma migrate deploy";
}

function pruneSnapshots(cacheRoot: string, log: (line: string) => void) {
  const used = (name: string) => {
    try {
      return statSync(path.join(cacheRoot, name, READY_MARKER)).mtimeMs;
    } catch {
      return 0; // unfinished: goes first
    }
  };
  const snapshots = readdirSync(cacheRoot, { withFileTypes: true })
    .filter((e) => e.isDirectory() && /^[0-9a-f]{40}$/.test(e.name))
    .map((e) => ({ name: e.name, used: used(e.name) }))
    .sort((a, b) => b.used - a.used);
  for (const old of snapshots.slice(Math.max(1, KEEP_SNAPSHOTS))) {
    log(`api: removing the old snapshot ${old.name.slice(0, 12)}`);
    rmSync(path.join(cacheRoot, old.name), { recursive: true, force: true });
  }
}

/** process.env with the source's node_modules/.bin first on PATH (Prisma's generators need it). */
export function withBin(dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...extra,
    PATH: `${path.join(dir, "node_modules", ".bin")}${path.delimiter}${process.env.PATH ?? ""}`,
  };
}

/** Migration directory names of a source, sorted. */
export function migrationNames(dir: string): string[] {
  return readdirSync(path.join(dir, "prisma", "migrations"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** The package versions of a source, for the results. */
export function versionOf(dir: string, pkg: string): string {
  try {
    return JSON.parse(readFileSync(path.join(dir, "node_modules", pkg, "package.json"), "utf8")).version;
  } catch {
    return "?";
  }
}
