// Domain errors: plain classes with a stable code, thrown by services, which know nothing of
// GraphQL. schema/errors.ts maps them to GraphQL errors once, in one place.
export class AppError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class UnauthenticatedError extends AppError {
  constructor(code = "UNAUTHENTICATED", message = "Sign in to do this.") {
    super(code, message);
  }
}

export class ForbiddenError extends AppError {
  constructor(message = "You are not allowed to do this.") {
    super("FORBIDDEN", message);
  }
}

/** Also what a row of another organization looks like: existence is never leaked. */
export class NotFoundError extends AppError {
  constructor(resource: string) {
    super("NOT_FOUND", `${resource} not found.`);
  }
}

export class ValidationError extends AppError {
  constructor(
    message: string,
    readonly fieldErrors: { path: string; message: string }[] = [],
    code = "BAD_USER_INPUT",
  ) {
    super(code, message, { fieldErrors });
  }
}

/** A rule of the domain that the request would break (last owner leaving, a used token…). */
export class ConflictError extends AppError {}
