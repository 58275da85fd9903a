// Passwords: scrypt with a per-hash random salt; the parameters travel inside the hash, so
// they can be raised later without invalidating stored hashes.
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { ValidationError } from "../../errors.ts";

const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 128;
const COMMON = new Set([
  "password",
  "password1",
  "password123",
  "1234567890",
  "qwertyuiop",
  "letmein123",
  "iloveyou12",
]);

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, KEY_LENGTH, { N: 2 ** logN, r, p, maxmem: 256 * 2 ** logN * r }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

export async function hashPassword(password: string, logN: number): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, logN, 8, 1);
  return `scrypt$${logN}$8$1$${salt.toString("base64")}$${key.toString("base64")}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, logN, r, p, salt, key] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !key) return false;
  const expected = Buffer.from(key, "base64");
  const actual = await derive(password, Buffer.from(salt, "base64"), Number(logN), Number(r), Number(p));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A hash to verify against when the account does not exist, so that both paths cost the same. */
let decoy: Promise<string> | undefined;
export function decoyHash(logN: number) {
  decoy ??= hashPassword("decoy-password-never-matches", logN);
  return decoy;
}

export function assertStrongPassword(password: string, field = "password", email?: string) {
  const problems: string[] = [];
  if (password.length < MIN_PASSWORD_LENGTH) problems.push(`must be at least ${MIN_PASSWORD_LENGTH} characters`);
  if (password.length > MAX_PASSWORD_LENGTH) problems.push(`must be at most ${MAX_PASSWORD_LENGTH} characters`);
  if (new Set(password).size < 4) problems.push("must use more than three different characters");
  if (COMMON.has(password.toLowerCase())) problems.push("is too common");
  const local = email?.split("@")[0]?.toLowerCase();
  if (local && local.length >= 4 && password.toLowerCase().includes(local))
    problems.push("must not contain your email address");
  if (problems.length) {
    throw new ValidationError(
      `The password is too weak: it ${problems.join(", ")}.`,
      [{ path: field, message: problems.join(", ") }],
      "WEAK_PASSWORD",
    );
  }
}
