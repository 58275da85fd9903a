// Structured JSON logs (pino). Secrets are redacted by path so that no call site has to remember.
import { pino } from "pino";
import type { Config } from "../config.ts";
import { isCircuitOpen } from "./breaker.ts";

export type Logger = pino.Logger;

const DEBUG = 20;

const REDACT = [
  "password",
  "*.password",
  "*.newPassword",
  "*.currentPassword",
  "*.token",
  "*.refreshToken",
  "*.accessToken",
  "*.secret",
  "*.apiKey",
  "headers.authorization",
  "headers.cookie",
  'headers["x-api-key"]',
  "*.headers.authorization",
  "*.headers.cookie",
  '*.headers["x-api-key"]',
];

export function createLogger(config: Pick<Config, "logLevel">): Logger {
  return pino({
    level: config.logLevel,
    base: { service: "floyo-api" },
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
    hooks: {
      // A failure that the open database breaker refused was logged once, when it opened: each
      // such line (a job polling every second through an outage) goes to debug instead.
      logMethod(args, method, level) {
        const first = args[0] as { err?: unknown } | null;
        if (level > DEBUG && typeof first === "object" && isCircuitOpen(first?.err)) {
          if (this.isLevelEnabled("debug")) this.debug(...(args as Parameters<pino.LogFn>));
          return;
        }
        method.apply(this, args);
      },
    },
  });
}
