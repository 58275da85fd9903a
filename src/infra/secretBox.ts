// Secrets at rest (integration credentials): AES-256-GCM under a key ring. The first key
// seals; every key opens, so a rotation is "put the new key first", then re-seal at leisure.
// In the embedded mode without SECRETS_KEYS, a key is made once and kept in DATA_DIR.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { SecretsKey } from "../config.ts";

export interface Sealed {
  ciphertext: string;
  keyId: string;
}

export interface SecretBox {
  readonly currentKeyId: string;
  /** `context` (the owning organization's id) is authenticated: a sealed blob moved elsewhere does not open. */
  seal(secrets: Record<string, string>, context: string): Sealed;
  open(ciphertext: string, context: string): Record<string, string>;
}

export class SecretKeyMissingError extends Error {}

export function createSecretBox(keys: SecretsKey[]): SecretBox {
  const [current] = keys;
  if (!current) throw new Error("no secrets key");
  const byId = new Map(keys.map((k) => [k.kid, k.key]));
  return {
    currentKeyId: current.kid,
    seal(secrets, context) {
      // A fresh random 96-bit IV every time: never reused under one key.
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current.key, iv, { authTagLength: 16 });
      // The key id and the owner are authenticated too.
      cipher.setAAD(Buffer.from(`${current.kid}|${context}`));
      const body = Buffer.concat([cipher.update(JSON.stringify(secrets), "utf8"), cipher.final()]);
      const parts = [iv, cipher.getAuthTag(), body].map((b) => b.toString("base64url"));
      return { ciphertext: `v1.${current.kid}.${parts.join(".")}`, keyId: current.kid };
    },
    open(ciphertext, context) {
      const [version, kid, iv, tag, body] = ciphertext.split(".");
      const key = kid ? byId.get(kid) : undefined;
      if (version !== "v1" || !key || !iv || !tag || body === undefined) {
        throw new SecretKeyMissingError(`no key "${kid}" in SECRETS_KEYS opens this secret`);
      }
      const authTag = Buffer.from(tag, "base64url");
      // Only full-length tags: a truncated one would be far easier to forge.
      if (authTag.length !== 16) throw new SecretKeyMissingError("the secret's authentication tag is malformed");
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"), { authTagLength: 16 });
      decipher.setAAD(Buffer.from(`${kid}|${context}`));
      decipher.setAuthTag(authTag);
      const plain = Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]);
      return JSON.parse(plain.toString("utf8")) as Record<string, string>;
    },
  };
}

/** The embedded mode's own key, made on first start and readable by this user only. */
export function embeddedSecretsKey(dataDir: string): SecretsKey {
  const file = path.join(dataDir, "secrets.key");
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString("base64"), { mode: 0o600, flag: "wx" });
  }
  return { kid: "embedded", key: Buffer.from(readFileSync(file, "utf8").trim(), "base64") };
}
