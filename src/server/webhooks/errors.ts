/**
 * Errors of the webhook receivers. None of them ever carries a secret: messages name the
 * field or the secret's source (`env:NAME`, `file:PATH`), never a value that authenticates.
 */
import { RegscanError } from "../../errors.js";

/** A webhook body that cannot be read as its kind's format; the message names the field. */
export class InvalidWebhookBodyError extends RegscanError {
  readonly code = "INVALID_WEBHOOK_BODY";
  constructor(
    /** The receiver kind whose format was expected. */
    readonly kind: string,
    /** Where in the body the problem is, e.g. `events[0].target.tag` (empty for the whole). */
    readonly field: string,
    reason: string,
  ) {
    super(`${kind} webhook body${field ? ` at ${field}` : ""}: ${reason}`);
  }
}

/** A webhook secret could not be read from where the configuration says it is. */
export class WebhookSecretError extends RegscanError {
  readonly code = "WEBHOOK_SECRET_UNAVAILABLE";
  constructor(
    /** The source as configured (`env:NAME` or `file:PATH`): never the secret itself. */
    readonly source: string,
    reason: string,
  ) {
    super(`webhook secret ${source}: ${reason}`);
  }
}

/** The keys that sign Pub/Sub push tokens could not be fetched or read. */
export class JwksUnavailableError extends RegscanError {
  readonly code = "JWKS_UNAVAILABLE";
  constructor(
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot read the token signing keys at ${url}: ${reason}`, options);
  }
}

/** The client went away before its request body was complete. */
export class WebhookBodyAbortedError extends RegscanError {
  readonly code = "WEBHOOK_BODY_ABORTED";
  constructor() {
    super("the webhook request ended before its body was complete");
  }
}
