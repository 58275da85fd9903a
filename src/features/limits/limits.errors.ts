import { AppError } from "../../errors.ts";

/** A budget is spent: HTTP 429 with Retry-After (schema/errors.ts reads `retryAfter`). */
export class RateLimitedError extends AppError {
  constructor(bucket: string, retryAfter: number) {
    super("RATE_LIMITED", `Rate limit reached (${bucket}); retry in ${retryAfter} s.`, { bucket, retryAfter });
  }
}

/** One operation costs more than a caller may spend on one, however long it waits. */
export class CostLimitError extends AppError {
  constructor(cost: number, maxCost: number) {
    super("COST_LIMIT_EXCEEDED", `This operation costs ${cost}; at most ${maxCost} is allowed.`, { cost, maxCost });
  }
}
