// Which code of the Floyo API is measured.
//
//   --api HEAD (default) or any git ref: a snapshot of that commit, `git archive`d into a cache
//     directory outside the repository (BENCH_API_CACHE, default $TMPDIR/floyo-bench-api/<sha>),
//     with its own node_modules installed from its own package-lock.json (`npm ci
//     --ignore-scripts`) and its Prisma client generated there. Built once per commit, reused
//     after; the 3 most recently used snapshots are kept (BENCH_API_KEEP). A commit is what a result can be reproduced from, and the snapshot keeps the run
//     independent of whatever is being edited in the work tree at the time.
//   --api worktree: the work tree of the repository as it is (uncommitted changes included),
//     with its own node_modules and generated client. Nothing is installed or generated.
import { execFileSync, execSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
/** The repository the bench directory lives in. */
export const REPO_DIR = path.resolve(BENCH_DIR, "..");

export interface ApiSource {
  /** Where `src/main.ts`, `prisma/migrations` and `node_modules` are. */
  dir: string;
  /** What the results say was measured. */
  description: string;
  commit: string;
}

const READY_MARKER = ".bench-ready";
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

export function prepareApiSource(spec: string, log: (line: string) => void = console.log): ApiSource {
  if (spec === "worktree") {
    const sha = git(["rev-parse", "HEAD"]);
    const dirty = git(["status", "--porcelain", "--", ".", ":(exclude)bench"]);
    return {
      dir: REPO_DIR,
      commit: dirty ? `${sha} + uncommitted changes` : sha,
      description: `the work tree of ${REPO_DIR}${dirty ? " (with uncommitted changes outside bench/)" : ""}`,
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
    // --ignore-scripts: the project's postinstall also runs GraphQL codegen, which the server
    // does not need; the Prisma client and Pothos types are generated below.
    execFileSync("npm", ["ci", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], {
      cwd: dir,
      stdio: ["ignore", "inherit", "inherit"],
    });
    execFileSync(path.join(dir, "node_modules", ".bin", "prisma"), ["generate"], {
      cwd: dir,
      env: withBin(dir),
      stdio: ["ignore", "ignore", "inherit"],
    });
    writeFileSync(path.join(dir, READY_MARKER), `${sha}\n`);
    log("api: snapshot ready");
  }
  const now = new Date();
  utimesSync(path.join(dir, READY_MARKER), now, now);
  pruneSnapshots(cacheRoot, log);
  return { dir, commit: sha, description: `commit ${sha} (snapshot: git archive + npm ci in ${dir})` };
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
