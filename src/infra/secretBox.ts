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
  seal(secrets: Record<string, string>): Sealed;
  open(ciphertext: string): Record<string, string>;
}

export class SecretKeyMissingError extends Error {}

export function createSecretBox(keys: SecretsKey[]): SecretBox {
  const [current] = keys;
  if (!current) throw new Error("no secrets key");
  const byId = new Map(keys.map((k) => [k.kid, k.key]));
  return {
    currentKeyId: current.kid,
    seal(secrets) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", current.key, iv);
      // The key id is authenticated too: a ciphertext moved under another id does not open.
      cipher.setAAD(Buffer.from(current.kid));
      const body = Buffer.concat([cipher.update(JSON.stringify(secrets), "utf8"), cipher.final()]);
      const parts = [iv, cipher.getAuthTag(), body].map((b) => b.toString("base64url"));
      return { ciphertext: `v1.${current.kid}.${parts.join(".")}`, keyId: current.kid };
    },
    open(ciphertext) {
      const [version, kid, iv, tag, body] = ciphertext.split(".");
      const key = kid ? byId.get(kid) : undefined;
      if (version !== "v1" || !key || !iv || !tag || body === undefined) {
        throw new SecretKeyMissingError(`no key "${kid}" in SECRETS_KEYS opens this secret`);
      }
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(iv, "base64url"));
      decipher.setAAD(Buffer.from(kid as string));
      decipher.setAuthTag(Buffer.from(tag, "base64url"));
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
