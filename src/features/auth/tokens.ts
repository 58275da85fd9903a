// Access tokens: short-lived JWTs signed by the first key of the ring, verified by any key
// still in it (matched by `kid`), so keys rotate without signing anyone out.
import jwt from "jsonwebtoken";
import type { Config } from "../../config.ts";
import { UnauthenticatedError } from "../../errors.ts";

const ALGORITHM = "HS256" as const;

export interface AccessClaims {
  /** user id */
  sub: string;
  /** session id: revoking the session ends its access tokens */
  sid?: string;
}

export function signAccessToken(claims: AccessClaims, jwtConfig: Config["jwt"]): string {
  const key = jwtConfig.keys[0];
  if (!key) throw new Error("no JWT signing key configured");
  return jwt.sign({ sid: claims.sid }, key.secret, {
    algorithm: ALGORITHM,
    keyid: key.kid,
    subject: claims.sub,
    issuer: jwtConfig.issuer,
    audience: jwtConfig.audience,
    expiresIn: jwtConfig.accessTtlSeconds,
  });
}

export function verifyAccessToken(token: string, jwtConfig: Config["jwt"]): AccessClaims {
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
    const payload = jwt.verify(token, key.secret, {
      algorithms: [ALGORITHM],
      issuer: jwtConfig.issuer,
      audience: jwtConfig.audience,
    }) as jwt.JwtPayload;
    if (!payload.sub) throw new UnauthenticatedError("TOKEN_INVALID", "The access token has no subject.");
    return { sub: payload.sub, sid: typeof payload.sid === "string" ? payload.sid : undefined };
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
