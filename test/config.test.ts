// Production refuses to start on an unsafe configuration, naming the variable and the fix.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import { services, startServer, testEnv } from "./helpers/server.ts";

const strongKeys = "k1:0123456789abcdef0123456789abcdef-strong,k0:fedcba9876543210fedcba9876543210-older";
const production = {
  NODE_ENV: "production",
  JWT_KEYS: strongKeys,
  CORS_ORIGINS: "https://app.floyo.test",
  DATABASE_URL: "postgresql://floyo@db.internal:5432/floyo",
  REDIS_URL: "redis://cache.internal:6379",
  SMTP_URL: "smtp://mail.internal:587",
  PASSWORD_HASH_LOG_N: "15",
};

function refusal(env: Record<string, string | undefined>): string {
  try {
    loadConfig(testEnv({ ...production, ...env }));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("the configuration was accepted");
}

describe("production configuration", () => {
  it("accepts a complete, strong configuration", () => {
    const config = loadConfig(testEnv(production));
    expect(config.mode).toBe("services");
    expect(config.graphiql).toBe(false);
    expect(config.jwt.keys.map((k) => k.kid)).toEqual(["k1", "k0"]);
  });

  it.each([
    ["JWT keys are missing", { JWT_KEYS: undefined }, /JWT_KEYS is not set.*openssl rand/],
    ["a JWT key is short", { JWT_KEYS: "k1:short-secret" }, /JWT_KEYS key "k1" is weak/],
    [
      "a JWT key is a well-known value",
      { JWT_KEYS: `k1:${"your-secret-key-change-in-production".padEnd(40, "x")}` },
      /JWT_KEYS key "k1" is weak/,
    ],
    [
      "a JWT key has no id",
      { JWT_KEYS: "0123456789abcdef0123456789abcdef-strong" },
      /JWT_KEYS has an entry without a key id/,
    ],
    ["a JWT key has too few distinct characters", { JWT_KEYS: `k1:${"a".repeat(48)}` }, /JWT_KEYS key "k1" is weak/],
    [
      "two JWT keys share an id",
      { JWT_KEYS: `k1:${"0123456789abcdefghij".repeat(2)},k1:${"abcdefghij0123456789".repeat(2)}` },
      /key id "k1" twice/,
    ],
    ["CORS origins are missing", { CORS_ORIGINS: undefined }, /CORS_ORIGINS is not set/],
    ["a CORS origin is not an origin", { CORS_ORIGINS: "app.floyo.test" }, /CORS_ORIGINS: each origin must look like/],
    ["SMTP_URL is missing", { SMTP_URL: undefined }, /SMTP_URL is not set/],
    ["CORS origins are *", { CORS_ORIGINS: "*" }, /CORS_ORIGINS contains "\*"/],
    ["DATABASE_URL is missing", { DATABASE_URL: undefined }, /DATABASE_URL is not set\. Production runs on PostgreSQL/],
    ["REDIS_URL is missing", { REDIS_URL: undefined }, /REDIS_URL is not set\. Production shares/],
    ["the secrets key ring is missing", { SECRETS_KEYS: undefined }, /SECRETS_KEYS is not set\. Integration secrets/],
    ["a secrets key is not 32 bytes", { SECRETS_KEYS: "k1:c2hvcnQ=" }, /SECRETS_KEYS: each entry must be kid:<base64/],
  ])("refuses when %s", (_name, env, message) => {
    expect(refusal(env)).toMatch(message);
  });

  it("names every problem at once", () => {
    const message = refusal({ JWT_KEYS: undefined, CORS_ORIGINS: "*", DATABASE_URL: undefined, REDIS_URL: undefined });
    for (const variable of ["JWT_KEYS", "CORS_ORIGINS", "DATABASE_URL", "REDIS_URL"])
      expect(message).toContain(variable);
  });

  it("never echoes a value it refuses: a mistyped URL would print its password", () => {
    const message = (() => {
      try {
        loadConfig(testEnv({ DATABASE_URL: "mysql://u:hunter2@db/x", REDIS_URL: "redis://x" }));
        return "accepted";
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toMatch(/DATABASE_URL: must be a postgresql/);
    expect(message).not.toContain("hunter2");
  });

  it("refuses the services mode without a shared key ring, in any environment", () => {
    expect(() =>
      loadConfig(
        testEnv({
          NODE_ENV: "development",
          JWT_KEYS: undefined,
          DATABASE_URL: "postgresql://x/y",
          REDIS_URL: "redis://x",
        }),
      ),
    ).toThrowError(/JWT_KEYS is not set\. The services mode/);
  });

  it("refuses malformed values in any environment", () => {
    expect(() => loadConfig(testEnv({ PORT: "eighty" }))).toThrowError(/PORT/);
    expect(() => loadConfig(testEnv({ DATABASE_URL: "mysql://x", REDIS_URL: "redis://x" }))).toThrowError(
      /DATABASE_URL: must be a postgresql:\/\/ URL/,
    );
    expect(() => loadConfig(testEnv({ DATABASE_URL: "postgresql://x/y", REDIS_URL: undefined }))).toThrowError(
      /REDIS_URL is not set\. The services mode needs both/,
    );
  });

  it("the server process exits 1 with the message when started with NODE_ENV=production and no secrets", async () => {
    const run = promisify(execFile)("node_modules/.bin/tsx", ["src/main.ts"], {
      env: { PATH: process.env.PATH, NODE_ENV: "production", PORT: "0" },
    });
    const failure = await run.then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/Configuration refused/);
    for (const variable of ["JWT_KEYS", "CORS_ORIGINS", "DATABASE_URL", "REDIS_URL"])
      expect(failure?.stderr).toContain(variable);
  });

  it.runIf(services)("refuses to start while migrations are pending", async () => {
    const s = services!;
    const admin = new pg.Client({ connectionString: s.adminUrl });
    await admin.connect();
    const name = `${new URL(s.databaseUrl).pathname.slice(1)}_empty`;
    await admin.query(`CREATE DATABASE "${name}"`);
    try {
      const url = new URL(s.databaseUrl);
      url.pathname = `/${name}`;
      const started = startServer({
        ...production,
        DATABASE_URL: url.toString(),
        REDIS_URL: s.redisUrl,
        HOST: "127.0.0.1",
      });
      await expect(started).rejects.toThrowError(/migration\(s\) pending.*npm run db:deploy/);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  });
});
