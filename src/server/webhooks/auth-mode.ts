/**
 * How each configured receiver authenticates its sender. Apart from the configuration's
 * schema so that the receivers load no schema library (the API thread loads them alone).
 */
import type { WebhookKind } from "./event.js";

/** How each kind's sender proves itself when the receiver is authenticated. */
export type WebhookAuthMode = "bearer" | "header" | "hmac" | "path" | "oidc";

/** Kinds whose senders can neither sign nor set a header: the secret is in the URL path. */
export const PATH_KINDS: readonly WebhookKind[] = ["dockerhub", "quay"];

/** The authentication a configured receiver uses. */
export function authModeOf(
  kind: WebhookKind,
  receiver: { unauthenticated?: boolean | undefined; header?: string | undefined },
): WebhookAuthMode | "none" {
  if (receiver.unauthenticated) return "none";
  if (kind === "github") return "hmac";
  if (kind === "gar") return "oidc";
  if (PATH_KINDS.includes(kind)) return "path";
  return receiver.header === undefined ? "bearer" : "header";
}
