/**
 * Request headers as node:http gives them (lower-case names), read without trusting them:
 * one value per header, bounded in length.
 */

/** Headers keyed by lower-case name, as `IncomingMessage.headers`. */
export type WebhookHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

/** Longest header value read; an OIDC token is the longest legitimate one (a few KiB). */
const MAX_HEADER = 16_384;

/** The header's single value; undefined when absent, repeated or too long. */
export function headerValue(headers: WebhookHeaders, name: string): string | undefined {
  const value = Object.hasOwn(headers, name) ? headers[name] : undefined;
  const single = Array.isArray(value) ? (value.length === 1 ? value[0] : undefined) : value;
  return typeof single === "string" && single.length <= MAX_HEADER ? single : undefined;
}

/** The media type of `Content-Type` without parameters, lower-cased. */
export function mediaType(headers: WebhookHeaders): string | undefined {
  const value = headerValue(headers, "content-type");
  return value?.split(";")[0]?.trim().toLowerCase() || undefined;
}
