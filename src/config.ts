// The only reader of process.env. Everything else receives a validated Config.
import { randomBytes } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { parseEntry } from "./features/connectors/allowList.ts";

/** Who is calling, as far as the request's headers say (see features/auth/principal.ts callerKind). */
export type CallerKind = "anonymous" | "user" | "apiKey";

const MIN_SECRET_LENGTH = 32;
const MIN_DISTINCT_CHARACTERS = 12;
const WELL_KNOWN_SECRET = /secret-?key|change-?me|changeit|password|example/i;

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** "count/seconds", e.g. "10/900": at most 10 in any window of 15 minutes. */
const rate = z
  .string()
  .regex(/^\d{1,9}\/\d{1,6}$/, 'must be "count/seconds", e.g. "10/900"')
  .transform((v) => {
    const [points, seconds] = v.split("/").map(Number) as [number, number];
    return { points, durationSeconds: seconds };
  })
  .refine((r) => r.points >= 1 && r.durationSeconds >= 1, { message: "count and seconds must be at least 1" });
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

const envSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().optional(),
  PORT: int(0, 65535).default(4000),
  DATA_DIR: z.string().default(".data"),
  UPLOAD_DIR: z.string().optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL")
    .optional(),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  // The pool guard and the database circuit breaker (infra/breaker.ts). Connecting, and waiting
  // in the pool for a connection, give up after the connect timeout; PostgreSQL cancels a
  // statement past the statement timeout. Past MAX_WAITING callers queued for a connection,
  // or after BREAKER_FAILURES outage failures in a row, the breaker opens: database calls are
  // refused at once (SERVICE_UNAVAILABLE) for BREAKER_RESET_MS, then one probe may close it.
  DATABASE_CONNECT_TIMEOUT_MS: int(100, 600_000).default(5_000),
  DATABASE_STATEMENT_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  DATABASE_POOL_MAX_WAITING: int(0, 100_000).default(50),
  DATABASE_BREAKER_FAILURES: int(1, 10_000).default(5),
  DATABASE_BREAKER_RESET_MS: int(50, 600_000).default(5_000),
  // Distinct SQL texts kept as named prepared statements on each connection (infra/statementNames.ts);
  // 0 sends every statement unnamed, as a transaction-mode connection pooler (PgBouncer) needs.
  DATABASE_PREPARED_STATEMENTS: int(0, 100_000).default(1_000),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL")
    .optional(),
  REDIS_KEY_PREFIX: z.string().default("floyo:"),
  JWT_KEYS: z.string().optional(),
  JWT_ISSUER: z.string().default("floyo"),
  JWT_AUDIENCE: z.string().default("floyo-api"),
  JWT_ACCESS_TTL_SECONDS: int(60, 86_400).default(900),
  REFRESH_TOKEN_TTL_DAYS: int(1, 365).default(30),
  // scrypt cost as log2(N); the hash records it, so raising it later keeps old hashes valid.
  PASSWORD_HASH_LOG_N: int(10, 20).default(15),
  SMTP_URL: z
    .string()
    .regex(/^smtps?:\/\//, "must be an smtp:// or smtps:// URL")
    .optional(),
  MAIL_FROM: z.string().default("Floyo <no-reply@floyo.local>"),
  APP_URL: z.string().url().default("http://localhost:3000"),
  TRUST_PROXY: bool.default(false),
  // Origins as browsers send them: scheme://host[:port], nothing after; anything else never matches.
  CORS_ORIGINS: list
    .refine((origins) => origins.every((o) => o === "*" || /^https?:\/\/[^/\s]+$/.test(o)), {
      message: 'each origin must look like "https://app.example.com" (scheme and host, no path)',
    })
    .optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  GRAPHIQL: bool.optional(),
  // Who may ask for the schema: everyone, signed-in callers and API keys, or nobody.
  // Unset: public outside production, authenticated in production.
  INTROSPECTION: z.enum(["public", "authenticated", "off"]).optional(),
  // "Did you mean …" in errors names fields, arguments, types and enum values a caller did not ask for.
  GRAPHQL_SUGGESTIONS: bool.optional(),
  // Strict-Transport-Security max-age in seconds; 0: not sent. Unset: a year in production, 0 elsewhere.
  HSTS_MAX_AGE: int(0, 2 * 31_536_000).optional(),
  // Node's limits on receiving a request (slowloris): the headers, and the whole request with its body.
  HEADERS_TIMEOUT_MS: int(100, 600_000).default(15_000),
  REQUEST_TIMEOUT_MS: int(100, 3_600_000).default(120_000),
  // A query or mutation still running after this is answered TIMEOUT; 0: no deadline.
  OPERATION_TIMEOUT_MS: int(0, 600_000).default(30_000),
  // Answers to queries kept and reused until a change in their scope (infra/responseCache.ts).
  RESPONSE_CACHE: z
    .enum(["on", "off", "true", "false", "1", "0", "yes", "no"])
    .transform((v) => ["on", "true", "1", "yes"].includes(v))
    .default(true),
  RESPONSE_CACHE_TTL_SECONDS: int(1, 86_400).default(60),
  RESPONSE_CACHE_MAX_ENTRIES: int(1, 10_000_000).default(10_000),
  RESPONSE_CACHE_MAX_ENTRY_BYTES: int(1, 64 * 1024 * 1024).default(256 * 1024),
  // Automatic persisted queries (Apollo's and urql's links): documents registered by hash.
  PERSISTED_QUERIES: bool.default(true),
  PERSISTED_QUERIES_TTL_SECONDS: int(60, 365 * 86_400).default(7 * 86_400),
  // Trusted documents: manifests of hash -> document (codegen's persisted-documents.json).
  TRUSTED_DOCUMENTS: list.default(["sdk/generated/persisted-documents.json"]),
  // Caller kinds that may run trusted documents only (anonymous, user, apiKey).
  TRUSTED_DOCUMENTS_ONLY: list
    .refine((kinds) => kinds.every((k) => ["anonymous", "user", "apiKey"].includes(k)), {
      message: "a comma-separated list of anonymous, user, apiKey",
    })
    .default([]),
  MAX_DEPTH: int(1, 100).default(12),
  MAX_ALIASES: int(0, 1000).default(15),
  // The most one operation may cost (features/limits/cost.ts: each field 1, a connection's
  // selection times its page size, a list's times 10). A page of 100 events costs about 2000;
  // nested pages of 100 multiply and are refused.
  MAX_COST: int(1, 1_000_000).default(20_000),
  // Budgets per window (features/limits/budgets.ts): each operation is charged its cost to its
  // caller (a user or an API key; a signed-out caller by address) and to its address. A
  // window starts with a key's first charge and ends RATE_LIMIT_WINDOW_SECONDS later.
  RATE_LIMIT_WINDOW_SECONDS: int(1, 86_400).default(60),
  RATE_LIMIT_POINTS: int(1, 1_000_000_000).default(50_000),
  RATE_LIMIT_ANONYMOUS_POINTS: int(1, 1_000_000_000).default(5_000),
  RATE_LIMIT_ADDRESS_POINTS: int(1, 1_000_000_000).default(250_000),
  // Sign-in, registration, password reset, verification mails, invitations and API keys:
  // "attempts/seconds" per account (email or user) and per address, for each action.
  AUTH_RATE_LIMIT_ACCOUNT: rate.prefault("10/900"),
  AUTH_RATE_LIMIT_ADDRESS: rate.prefault("100/900"),
  MAX_TOKENS: int(10, 100_000).default(2000),
  MAX_DIRECTIVES: int(0, 1000).default(50),
  // Argument values, variables and literals alike, checked before anything runs. A list may hold
  // at least the 1000 events of an eventRecordBatch; nesting stays far below the ~120 levels
  // past which the database refuses a JSON value (the audit trail stores inputs as JSON).
  // Counted from the argument: 40 leaves the 32 levels a JSON value may nest (event details,
  // workflow definitions) room for the input objects and lists around it.
  MAX_INPUT_DEPTH: int(4, 64).default(40),
  MAX_INPUT_VALUES: int(1000, 10_000_000).default(100_000),
  MAX_LIST_ITEMS: int(1000, 1_000_000).default(1000),
  MAX_BODY_BYTES: int(1024, 100 * 1024 * 1024).default(1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),
  PGLITE_OPEN_TIMEOUT_MS: int(100, 600_000).default(30_000),
  ANALYSIS_CONCURRENCY: int(1, 64).default(2),
  ANALYSIS_POLL_MS: int(100, 3_600_000).default(10_000),
  SUGGESTION_DEBOUNCE_MS: int(0, 600_000).default(2_000),
  UPLOAD_MAX_BYTES: int(1024, 1024 * 1024 * 1024).default(20 * 1024 * 1024),
  IMPORT_MAX_LINES: int(1, 1_000_000).default(100_000),
  // An upload still PROCESSING whose process has not renewed it for this long was interrupted
  // (its process killed): the leader's sweep fails it and deletes what it stored.
  IMPORT_STALE_MS: int(1_000, 3_600_000).default(120_000),
  // kid:base64-32-bytes pairs; the first seals, all open (rotation).
  SECRETS_KEYS: z.string().optional(),
  // host, *.domain, IP, host:port, host:* (any port); refused at start when malformed.
  CONNECTOR_ALLOWED_HOSTS: list
    .superRefine((entries, ctx) => {
      for (const [i, entry] of entries.entries()) {
        try {
          parseEntry(entry);
        } catch {
          ctx.addIssue({ code: "custom", message: `entry ${i + 1} is not host, *.domain, IP, host:port or host:*` });
        }
      }
    })
    .optional(),
  CONNECTOR_TIMEOUT_MS: int(100, 120_000).default(10_000),
  EXECUTION_CONCURRENCY: int(1, 256).default(4),
  EXECUTION_ORG_LIMIT: int(1, 1000).default(5),
  EXECUTION_POLL_MS: int(50, 600_000).default(1_000),
  EXECUTION_HEARTBEAT_MS: int(50, 60_000).default(2_000),
  EXECUTION_STALE_MS: int(200, 3_600_000).default(15_000),
  EXECUTION_MAX_ATTEMPTS: int(1, 10).default(2),
  // false: this API instance leaves background work to `npm run worker` processes.
  JOBS_ENABLED: bool.default(true),
  // The scheduler leader's lease: renewed every third of it, given up a tenth before it could
  // lapse; a dead leader's is taken within TTL + TTL/10 (about 5.5 s by default).
  SCHEDULER_LOCK_TTL_MS: int(300, 600_000).default(5_000),
  RETENTION_CRON: z.string().default("0 3 * * *"),
  // Live updates: how long (and how many, per organization and feed) events are kept for
  // clients that resume, and the limits of the WebSocket transport.
  LIVE_RETENTION_SECONDS: int(1, 7 * 86_400).default(3_600),
  LIVE_RETENTION_EVENTS: int(10, 1_000_000).default(10_000),
  LIVE_MAX_QUEUE: int(1, 1_000).default(1_000),
  WS_KEEPALIVE_MS: int(0, 600_000).default(12_000),
  WS_INIT_TIMEOUT_MS: int(100, 600_000).default(5_000),
  WS_MAX_CONNECTIONS_PER_USER: int(1, 100_000).default(20),
  WS_MAX_CONNECTIONS_PER_IP: int(1, 100_000).default(200),
  WS_MAX_SUBSCRIPTIONS: int(1, 10_000).default(50),
  WS_MAX_MESSAGE_BYTES: int(256, 16 * 1024 * 1024).default(64 * 1024),
  // Connects whose credentials are checked at once per instance, and how many more may wait.
  WS_CONNECT_CONCURRENCY: int(1, 10_000).default(32),
  WS_CONNECT_QUEUE: int(0, 1_000_000).default(10_000),
  // GET /metrics: with a token, only to `Authorization: Bearer <token>`; without one, served
  // openly outside production and, in production, only when METRICS_PUBLIC=true (else 404).
  METRICS_TOKEN: z
    .string()
    .regex(/^[\x21-\x7e]{16,}$/, "must be 16 or more printable characters without spaces, e.g. $(openssl rand -hex 32)")
    .optional(),
  METRICS_PUBLIC: bool.optional(),
  // Distinct operation names given series of their own; past them, "other" (clients choose names).
  METRICS_MAX_OPERATION_NAMES: int(0, 10_000).default(200),
});

export interface JwtKey {
  kid: string;
  secret: string;
}

export type Config = ReturnType<typeof toConfig>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Configuration refused:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Validates the environment. Throws ConfigError naming every variable at fault and its fix. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env) {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    // Values are never echoed: a mistyped URL or key would print its secret.
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`));
  }
  const config = toConfig(parsed.data);
  const problems = config.production ? productionProblems(parsed.data, config) : [];
  if (!Array.isArray(config.secretsKeys)) {
    problems.push(`SECRETS_KEYS: ${config.secretsKeys.invalid}, e.g. SECRETS_KEYS="k1:$(openssl rand -base64 32)"`);
  } else if (config.secretsKeys.length === 0 && (config.production || config.mode === "services")) {
    // Integration secrets sealed with a key only one instance (or one process) knows would be lost.
    problems.push(
      'SECRETS_KEYS is not set. Integration secrets are encrypted with it: SECRETS_KEYS="k1:$(openssl rand -base64 32)"',
    );
  }
  if (parsed.data.METRICS_TOKEN && parsed.data.METRICS_PUBLIC) {
    // Which was meant? Serving openly would silently drop the token an operator set.
    problems.push(
      "METRICS_TOKEN and METRICS_PUBLIC=true are both set. Keep the token, or unset it to serve /metrics openly.",
    );
  }
  if (config.mode === "services" && config.jwt.ephemeral) {
    // Each replica would sign with its own random key and refuse the others' tokens.
    problems.push("JWT_KEYS is not set. The services mode runs several instances, which must share one key ring.");
  }
  if (!config.production && Boolean(parsed.data.DATABASE_URL) !== Boolean(parsed.data.REDIS_URL)) {
    problems.push(
      `${parsed.data.DATABASE_URL ? "REDIS_URL" : "DATABASE_URL"} is not set. The services mode needs both DATABASE_URL and REDIS_URL; unset both for the embedded mode.`,
    );
  }
  if (config.timeouts.headersMs > config.timeouts.requestMs) {
    problems.push("HEADERS_TIMEOUT_MS is above REQUEST_TIMEOUT_MS: the headers are part of the request.");
  }
  if (problems.length) throw new ConfigError(problems);
  return config;
}

function toConfig(e: z.infer<typeof envSchema>) {
  const production = e.NODE_ENV === "production";
  const jwtKeys = parseJwtKeys(e.JWT_KEYS);
  // Outside production a missing key ring gets a random key: tokens end with the process.
  const ephemeralJwtKey = jwtKeys.length === 0 && !production;
  if (ephemeralJwtKey) jwtKeys.push({ kid: "ephemeral", secret: randomBytes(48).toString("base64url") });
  const dataDir = path.resolve(e.DATA_DIR);
  return {
    env: e.NODE_ENV,
    production,
    host: e.HOST,
    port: e.PORT,
    dataDir,
    uploadDir: path.resolve(e.UPLOAD_DIR ?? path.join(dataDir, "uploads")),
    // Both set: PostgreSQL + Redis. Neither: embedded. One alone is refused below.
    mode: e.DATABASE_URL && e.REDIS_URL ? ("services" as const) : ("embedded" as const),
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    database: {
      connectTimeoutMs: e.DATABASE_CONNECT_TIMEOUT_MS,
      statementTimeoutMs: e.DATABASE_STATEMENT_TIMEOUT_MS,
      poolMaxWaiting: e.DATABASE_POOL_MAX_WAITING,
      breakerFailures: e.DATABASE_BREAKER_FAILURES,
      breakerResetMs: e.DATABASE_BREAKER_RESET_MS,
      preparedStatements: e.DATABASE_PREPARED_STATEMENTS,
    },
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    jwt: {
      keys: jwtKeys,
      ephemeral: ephemeralJwtKey,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      accessTtlSeconds: e.JWT_ACCESS_TTL_SECONDS,
    },
    refreshTokenTtlDays: e.REFRESH_TOKEN_TTL_DAYS,
    passwordHashLogN: e.PASSWORD_HASH_LOG_N,
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM },
    appUrl: e.APP_URL.replace(/\/$/, ""),
    trustProxy: e.TRUST_PROXY,
    corsOrigins: e.CORS_ORIGINS ?? ["*"],
    logLevel: e.LOG_LEVEL,
    graphiql: e.GRAPHIQL ?? !production,
    introspection: e.INTROSPECTION ?? (production ? "authenticated" : "public"),
    suggestions: e.GRAPHQL_SUGGESTIONS ?? !production,
    hstsMaxAge: e.HSTS_MAX_AGE ?? (production ? 31_536_000 : 0),
    timeouts: { headersMs: e.HEADERS_TIMEOUT_MS, requestMs: e.REQUEST_TIMEOUT_MS, operationMs: e.OPERATION_TIMEOUT_MS },
    responseCache: {
      enabled: e.RESPONSE_CACHE,
      ttlSeconds: e.RESPONSE_CACHE_TTL_SECONDS,
      maxEntries: e.RESPONSE_CACHE_MAX_ENTRIES,
      maxEntryBytes: e.RESPONSE_CACHE_MAX_ENTRY_BYTES,
    },
    documents: {
      persistedQueries: e.PERSISTED_QUERIES,
      persistedTtlSeconds: e.PERSISTED_QUERIES_TTL_SECONDS,
      trustedFiles: e.TRUSTED_DOCUMENTS.map((file) => path.resolve(file)),
      trustedOnly: e.TRUSTED_DOCUMENTS_ONLY as CallerKind[],
    },
    limits: {
      maxDepth: e.MAX_DEPTH,
      maxAliases: e.MAX_ALIASES,
      maxCost: e.MAX_COST,
      maxTokens: e.MAX_TOKENS,
      maxDirectives: e.MAX_DIRECTIVES,
      maxInputDepth: e.MAX_INPUT_DEPTH,
      maxInputValues: e.MAX_INPUT_VALUES,
      maxListItems: e.MAX_LIST_ITEMS,
    },
    rateLimits: {
      windowSeconds: e.RATE_LIMIT_WINDOW_SECONDS,
      points: e.RATE_LIMIT_POINTS,
      anonymousPoints: e.RATE_LIMIT_ANONYMOUS_POINTS,
      addressPoints: e.RATE_LIMIT_ADDRESS_POINTS,
      authAccount: e.AUTH_RATE_LIMIT_ACCOUNT,
      authAddress: e.AUTH_RATE_LIMIT_ADDRESS,
    },
    maxBodyBytes: e.MAX_BODY_BYTES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    pgliteOpenTimeoutMs: e.PGLITE_OPEN_TIMEOUT_MS,
    analysis: {
      concurrency: e.ANALYSIS_CONCURRENCY,
      pollMs: e.ANALYSIS_POLL_MS,
      suggestionDebounceMs: e.SUGGESTION_DEBOUNCE_MS,
    },
    uploads: { maxBytes: e.UPLOAD_MAX_BYTES, maxImportLines: e.IMPORT_MAX_LINES, staleMs: e.IMPORT_STALE_MS },
    secretsKeys: parseSecretsKeys(e.SECRETS_KEYS),
    connectors: {
      allowedHosts: e.CONNECTOR_ALLOWED_HOSTS ?? DEFAULT_CONNECTOR_HOSTS,
      timeoutMs: e.CONNECTOR_TIMEOUT_MS,
    },
    jobsEnabled: e.JOBS_ENABLED,
    scheduler: { lockTtlMs: e.SCHEDULER_LOCK_TTL_MS, retentionCron: e.RETENTION_CRON },
    live: {
      retentionMs: e.LIVE_RETENTION_SECONDS * 1000,
      retentionEvents: e.LIVE_RETENTION_EVENTS,
      maxQueue: e.LIVE_MAX_QUEUE,
    },
    ws: {
      keepAliveMs: e.WS_KEEPALIVE_MS,
      initTimeoutMs: e.WS_INIT_TIMEOUT_MS,
      maxConnectionsPerUser: e.WS_MAX_CONNECTIONS_PER_USER,
      maxConnectionsPerIp: e.WS_MAX_CONNECTIONS_PER_IP,
      maxSubscriptions: e.WS_MAX_SUBSCRIPTIONS,
      maxMessageBytes: e.WS_MAX_MESSAGE_BYTES,
      connectConcurrency: e.WS_CONNECT_CONCURRENCY,
      connectQueue: e.WS_CONNECT_QUEUE,
    },
    metrics: {
      token: e.METRICS_TOKEN,
      public: e.METRICS_PUBLIC ?? !production,
      maxOperationNames: e.METRICS_MAX_OPERATION_NAMES,
    },
    executions: {
      concurrency: e.EXECUTION_CONCURRENCY,
      perOrganization: e.EXECUTION_ORG_LIMIT,
      pollMs: e.EXECUTION_POLL_MS,
      heartbeatMs: e.EXECUTION_HEARTBEAT_MS,
      staleMs: e.EXECUTION_STALE_MS,
      maxAttempts: e.EXECUTION_MAX_ATTEMPTS,
    },
  };
}

/** The services' own API hosts: connectors may call these unless CONNECTOR_ALLOWED_HOSTS says otherwise. */
const DEFAULT_CONNECTOR_HOSTS = [
  "api.github.com",
  "hooks.slack.com",
  "www.googleapis.com",
  "api.dropboxapi.com",
  "content.dropboxapi.com",
  "*.amazonaws.com",
];

export interface SecretsKey {
  kid: string;
  key: Buffer;
}

/** SECRETS_KEYS="k2:<base64 of 32 bytes>,k1:<…>": the first seals new secrets, every one opens. */
function parseSecretsKeys(raw: string | undefined): SecretsKey[] | { invalid: string } {
  if (!raw) return [];
  const keys: SecretsKey[] = [];
  for (const entry of raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const at = entry.indexOf(":");
    const key = Buffer.from(entry.slice(at + 1), "base64");
    if (at <= 0 || key.length !== 32 || !/^[\w-]{1,32}$/.test(entry.slice(0, at))) {
      return { invalid: "each entry must be kid:<base64 of 32 random bytes>, the kid letters, digits, - or _" };
    }
    if (keys.some((k) => k.kid === entry.slice(0, at))) return { invalid: "a key id appears twice" };
    keys.push({ kid: entry.slice(0, at), key });
  }
  return keys;
}

/** JWT_KEYS="kid1:secret1,kid2:secret2": the first key signs, all of them verify. */
function parseJwtKeys(raw: string | undefined): JwtKey[] {
  if (!raw) return [];
  return raw
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const at = entry.indexOf(":");
      return at > 0 ? { kid: entry.slice(0, at), secret: entry.slice(at + 1) } : { kid: "", secret: entry };
    });
}

function productionProblems(e: z.infer<typeof envSchema>, config: Config): string[] {
  const problems: string[] = [];
  const keyHint = `Set JWT_KEYS to kid:secret pairs separated by commas, each secret at least ${MIN_SECRET_LENGTH} characters, e.g. JWT_KEYS="k1:$(openssl rand -base64 48)"`;
  if (config.jwt.keys.length === 0) {
    problems.push(`JWT_KEYS is not set. ${keyHint}`);
  }
  const seen = new Set<string>();
  for (const key of config.jwt.keys) {
    if (!key.kid) problems.push(`JWT_KEYS has an entry without a key id. ${keyHint}`);
    else if (seen.has(key.kid)) problems.push(`JWT_KEYS has the key id "${key.kid}" twice; key ids must be unique.`);
    else if (
      key.secret.length < MIN_SECRET_LENGTH ||
      new Set(key.secret).size < MIN_DISTINCT_CHARACTERS ||
      WELL_KNOWN_SECRET.test(key.secret)
    ) {
      problems.push(
        `JWT_KEYS key "${key.kid}" is weak (under ${MIN_SECRET_LENGTH} characters, too few distinct characters, or a well-known value). ${keyHint}`,
      );
    }
    seen.add(key.kid);
  }
  if (!e.CORS_ORIGINS || e.CORS_ORIGINS.length === 0) {
    problems.push(
      'CORS_ORIGINS is not set. Set it to the web app\'s origins, e.g. CORS_ORIGINS="https://app.example.com"',
    );
  } else if (e.CORS_ORIGINS.includes("*")) {
    problems.push(
      'CORS_ORIGINS contains "*". List the allowed origins explicitly, e.g. CORS_ORIGINS="https://app.example.com"',
    );
  }
  if (!e.DATABASE_URL) {
    problems.push(
      'DATABASE_URL is not set. Production runs on PostgreSQL: DATABASE_URL="postgresql://user:pass@host:5432/floyo"',
    );
  }
  if (!e.REDIS_URL) {
    problems.push(
      'REDIS_URL is not set. Production shares pub/sub, locks and limits through Redis: REDIS_URL="redis://host:6379"',
    );
  }
  if (!e.SMTP_URL) {
    problems.push(
      'SMTP_URL is not set. Production mails verification and reset links: SMTP_URL="smtp://user:pass@smtp.example.com:587"',
    );
  }
  if (e.PASSWORD_HASH_LOG_N < 15) {
    problems.push(
      "PASSWORD_HASH_LOG_N is below 15. Production password hashes need scrypt N=2^15 or more: unset it, or set 15 or more.",
    );
  }
  return problems;
}
