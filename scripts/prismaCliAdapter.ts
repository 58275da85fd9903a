// Driver adapters for the Prisma CLI only (migrate deploy/status/diff, db pull).
// Each works around a known snag of Prisma 6.19 on adapters; the server uses src/infra/db.ts.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaPGlite } from "pglite-prisma-adapter";

let pglite: PGlite | undefined;

export function cliAdapter(databaseUrl: string | undefined) {
  unrefTimers();
  if (databaseUrl) {
    // The schema engine cannot decode the catalog type "char" (OID 18) when it describes a
    // database; reading it as text is lossless for the catalog columns it queries.
    const types = {
      getTypeParser: (oid: number, format?: "text" | "binary") =>
        oid === 18 ? pg.types.getTypeParser(25, format) : pg.types.getTypeParser(oid, format),
    };
    // allowExitOnIdle: otherwise every CLI command waits for the idle pool to time out.
    return new PrismaPg({ connectionString: databaseUrl, allowExitOnIdle: true, types });
  }
  // The CLI calls adapter() more than once per command: one PGlite per process, or two
  // instances would open the same data directory.
  if (!pglite) {
    const dir = path.resolve(process.env.DATA_DIR ?? ".data", "pglite");
    mkdirSync(dir, { recursive: true });
    pglite = new PGlite(dir);
  }
  // Typed against another copy of @prisma/driver-adapter-utils; the same shape at run time.
  return new PrismaPGlite(pglite) as unknown as PrismaPg;
}

// PGlite's emulated Postgres re-arms timers forever and the CLI never disposes the adapter, and
// the WebAssembly schema engine leaves a 10 s timer behind: the command would print its result
// and wait. Unref'd timers let the process exit when its work is done. Patched once.
let unrefed = false;
function unrefTimers() {
  if (unrefed) return;
  unrefed = true;
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    const timer = original(...args);
    timer.unref?.();
    return timer;
  }) as typeof setTimeout;
}
