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
