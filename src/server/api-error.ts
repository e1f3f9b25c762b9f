/**
 * Errors the HTTP API answers with: a status, a stable `code`, and a message safe to show
 * to any client (no stack trace, no secret).
 */
import { RegscanError } from "../errors.js";

/** An error with the HTTP status and headers to answer it with. */
export class ApiError extends RegscanError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Extra fields of the JSON answer. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
