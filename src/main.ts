// The process: load config, start, and on SIGTERM or SIGINT drain and exit 0. With
// `--worker`, the background jobs alone, without HTTP.
import { buildApp } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const app = buildApp(config, { role: process.argv.includes("--worker") ? "worker" : "api" });

// The last line of defence, not the way failures are handled: every publish and Redis or
// database call handles its own. A rejection that slips through is a bug to fix, but one
// that ends the process would take every client of this instance with it (a Redis outage
// once did exactly that): it is logged, with a count, and the process serves on. A thrown
// exception is different (the stack it unwound may have left state half-changed): Node's
// default, exiting, stays.
let unhandled = 0;
process.on("unhandledRejection", (reason) => {
  unhandled++;
  app.logger.error(
    { err: reason, unhandledRejections: unhandled },
    "unhandled rejection (a bug): process kept running",
  );
});
if (config.jwt.ephemeral)
  app.logger.warn("JWT_KEYS is not set: tokens are signed with a random key and end with this process");

// Installed before start: a signal during migrations waits for them, then shuts down cleanly.
let started: Promise<unknown> = Promise.resolve();
let signalled = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    started
      .catch(() => {})
      .then(() => app.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          app.logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
  });
}

started = app.start();
try {
  await started;
} catch (err) {
  // Whatever went wrong (port taken, database locked or damaged, a failed migration), say it
  // plainly, release what was opened (the embedded database's lock), and exit 1.
  const message = err instanceof Error ? err.message : String(err);
  app.logger.fatal({ err }, `could not start: ${message}`);
  console.error(`Could not start: ${message}`);
  await app.stop().catch(() => {});
  process.exit(1);
}
