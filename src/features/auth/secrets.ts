// Opaque secrets handed to clients (refresh tokens, mailed tokens, API keys): random, shown
// once, and stored only as a SHA-256 digest, so a database leak reveals none of them.
import { createHash, randomBytes } from "node:crypto";

export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString("base64url");
}

export function digest(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}
