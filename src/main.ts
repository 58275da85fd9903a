// Listens, and on SIGTERM or SIGINT drains and exits 0. Nothing else lives here.
import { buildApp } from "./app.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { DatabaseOpenError } from "./infra/db.ts";
import { StartupError } from "./infra/runtime.ts";

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const app = buildApp(config);
if (config.jwt.ephemeral)
  app.logger.warn("JWT_KEYS is not set: tokens are signed with a random key and end with this process");

try {
  await app.start();
} catch (err) {
  if (err instanceof StartupError || err instanceof DatabaseOpenError) {
    app.logger.fatal(err.message);
    console.error(err.message);
    await app.stop().catch(() => {});
    process.exit(1);
  }
  throw err;
}

let signalled = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalled) return;
    signalled = true;
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        app.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  });
}
