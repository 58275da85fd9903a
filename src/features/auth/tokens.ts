// Access tokens: short-lived JWTs signed by the first key of the ring, verified by any key
// still in it (matched by `kid`), so keys rotate without signing anyone out.
import { createSecretKey, type KeyObject, randomUUID } from "node:crypto";
import jwt from "jsonwebtoken";
import { z } from "zod";
import type { Config, JwtKey } from "../../config.ts";
import { UnauthenticatedError } from "../../errors.ts";

const ALGORITHM = "HS256" as const;

// jsonwebtoken turns a string secret into a key object on every call (a fifth of the CPU of
// an authenticated request, measured); each key is made once instead.
const keyObjects = new WeakMap<JwtKey, KeyObject>();
function keyObject(key: JwtKey): KeyObject {
  let object = keyObjects.get(key);
  if (!object) {
    object = createSecretKey(Buffer.from(key.secret));
    keyObjects.set(key, object);
  }
  return object;
}

/**
 * Tokens already verified, until they expire: a client sends the same token for its whole
 * lifetime, so the signature is checked once, not on every request. Bounded; the oldest go first.
 */
const VERIFIED_MAX = 10_000;
// Per key ring: a ring without a key must not accept what a ring with it verified.
const verifiedByRing = new WeakMap<Config["jwt"], Map<string, AccessClaims & { expMs: number }>>();

/**
 * The whole claim set, checked once after the signature: a token we signed with a claim of the
 * wrong shape (a session id that is not a UUID, a subject that is not a string, no expiry) is
 * an invalid token (401), never a value that reaches a query and fails there (500). Both ids
 * are UUIDs, which also keeps a session id from ever naming another cache entry ("*", "key:…").
 */
const accessClaims = z.object({
  /** user id */
  sub: z.uuid(),
  /** session id: revoking the session ends its access tokens */
  sid: z.uuid(),
  /** Required: a token without an expiry would be valid forever. */
  exp: z.number().int().positive(),
});
const downloadClaims = accessClaims.extend({
  purpose: z.string(),
  // Signed by us, and checked again by the route that uses them.
  params: z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v)).optional(),
});

export type AccessClaims = Pick<z.infer<typeof accessClaims>, "sub" | "sid">;

export function signAccessToken(claims: AccessClaims, jwtConfig: Config["jwt"]): { token: string; expiresAt: Date } {
  const key = jwtConfig.keys[0];
  if (!key) throw new Error("no JWT signing key configured");
  const token = jwt.sign({ sid: claims.sid }, keyObject(key), {
    algorithm: ALGORITHM,
    keyid: key.kid,
    subject: claims.sub,
    issuer: jwtConfig.issuer,
    audience: jwtConfig.audience,
    expiresIn: jwtConfig.accessTtlSeconds,
  });
  return { token, expiresAt: new Date(Date.now() + jwtConfig.accessTtlSeconds * 1000) };
}

/** The claims, and when the token expires (epoch milliseconds). */
export function verifyAccessToken(token: string, jwtConfig: Config["jwt"]): AccessClaims & { expMs: number } {
  let verified = verifiedByRing.get(jwtConfig);
  if (!verified) {
    verified = new Map();
    verifiedByRing.set(jwtConfig, verified);
  }
  const hit = verified.get(token);
  if (hit) {
    if (hit.expMs > Date.now()) return hit;
    verified.delete(token);
  }
  const claims = verifyUncached(token, jwtConfig);
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
  verified.set(token, claims);
  return claims;
}

function verifyUncached(token: string, jwtConfig: Config["jwt"]): AccessClaims & { expMs: number } {
  const decoded = jwt.decode(token, { complete: true });
  if (!decoded || typeof decoded.payload === "string") {
    throw new UnauthenticatedError("TOKEN_MALFORMED", "The access token is not a JWT.");
  }
  // Pinning the algorithm refuses `none` and RS/HS confusion before any key is tried.
  if (decoded.header.alg !== ALGORITHM) {
    throw new UnauthenticatedError("TOKEN_ALGORITHM_REJECTED", `Access tokens must be signed with ${ALGORITHM}.`);
  }
  const key = jwtConfig.keys.find((k) => k.kid === decoded.header.kid);
  if (!key) {
    throw new UnauthenticatedError(
      "TOKEN_KEY_UNKNOWN",
      "The access token was signed with a key that is no longer accepted.",
    );
  }
  try {
    const payload = jwt.verify(token, keyObject(key), {
      algorithms: [ALGORITHM],
      issuer: jwtConfig.issuer,
      audience: jwtConfig.audience,
    }) as jwt.JwtPayload;
    const claims = accessClaims.safeParse(payload);
    if (!claims.success) throw new UnauthenticatedError("TOKEN_INVALID", "The access token's claims are malformed.");
    return { sub: claims.data.sub, sid: claims.data.sid, expMs: claims.data.exp * 1000 };
  } catch (err) {
    if (err instanceof UnauthenticatedError) throw err;
    if (err instanceof jwt.TokenExpiredError) {
      throw new UnauthenticatedError("TOKEN_EXPIRED", "The access token has expired; refresh it.");
    }
    if (err instanceof jwt.NotBeforeError) {
      throw new UnauthenticatedError("TOKEN_NOT_YET_VALID", "The access token is not valid yet.");
    }
    const message = (err as Error).message;
    if (/audience/.test(message))
      throw new UnauthenticatedError("TOKEN_AUDIENCE_INVALID", "The access token is for another audience.");
    if (/issuer/.test(message))
      throw new UnauthenticatedError("TOKEN_ISSUER_INVALID", "The access token is from another issuer.");
    throw new UnauthenticatedError("TOKEN_INVALID", "The access token is invalid.");
  }
}

const DOWNLOAD_TTL_SECONDS = 300;

/** A short-lived, single-purpose token for a download link a browser can follow. */
export function signDownloadToken(
  claims: AccessClaims & { purpose: string; params?: Record<string, unknown> },
  jwtConfig: Config["jwt"],
) {
  const key = jwtConfig.keys[0];
  if (!key) throw new Error("no JWT signing key configured");
  const token = jwt.sign({ sid: claims.sid, purpose: claims.purpose, params: claims.params }, keyObject(key), {
    algorithm: ALGORITHM,
    keyid: key.kid,
    subject: claims.sub,
    issuer: jwtConfig.issuer,
    audience: `${jwtConfig.audience}:download`,
    expiresIn: DOWNLOAD_TTL_SECONDS,
    // Each link its own: a link is spent on first use (downloads.ts), and two asked for in the
    // same second must not be one.
    jwtid: randomUUID(),
  });
  return { token, expiresAt: new Date(Date.now() + DOWNLOAD_TTL_SECONDS * 1000) };
}

/** The claims, and the parameters the link was signed with (what to export). */
export function verifyDownloadToken(
  token: string,
  purpose: string,
  jwtConfig: Config["jwt"],
): AccessClaims & { params: Record<string, unknown>; expMs: number } {
  const decoded = jwt.decode(token, { complete: true });
  const key = jwtConfig.keys.find((k) => k.kid === decoded?.header.kid);
  if (!decoded || decoded.header.alg !== ALGORITHM || !key) {
    throw new UnauthenticatedError("TOKEN_INVALID", "The download link is invalid.");
  }
  try {
    const payload = jwt.verify(token, keyObject(key), {
      algorithms: [ALGORITHM],
      issuer: jwtConfig.issuer,
      audience: `${jwtConfig.audience}:download`,
    }) as jwt.JwtPayload;
    const claims = downloadClaims.safeParse(payload);
    if (!claims.success || claims.data.purpose !== purpose) throw new Error("malformed claims or wrong purpose");
    return {
      sub: claims.data.sub,
      sid: claims.data.sid,
      params: claims.data.params ?? {},
      expMs: claims.data.exp * 1000,
    };
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError)
      throw new UnauthenticatedError("TOKEN_EXPIRED", "The download link has expired.");
    throw new UnauthenticatedError("TOKEN_INVALID", "The download link is invalid.");
  }
}
