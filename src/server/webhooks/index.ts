/**
 * The webhook receivers' surface for `regscan serve`: the `webhooks:` configuration, the
 * receivers that turn a request into normalised events, and the body reader.
 */
export { type AuthFailureLimit, AuthFailureLimiter } from "./auth-failures.js";
export {
  authModeOf,
  describeWebhooks,
  type WebhookConfig,
  type WebhookConfigInput,
  type WebhookReceiverConfig,
  webhooksFromFlags,
  webhooksSchema,
} from "./config.js";
export {
  InvalidWebhookBodyError,
  JwksUnavailableError,
  WebhookBodyAbortedError,
  WebhookSecretError,
} from "./errors.js";
export { isWebhookKind, type NormalisedEvent, WEBHOOK_KINDS, type WebhookKind } from "./event.js";
export {
  MAX_WEBHOOK_BODY_BYTES,
  readWebhookBody,
  WebhookReceivers,
  type WebhookReceiversOptions,
  type WebhookRequest,
  type WebhookResponse,
  type WebhookResult,
} from "./receivers.js";
export { readWebhookSecret, WebhookSecret } from "./secret.js";
