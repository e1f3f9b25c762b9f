/**
 * Verifies the OIDC token that a Pub/Sub push subscription sends as `Authorization: Bearer`:
 * RS256 signed by the issuer's keys, for our audience, from the configured service account
 * with a verified e-mail. See https://cloud.google.com/pubsub/docs/authenticate-push-subscriptions
 */
import { jwtVerify } from "jose";
import type { JwksCache } from "./jwks.js";

/** What a valid push token must say. */
export interface PubSubTokenPolicy {
  /** The audience set on the push subscription. */
  audience: string;
  /** The service account the subscription pushes as. */
  serviceAccountEmail: string;
  /** The token issuer (Google: `https://accounts.google.com`). */
  issuer: string | string[];
  /** Seconds of clock skew tolerated (default 60). */
  clockToleranceSeconds?: number;
}

/** How a token check ended; `unavailable` when the keys could not be fetched. */
export type TokenCheck = "valid" | "invalid" | "unavailable";

/** What {@link checkPubSubToken} checks, and against what. */
export interface PubSubTokenCheck {
  /** The request's `Authorization` header value, if any. */
  authorization: string | undefined;
  policy: PubSubTokenPolicy;
  /** The issuer's keys. */
  keys: JwksCache;
  /** Aborts a keys fetch on the request's behalf. */
  signal: AbortSignal;
}

/** Checks one `Authorization` header value against the policy. */
export async function checkPubSubToken({
  authorization,
  policy,
  keys,
  signal,
}: PubSubTokenCheck): Promise<TokenCheck> {
  const m = /^Bearer[ ]+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\s*$/i.exec(
    authorization ?? "",
  );
  if (!m?.[1]) return "invalid";
  try {
    const { payload } = await jwtVerify(m[1], keys.resolver(signal), {
      algorithms: ["RS256"],
      issuer: policy.issuer,
      audience: policy.audience,
      clockTolerance: policy.clockToleranceSeconds ?? 60,
      requiredClaims: ["exp", "iat", "email"],
    });
    return payload.email === policy.serviceAccountEmail && payload.email_verified === true
      ? "valid"
      : "invalid";
  } catch (err) {
    return (err as { code?: string }).code === "JWKS_UNAVAILABLE" ? "unavailable" : "invalid";
  }
}
