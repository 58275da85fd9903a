// Unique violations arrive in two shapes: Prisma's P2002, or (inside interactive transactions
// on the PGlite adapter) the driver's own error with PostgreSQL's code 23505.
import { Prisma } from "../generated/prisma/client.ts";

/** Describes the violated unique constraint (its fields or its name), or null for other errors. */
export function uniqueViolation(err: unknown): string | null {
  if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === "P2002") {
    return `${JSON.stringify(err.meta ?? {})} ${err.message}`;
  }
  const cause = (err as { cause?: { code?: string; message?: string; detail?: string } } | null)?.cause;
  if (cause?.code === "23505") return `${cause.message ?? ""} ${cause.detail ?? ""}`;
  return null;
}

/**
 * Text PostgreSQL cannot store (U+0000 in a string or JSON, in any argument): the caller's
 * input, not a failure of ours. Recognised by SQLSTATE 22021 / 22P05, or by the message
 * when a layer in between kept only that.
 */
export function unstorableText(err: unknown): boolean {
  for (
    let e = err as { code?: string; message?: string; cause?: unknown } | undefined, depth = 0;
    e && depth < 5;
    depth++
  ) {
    if (e.code === "22021" || e.code === "22P05") return true;
    if (/invalid byte sequence for encoding|unsupported Unicode escape sequence/.test(e.message ?? "")) return true;
    e = e.cause as typeof e;
  }
  return false;
}
