// A real server per test suite, on a free port, in the mode the run provides: services
// (this run's PostgreSQL database and Redis prefix) or embedded (a fresh DATA_DIR).
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, inject } from "vitest";
import { type App, buildApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/infra/logger.ts";
import { type MailCatcher, startMailCatcher } from "./mail.ts";

export const services = inject("services");

export const TEST_JWT_KEYS = "test-1:test-secret-0123456789-0123456789-abcdef";
export const TEST_SECRETS_KEYS = `test-1:${Buffer.alloc(32, 7).toString("base64")}`;

export const TEST_RATE_LIMITS = {
  RATE_LIMIT_POINTS: "1000000000",
  RATE_LIMIT_ANONYMOUS_POINTS: "1000000000",
  RATE_LIMIT_ADDRESS_POINTS: "1000000000",
  AUTH_RATE_LIMIT_ACCOUNT: "1000000/60",
  AUTH_RATE_LIMIT_ADDRESS: "1000000/60",
};

/** Environment for a test server; `overrides` win, and an undefined value unsets a variable. */
export function testEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: Record<string, string | undefined> = {
    NODE_ENV: "test",
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    JWT_KEYS: TEST_JWT_KEYS,
    SECRETS_KEYS: TEST_SECRETS_KEYS,
    // Cheap hashes: the suite registers many users. Production refuses anything below 15.
    PASSWORD_HASH_LOG_N: "10",
    // Every suite connects from 127.0.0.1, and in the services mode they share one count.
    WS_MAX_CONNECTIONS_PER_IP: "10000",
    WS_MAX_CONNECTIONS_PER_USER: "1000",
    // Budgets and attempt limits far above what any suite spends: only test/limits.test.ts,
    // which sets its own, is about them.
    ...TEST_RATE_LIMITS,
    ...(services
      ? { DATABASE_URL: services.databaseUrl, REDIS_URL: services.redisUrl, REDIS_KEY_PREFIX: services.redisKeyPrefix }
      : {}),
    ...overrides,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  return env as NodeJS.ProcessEnv;
}

export interface TestServer {
  app: App;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  stop(): Promise<void>;
}

export async function startServer(overrides: Record<string, string | undefined> = {}): Promise<TestServer> {
  // Embedded runs (the run's mode, or a test's DATABASE_URL: undefined) get a data directory
  // of their own unless the test names one.
  let tempDir: string | undefined;
  const env = testEnv(overrides);
  if (!env.DATABASE_URL && !env.DATA_DIR) {
    tempDir = mkdtempSync(path.join(os.tmpdir(), "floyo-test-"));
    env.DATA_DIR = tempDir;
  }
  const config = loadConfig(env);
  const app = buildApp(config, { logger: createLogger(config) });
  const { url } = await app.start();
  return {
    app,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, "ws")}/graphql`,
    async stop() {
      await app.stop();
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
}

/**
 * A server that mails through a catcher of its own, started before each suite's tests and
 * stopped after them. Read `server`, `mail` and `url` inside tests, not at import time.
 */
export function useServerWithMail(overrides: Record<string, string | undefined> = {}) {
  const suite = {} as { server: TestServer; mail: MailCatcher; url: string };
  beforeAll(async () => {
    suite.mail = await startMailCatcher();
    suite.server = await startServer({ SMTP_URL: suite.mail.url, ...overrides });
    suite.url = suite.server.graphqlUrl;
  });
  afterAll(async () => {
    await suite.server.stop();
    await suite.mail.close();
  });
  return suite;
}
