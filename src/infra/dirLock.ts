// The embedded data directory's lock: PGlite is single-process, and a second process on the
// same directory corrupts it. The lock file names its holder by more than a pid, since a pid
// alone means nothing in another PID namespace (every container's server is pid 1) and may
// belong to another program after a reboot:
//   - a holder on this machine, boot and PID namespace is alive if its pid is, with the start
//     time the lock recorded;
//   - any other holder (another container or host on a shared volume) is alive while it keeps
//     the lock's mtime fresh: every holder touches it every HEARTBEAT_MS.
// A stale lock is taken over by renaming it aside and checking that what was moved is the lock
// judged stale, so two processes taking over together cannot both win: the loser puts back
// what it moved and is refused.
import { randomUUID } from "node:crypto";
import { linkSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";

export interface Owner {
  id: string;
  pid: number;
  host: string;
  boot: string;
  namespace: string;
  /** The process's start time (clock ticks after boot), "" where /proc is not available. */
  started: string;
}

export class DirLockedError extends Error {
  override name = "DirLockedError";
  constructor(
    readonly file: string,
    readonly owner: Owner,
  ) {
    super(`${file} is held by process ${owner.pid} on ${owner.host}`);
  }
}

export const HEARTBEAT_MS = 2_000;
/** A holder this process cannot see is taken for dead once its lock has not been touched for this long. */
export const STALE_MS = 15_000;

const read = (file: string) => {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
};

function startTime(pid: number) {
  // The 22nd field of /proc/<pid>/stat; the command name before it may hold spaces.
  const stat = read(`/proc/${pid}/stat`);
  return stat ? (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "") : "";
}

function self(): Owner {
  let namespace = "";
  try {
    namespace = readlinkSync("/proc/self/ns/pid");
  } catch {}
  return {
    id: randomUUID(),
    pid: process.pid,
    host: hostname(),
    boot: read("/proc/sys/kernel/random/boot_id") ?? "",
    namespace,
    started: startTime(process.pid),
  };
}

function parse(text: string | undefined): Owner | null {
  if (text === undefined) return null;
  try {
    const owner = JSON.parse(text) as Owner;
    return typeof owner?.id === "string" && Number.isInteger(owner.pid) ? owner : null;
  } catch {
    return null; // an older server's bare pid, or garbage: judged by its mtime alone
  }
}

/** Whether a process with this pid exists on this machine (and PID namespace). */
export function alive(pid: number) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Whether the lock (as read, with its mtime) still has a live holder, seen from `me`. */
export function isHeld(owner: Owner | null, mtimeMs: number, me: Owner, now = Date.now()): boolean {
  const local =
    owner && owner.host === me.host && owner.boot === me.boot && owner.namespace === me.namespace && me.boot !== "";
  if (local)
    return owner.pid !== me.pid && alive(owner.pid) && (!owner.started || owner.started === startTime(owner.pid));
  return now - mtimeMs < STALE_MS;
}

/** Takes the lock `file` or throws DirLockedError. Returns the release function. */
export function acquireLock(file: string, options: { heartbeatMs?: number } = {}): () => void {
  const me = self();
  const mine = `${file}.${me.id}`;
  writeFileSync(mine, JSON.stringify(me));
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        // link() fails when the lock exists, and the lock is never seen half-written.
        linkSync(mine, file);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 5) throw err;
      }
      let mtimeMs: number;
      try {
        mtimeMs = statSync(file).mtimeMs;
      } catch {
        continue; // released meanwhile
      }
      const text = read(file);
      if (text === undefined) continue;
      const owner = parse(text);
      if (isHeld(owner, mtimeMs, me)) throw new DirLockedError(file, owner ?? { ...me, pid: 0, host: "?" });
      takeOver(file, text, me);
    }
  } finally {
    rmSync(mine, { force: true });
  }
  const heartbeat = setInterval(() => {
    const now = new Date();
    try {
      if (parse(read(file))?.id === me.id) utimesSync(file, now, now);
    } catch {}
  }, options.heartbeatMs ?? HEARTBEAT_MS);
  heartbeat.unref();
  return () => {
    clearInterval(heartbeat);
    // Only our own lock: never one that another process has taken since.
    if (parse(read(file))?.id === me.id) rmSync(file, { force: true });
  };
}

/** Moves the stale lock (whose contents were `judged`) out of the way; puts back anything else. */
function takeOver(file: string, judged: string, me: Owner) {
  const aside = `${file}.stale-${me.id}`;
  try {
    renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return; // another took it aside first
    throw err;
  }
  const moved = read(aside);
  if (moved !== judged) {
    // Another process took the lock over between our look and our move: its lock goes back
    // (unless a third has linked one meanwhile, which then holds it: we are refused either way).
    try {
      linkSync(aside, file);
    } catch {
    } finally {
      rmSync(aside, { force: true });
    }
    const owner = parse(moved);
    throw new DirLockedError(file, owner ?? { ...me, pid: 0, host: "?" });
  }
  rmSync(aside, { force: true });
}
