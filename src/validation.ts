// Input validation for services: zod schemas, failures turned into one ValidationError that
// names every offending field by its path in the input.
import type { z } from "zod";
import { ValidationError } from "./errors.ts";

export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fieldErrors = result.error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "input",
    message: issue.message,
  }));
  throw new ValidationError(
    `Invalid input: ${fieldErrors.map((f) => `${f.path}: ${f.message}`).join("; ")}`,
    fieldErrors,
  );
}

/**
 * Longest text a search filter takes. Names and paths fit; a megabyte of pattern is the
 * caller's mistake (or a probe), refused rather than matched against every row.
 */
export const MAX_SEARCH_LENGTH = 500;

/**
 * A case-insensitive "contains" condition on the text itself: LIKE's wildcards (% and _) and
 * its escape character taken literally (Prisma passes them through), so "%" finds a literal
 * percent sign, not every row. `path` names the filter field in the error.
 */
export function containsText(text: string, path: string) {
  if (text.length > MAX_SEARCH_LENGTH) {
    const message = `must be at most ${MAX_SEARCH_LENGTH} characters`;
    throw new ValidationError(`Invalid input: ${path}: ${message}`, [{ path, message }]);
  }
  return { contains: text.replace(/[\\%_]/g, (c) => `\\${c}`), mode: "insensitive" as const };
}
