// Who pays for what. Every operation is charged its cost to two buckets: its caller's (an API
// key, a user, or a signed-out caller by address) and its address's, which everyone calling
// from there shares. Sensitive actions (sign-in, registration, password reset, verification
// mails, invitations, API keys) also count attempts per account and per address, for each
// action, with stricter limits. Counters are rate-limiter-flexible's, in Redis or in process
// (infra/rateLimit.ts): a window starts with a key's first charge and ends a fixed time later.
import { type RateLimiterAbstract, RateLimiterRes } from "rate-limiter-flexible";
import type { Config } from "../../config.ts";
import type { Logger } from "../../infra/logger.ts";
import type { Metrics } from "../../infra/metrics.ts";
import type { LimiterFactory, LimiterRule } from "../../infra/rateLimit.ts";
import { RateLimitedError } from "./limits.errors.ts";

export const AUTH_ACTIONS = [
  "login",
  "register",
  "passwordForgot",
  "passwordReset",
  "emailVerificationResend",
  "invite",
  "apiKeyCreate",
] as const;
export type AuthAction = (typeof AUTH_ACTIONS)[number];

/** A bucket's state after a charge: what the RateLimit headers and extensions.cost report. */
export interface Quota {
  bucket: string;
  limit: number;
  remaining: number;
  /** Epoch ms at which the bucket's window ends and it is full again. */
  resetAt: number;
}

export type Charge = { ok: true; quota: Quota } | { ok: false; quota: Quota; retryAfter: number };

export interface Caller {
  kind: "apiKey" | "user" | "anonymous";
  /** The key's or user's id; null when anonymous. */
  id: string | null;
  ip: string | null;
}

interface Bucket {
  name: string;
  rule: LimiterRule;
  limiter: RateLimiterAbstract;
}

/** Addresses whose last known state is kept for the headers of requests answered at once. */
const KNOWN_ADDRESSES = 10_000;

export function createBudgets(deps: {
  config: Config["rateLimits"];
  limiters: LimiterFactory;
  metrics: Metrics;
  logger: Logger;
}) {
  const { config, limiters, metrics, logger } = deps;
  const bucket = (name: string, rule: LimiterRule): Bucket => ({ name, rule, limiter: limiters(name, rule) });
  const per = (points: number) => ({ points, durationSeconds: config.windowSeconds });
  const callers = {
    apiKey: bucket("apiKey", per(config.points)),
    user: bucket("user", per(config.points)),
    anonymous: bucket("anonymous", per(config.anonymousPoints)),
  };
  const address = bucket("address", per(config.addressPoints));
  const attempts = new Map(
    AUTH_ACTIONS.map((action) => [
      action,
      {
        account: bucket(`${action}:account`, config.authAccount),
        address: bucket(`${action}:address`, config.authAddress),
      },
    ]),
  );
  // The address bucket as this instance last saw it, for answers given before anything could be
  // awaited (documents that do not parse or validate). Insertion order makes it a small LRU.
  const known = new Map<string, Quota>();
  const remember = (key: string, quota: Quota) => {
    known.delete(key);
    known.set(key, quota);
    if (known.size > KNOWN_ADDRESSES) known.delete(known.keys().next().value as string);
  };

  const full = (b: Bucket): Quota => ({
    bucket: b.name,
    limit: b.rule.points,
    remaining: b.rule.points,
    resetAt: Date.now() + b.rule.durationSeconds * 1000,
  });
  const quotaOf = (b: Bucket, res: RateLimiterRes, points: number, refused: boolean): Quota => ({
    bucket: b.name,
    limit: b.rule.points,
    // A refused charge is given back: what is left is what was left before it.
    remaining: Math.max(0, b.rule.points - (refused ? res.consumedPoints - points : res.consumedPoints)),
    resetAt: Date.now() + Math.max(0, res.msBeforeNext),
  });

  /**
   * Takes points from one key. A counter that fails (its store away and the in-memory
   * insurance failing too) lets the request through: a limiter must never refuse everyone.
   */
  async function take(b: Bucket, key: string, points: number): Promise<Charge & { counted: boolean }> {
    let charge: Charge;
    try {
      const res = await b.limiter.consume(key, points);
      charge = { ok: true, quota: quotaOf(b, res, points, false) };
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) {
        logger.warn({ err: (err as Error)?.message, bucket: b.name }, "rate limit not checked");
        return { ok: true, quota: full(b), counted: false };
      }
      const retryAfter = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      charge = { ok: false, quota: quotaOf(b, err, points, true), retryAfter };
    }
    if (b === address) remember(key, charge.quota);
    return { ...charge, counted: true };
  }

  async function giveBack(b: Bucket, key: string, points: number) {
    try {
      await b.limiter.reward(key, points);
    } catch (err) {
      logger.warn({ err: (err as Error)?.message, bucket: b.name }, "rate limit points not given back");
    }
  }

  /** The first refusal, else the bucket closest to refusing (the one a client must watch). */
  const decisive = <C extends Charge>(charges: C[]): C =>
    charges.find((c) => !c.ok) ?? charges.reduce((a, b) => (b.quota.remaining < a.quota.remaining ? b : a));

  return {
    /** The most one operation may cost this caller: more than a bucket holds could never run. */
    maxCostFor(caller: Caller, maxCost: number) {
      return Math.min(maxCost, callers[caller.kind].rule.points, address.rule.points);
    },

    /** Charges an operation's cost (at least 1) to its caller and address; refused, it costs nothing. */
    async charge(caller: Caller, cost: number): Promise<Charge> {
      const points = Math.max(1, Math.ceil(cost));
      const taken: [Bucket, string][] = [
        [callers[caller.kind], caller.kind === "anonymous" ? keyOf(caller.ip) : (caller.id ?? keyOf(caller.ip))],
        [address, keyOf(caller.ip)],
      ];
      const charges = await Promise.all(taken.map(([b, key]) => take(b, key, points)));
      const { counted: _, ...result } = decisive(charges);
      if (result.ok) {
        metrics.costSpent.inc({ caller: caller.kind }, points);
      } else {
        metrics.rateLimitRejections.inc({ bucket: result.quota.bucket });
        await Promise.all(taken.map(([b, key], i) => (charges[i]?.counted ? giveBack(b, key, points) : undefined)));
      }
      return result;
    },

    /** One point to the address, for a request refused before it could run; never refused itself. */
    chargeAddress(ip: string | null): Promise<Charge> {
      return take(address, keyOf(ip), 1);
    },

    /** The address bucket as last seen here (full when unknown or past its window). */
    addressQuota(ip: string | null): Quota {
      const quota = known.get(keyOf(ip));
      return quota && quota.resetAt > Date.now() ? quota : full(address);
    },

    /**
     * Counts an attempt at a sensitive action against the account (a normalized email or a user
     * id; none when unknown yet) and the address. Throws RateLimitedError past either limit,
     * before the action reads or writes anything.
     */
    async attempt(action: AuthAction, who: { account?: string | null; ip: string | null }) {
      const pair = attempts.get(action);
      if (!pair) throw new Error(`unknown action ${action}`);
      const taken: [Bucket, string][] = [[pair.address, keyOf(who.ip)]];
      if (who.account) taken.push([pair.account, who.account]);
      const refused = (await Promise.all(taken.map(([b, key]) => take(b, key, 1)))).find((c) => !c.ok);
      if (refused && !refused.ok) {
        metrics.rateLimitRejections.inc({ bucket: refused.quota.bucket });
        throw new RateLimitedError(refused.quota.bucket, refused.retryAfter);
      }
    },

    /** A sign-in that succeeded does not count toward its account's lockout; failures do. */
    async succeeded(action: AuthAction, account: string) {
      const pair = attempts.get(action);
      if (pair) await giveBack(pair.account, account, 1);
    },
  };
}

export type Budgets = ReturnType<typeof createBudgets>;

/** Requests without a socket address (none expected) share one key rather than none. */
function keyOf(ip: string | null) {
  return ip ?? "unknown";
}
