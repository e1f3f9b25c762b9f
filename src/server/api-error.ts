/**
 * Errors the HTTP API answers with: a status, a stable `code`, and a message safe to show
 * to any client (no stack trace, no secret).
 */
import { RegscanError } from "../errors.js";

/** What an {@link ApiError} answers with. */
export interface ApiErrorOptions {
  /** The HTTP status. */
  status: number;
  /** The stable code of the JSON answer. */
  code: string;
  /** Shown to the client: no stack trace, no secret. */
  message: string;
  /** Headers of the answer (e.g. `retry-after`). */
  headers?: Record<string, string> | undefined;
  /** Extra fields of the JSON answer. */
  details?: Record<string, unknown> | undefined;
}

/** An error with the HTTP status and headers to answer it with. */
export class ApiError extends RegscanError {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  /** Extra fields of the JSON answer. */
  readonly details: Record<string, unknown>;

  constructor(opts: ApiErrorOptions) {
    super(opts.message);
    this.status = opts.status;
    this.code = opts.code;
    this.headers = opts.headers ?? {};
    this.details = opts.details ?? {};
  }
}
