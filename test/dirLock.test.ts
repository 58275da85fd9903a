// The embedded data directory's lock (src/infra/dirLock.ts), as operators meet it: a lock left
// by a crash is taken over by exactly one of several processes starting together; a holder
// in another container (another PID namespace or host, which a pid says nothing about) is
// respected while it keeps the lock fresh; a recycled pid does not keep a dead holder's lock.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { acquireLock, DirLockedError, type Owner, STALE_MS } from "../src/infra/dirLock.ts";
import { until } from "./helpers/wait.ts";

const dir = mkdtempSync(path.join(os.tmpdir(), "floyo-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const lockFile = () => path.join(dir, `lock-${++n}`);

/** What a holder on this machine writes, as another process would. */
function ownerLike(overrides: Partial<Owner>): Owner {
  const release = acquireLock(path.join(dir, "probe"));
  const me = JSON.parse(readFileSync(path.join(dir, "probe"), "utf8")) as Owner;
  release();
  return { ...me, id: "someone-else", ...overrides };
}

function contender(file: string) {
  const child = spawn(process.execPath, ["--import", "tsx", "test/helpers/lockContender.ts", file], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines: string[] = [];
  const waiting = new Set<() => void>();
  createInterface({ input: child.stdout }).on("line", (line) => {
    lines.push(line);
    for (const wake of waiting) wake();
  });
  const said = (match: (line: string) => boolean) =>
    new Promise<string>((resolve) => {
      const check = () => {
        const line = lines.find(match);
        if (line !== undefined) {
          waiting.delete(check);
          resolve(line);
        }
      };
      waiting.add(check);
      check();
    });
  return { child, said };
}

describe("the data directory lock", () => {
  it("lets exactly one of four processes starting together take over a lock left by a crash", async () => {
    for (let round = 0; round < 5; round++) {
      const file = lockFile();
      // A dead holder on this machine: its pid exited.
      const dead = spawn(process.execPath, ["-e", ""]);
      await new Promise((resolve) => dead.on("exit", resolve));
      writeFileSync(file, JSON.stringify(ownerLike({ pid: dead.pid as number })));
      const all = Array.from({ length: 4 }, () => contender(file));
      await Promise.all(all.map((c) => c.said((l) => l === "ready")));
      for (const c of all) c.child.stdin.write("go\n");
      const outcomes = await Promise.all(all.map((c) => c.said((l) => l === "won" || l.startsWith("refused"))));
      expect(
        outcomes.filter((o) => o === "won"),
        outcomes.join("\n"),
      ).toHaveLength(1);
      expect(outcomes.filter((o) => o.startsWith("refused")).every((o) => o.includes("held by process"))).toBe(true);
      const winner = all[outcomes.indexOf("won")]!;
      expect((JSON.parse(readFileSync(file, "utf8")) as Owner).pid).toBe(winner.child.pid);
      for (const c of all) c.child.stdin.end();
      await Promise.all(
        all.map(
          (c) => new Promise((resolve) => (c.child.exitCode !== null ? resolve(null) : c.child.on("exit", resolve))),
        ),
      );
    }
  });

  it("respects a holder in another container while it keeps the lock fresh, and takes a lock it stopped touching", () => {
    const file = lockFile();
    // pid 1 in another PID namespace: a container's server, alive or not, nothing a pid can tell.
    writeFileSync(file, JSON.stringify(ownerLike({ pid: 1, namespace: "pid:[1]", host: "container-a" })));
    expect(() => acquireLock(file)).toThrow(DirLockedError);
    expect(() => acquireLock(file)).toThrow(/held by process 1 on container-a/);
    const old = new Date(Date.now() - STALE_MS - 1_000);
    utimesSync(file, old, old);
    const release = acquireLock(file);
    expect((JSON.parse(readFileSync(file, "utf8")) as Owner).pid).toBe(process.pid);
    release();
  });

  it("does not take a recycled pid for the holder: a live process with another start time", () => {
    const file = lockFile();
    // This very test runner is alive, but it is not the process that wrote the lock.
    writeFileSync(file, JSON.stringify(ownerLike({ pid: process.ppid, started: "1" })));
    const release = acquireLock(file);
    release();
    // The same pid with its real start time is a live holder.
    const real = readFileSync(`/proc/${process.ppid}/stat`, "utf8");
    const started = real.slice(real.lastIndexOf(")") + 2).split(" ")[19];
    writeFileSync(file, JSON.stringify(ownerLike({ pid: process.ppid, started })));
    expect(() => acquireLock(file)).toThrow(DirLockedError);
  });

  it("keeps its own lock fresh while it holds it, and releases only its own", async () => {
    const file = lockFile();
    const release = acquireLock(file, { heartbeatMs: 20 });
    const old = new Date(Date.now() - STALE_MS - 1_000);
    utimesSync(file, old, old);
    await until(
      async () => {
        // A turn of the event loop between looks, for the heartbeat's timer.
        await new Promise((resolve) => setImmediate(resolve));
        return statSync(file).mtimeMs;
      },
      (mtime) => Date.now() - mtime < STALE_MS,
    );
    // Taken over by someone else meanwhile (say, after a long pause): release leaves theirs.
    const theirs = JSON.stringify(ownerLike({ pid: process.ppid }));
    writeFileSync(file, theirs);
    release();
    expect(readFileSync(file, "utf8")).toBe(theirs);
  });
});
