// Text PostgreSQL cannot store, and characters that break logs and CSV: one definition for
// validating input and for making refused input storable in the audit trail.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** A lone surrogate is not Unicode at all: PostgreSQL refuses it. (The engine's own check: no regex on the hot path.) */
export const isWellFormed = (s: string) => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

export const isControl = (c: string) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127;

/** Control characters, or a lone surrogate. */
export const hasControl = (s: string) => !isWellFormed(s) || [...s].some(isControl);

/** The text with what jsonb refuses (U+0000, lone surrogates) replaced by U+FFFD. */
export const storable = (s: string) => s.replaceAll("\u0000", "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");

/** How deep a stored JSON value (event details, a workflow definition) may nest. */
export const MAX_JSON_DEPTH = 32;

/**
 * The first place a JSON value holds what PostgreSQL's jsonb refuses (U+0000, a lone surrogate,
 * in a key or a value) or nests deeper than MAX_JSON_DEPTH: a field error, not a failed write.
 * Recursion stops at that depth, so no value can overflow it.
 */
export function unstorableJson(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | null {
  if (typeof value === "string") {
    return value.includes("\u0000") || !isWellFormed(value)
      ? { path, message: "contains a NUL character or a lone surrogate" }
      : null;
  }
  if (value === null || typeof value !== "object") return null;
  if (path.length > MAX_JSON_DEPTH) return { path, message: `nests deeper than ${MAX_JSON_DEPTH} levels` };
  for (const [k, v] of Object.entries(value)) {
    const at = [...path, Array.isArray(value) ? Number(k) : k];
    if (k.includes("\u0000") || !isWellFormed(k))
      return { path: at, message: "has a key with a NUL character or a lone surrogate" };
    const found = unstorableJson(v, at);
    if (found) return found;
  }
  return null;
}
