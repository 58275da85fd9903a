// The one mapping from thrown errors to what clients see. Domain errors keep their message
// and stable code; GraphQL's own errors (syntax, validation, limits) keep theirs; anything
// else is an unexpected failure: logged in full, shown as INTERNAL_SERVER_ERROR.
import { GraphQLError } from "graphql";
import { AppError, UnauthenticatedError } from "../errors.ts";
import { unstorableText } from "../infra/dbErrors.ts";
import { isUnavailable, RETRY_AFTER_SECONDS } from "../infra/unavailable.ts";

const HTTP_STATUS: Record<string, number> = {
  UNAUTHENTICATED: 401,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
};
/** A dependency out of reach: retry this request after a moment (the status and header say so too). */
const UNAVAILABLE_HTTP = { status: 503, headers: { "Retry-After": String(RETRY_AFTER_SECONDS) } };
// Yoga's multipart parser names a too-large file its own way; one code for one condition.
const RENAMED_CODES: Record<string, string> = { REQUEST_ENTITY_TOO_LARGE: "PAYLOAD_TOO_LARGE" };

/**
 * Longest message a client is shown. Messages quote input (graphql-js's variable coercion
 * quotes the whole value, twice): a 900 KB string must not come back as a 2 MB error.
 */
export const MAX_MESSAGE_LENGTH = 300;

export function toGraphQLError(error: unknown): GraphQLError {
  const mapped = map(error);
  return mapped.message.length > MAX_MESSAGE_LENGTH ? withMessage(mapped, clip(mapped.message)) : mapped;
}

/** A short prefix of a text that may be input, for a message: at most `max` characters (whole code points). */
export function clip(text: string, max = MAX_MESSAGE_LENGTH): string {
  if (text.length <= max) return text;
  // Not cutting a surrogate pair in two: a lone half is not valid UTF-8 in the response.
  const cut = /[\uD800-\uDBFF]/.test(text[max - 2] ?? "") ? max - 2 : max - 1;
  return `${text.slice(0, cut)}…`;
}

function map(error: unknown): GraphQLError {
  const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
  if (original instanceof AppError) {
    const status = original instanceof UnauthenticatedError ? 401 : HTTP_STATUS[original.code];
    return new GraphQLError(original.message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: {
        code: original.code,
        ...original.details,
        ...clippedFieldErrors(original.details?.fieldErrors),
        ...(status === 503 ? { http: UNAVAILABLE_HTTP } : status ? { http: { status, ...retryAfter(original) } } : {}),
      },
    });
  }
  // Variables that do not fit their types (a bad enum value, a malformed id or file) are the
  // caller's input, like any other invalid input.
  if (error instanceof GraphQLError && /^Variable "\$[^"]+" got invalid value/.test(error.message)) {
    return withCode(error, "BAD_USER_INPUT");
  }
  if (error instanceof GraphQLError && !error.originalError) {
    // Parse and validation errors: the client's mistake, already worded for it.
    const renamed = RENAMED_CODES[String(error.extensions.code)];
    if (renamed) return withCode(error, renamed);
    if (error.extensions.code) return error;
    return withCode(
      error,
      error.message.startsWith("Syntax Error") ? "GRAPHQL_PARSE_FAILED" : "GRAPHQL_VALIDATION_FAILED",
    );
  }
  if (error instanceof GraphQLError && error.originalError instanceof GraphQLError) {
    return error.originalError.extensions.code ? error : withCode(error, "BAD_REQUEST");
  }
  // A row deleted between the check and the write (a concurrent delete): gone, as far as the caller can tell.
  if ((original as { code?: string } | null)?.code === "P2025") {
    return new GraphQLError("Not found.", {
      path: error instanceof GraphQLError ? error.path : undefined,
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      extensions: { code: "NOT_FOUND" },
    });
  }
  if (unstorableText(original)) {
    return new GraphQLError("Text must not contain NUL (U+0000) characters.", {
      path: error instanceof GraphQLError ? error.path : undefined,
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      extensions: { code: "BAD_USER_INPUT" },
    });
  }
  // PostgreSQL or Redis out of reach, wherever it surfaced: not a bug, and worth a retry.
  if (isUnavailable(original)) {
    return new GraphQLError("The service is briefly unavailable; retry the request shortly.", {
      path: error instanceof GraphQLError ? error.path : undefined,
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      extensions: { code: "SERVICE_UNAVAILABLE", retryable: true, http: UNAVAILABLE_HTTP },
    });
  }
  return new GraphQLError("Unexpected error.", {
    path: error instanceof GraphQLError ? error.path : undefined,
    nodes: error instanceof GraphQLError ? error.nodes : undefined,
    originalError: original instanceof Error ? original : undefined,
    extensions: { code: "INTERNAL_SERVER_ERROR" },
  });
}

/** An error that says when to come back (a spent rate limit) tells HTTP clients in Retry-After too. */
function retryAfter(error: AppError) {
  const seconds = error.details?.retryAfter;
  return typeof seconds === "number" ? { headers: { "Retry-After": String(seconds) } } : {};
}

/** Field errors quote input too (a repeated id, an unknown name): each clipped like a message. */
function clippedFieldErrors(fieldErrors: unknown) {
  if (!Array.isArray(fieldErrors)) return {};
  return {
    fieldErrors: fieldErrors.map((e: { path?: unknown; message?: unknown }) => ({
      ...e,
      ...(typeof e.path === "string" ? { path: clip(e.path, 200) } : {}),
      ...(typeof e.message === "string" ? { message: clip(e.message) } : {}),
    })),
  };
}

export function isUnexpected(error: GraphQLError) {
  return error.extensions.code === "INTERNAL_SERVER_ERROR";
}

function withCode(error: GraphQLError, code: string) {
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code },
  });
}

/** The same error with another message: everything else (positions, path, extensions) kept. */
export function withMessage(error: GraphQLError, message: string) {
  return new GraphQLError(message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: error.extensions,
  });
}
