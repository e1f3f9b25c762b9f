/**
 * What every webhook receiver turns its sender's payload into: a repository (as the sender
 * names it), maybe a tag, and whether it was pushed or deleted. Nothing here is trusted to
 * be true; the digest and timestamp are informational only.
 */

/** The receiver kinds, one per wire format. */
export const WEBHOOK_KINDS = [
  "distribution",
  "harbor",
  "dockerhub",
  "github",
  "quay",
  "acr",
  "gar",
  "ecr",
  "generic",
] as const;

/** A receiver kind, e.g. `distribution` or `github`. */
export type WebhookKind = (typeof WEBHOOK_KINDS)[number];

/** True when `text` names a receiver kind. */
export function isWebhookKind(text: string): text is WebhookKind {
  return (WEBHOOK_KINDS as readonly string[]).includes(text);
}

/** One change a sender reported. */
export interface NormalisedEvent {
  /** The repository as the sender names it, with its host where the payload gives one. */
  repository: string;
  /** The tag that changed; absent when the sender names none (refresh the listing). */
  tag?: string;
  /** The digest the sender claims; informational only, never trusted. */
  digest?: string;
  action: "push" | "delete";
  /** When the sender says the change happened. */
  timestamp?: Date;
}

/** The fields of a {@link NormalisedEvent}; those a payload may lack can be undefined. */
export interface NormalisedEventFields {
  repository: string;
  action: NormalisedEvent["action"];
  tag?: string | undefined;
  digest?: string | undefined;
  timestamp?: Date | undefined;
}

/**
 * An event holding only the fields its payload gave: a missing tag, digest or time is no
 * key at all, so that events of every format compare and log alike.
 */
export function normalisedEvent(fields: NormalisedEventFields): NormalisedEvent {
  const event: NormalisedEvent = { repository: fields.repository, action: fields.action };
  if (fields.tag !== undefined) event.tag = fields.tag;
  if (fields.digest !== undefined) event.digest = fields.digest;
  if (fields.timestamp !== undefined) event.timestamp = fields.timestamp;
  return event;
}
