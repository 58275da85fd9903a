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
