// Text PostgreSQL cannot store, and characters that break logs and CSV: one definition for
// validating input and for making refused input storable in the audit trail.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, "g");

/** A lone surrogate is not Unicode at all: PostgreSQL refuses it. */
export const isWellFormed = (s: string) => !LONE_SURROGATE.test(s);

export const isControl = (c: string) => c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127;

/** Control characters, or a lone surrogate. */
export const hasControl = (s: string) => !isWellFormed(s) || [...s].some(isControl);

/** The text with what jsonb refuses (U+0000, lone surrogates) replaced by U+FFFD. */
export const storable = (s: string) => s.replaceAll("\u0000", "\uFFFD").replace(LONE_SURROGATES, "\uFFFD");
