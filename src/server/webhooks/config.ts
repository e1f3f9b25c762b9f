/**
 * The `webhooks:` section of the configuration: which receivers are on and how each one
 * authenticates its sender. A receiver with no credential is refused unless it is marked
 * `unauthenticated: true`. Secrets are given as `env:NAME` or `file:PATH`, never inline.
 */
import { z } from "zod";
import { authModeOf, PATH_KINDS } from "./auth-mode.js";
import { WEBHOOK_KINDS, type WebhookKind } from "./event.js";
import { SECRET_SOURCE } from "./secret.js";

/** Google's OIDC issuer and keys, the defaults for the `gar` receiver. */
export const GOOGLE_ISSUER = "https://accounts.google.com";
export const GOOGLE_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs";

export { authModeOf, type WebhookAuthMode } from "./auth-mode.js";

const secretSource = z.string().regex(SECRET_SOURCE, {
  message: 'expected "env:NAME" or "file:PATH" (secrets are never written in the file itself)',
});

/** One receiver's settings. */
export const webhookReceiverSchema = z.strictObject({
  /** Where the shared secret, token or HMAC key is read: `env:NAME` or `file:PATH`. */
  secret: secretSource.optional(),
  /** Send the secret in this header instead of `Authorization: Bearer` (e.g. ACR, ECR). */
  header: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/, { message: "expected an HTTP header name" })
    .optional(),
  /** Accept events from anyone: only behind a network boundary that does the checking. */
  unauthenticated: z.boolean().default(false),
  /** gar: the audience set on the Pub/Sub push subscription. */
  audience: z.string().min(1).max(1024).optional(),
  /** gar: the service account the push subscription authenticates as. */
  serviceAccount: z
    .string()
    .regex(/^[^@\s]+@[^@\s]+$/, { message: "expected a service account e-mail" })
    .optional(),
  /** gar: the token issuer. */
  issuer: z.string().url().default(GOOGLE_ISSUER),
  /** gar: where the issuer's signing keys are published. */
  jwksUrl: z.string().url().default(GOOGLE_JWKS_URL),
});

/** One receiver's effective settings. */
export type WebhookReceiverConfig = z.output<typeof webhookReceiverSchema>;

const receiver = webhookReceiverSchema.optional();

/**
 * `webhooks:` maps each kind to its receiver; a list of kinds is short for receivers with
 * default settings (which then still need a secret or `unauthenticated`).
 */
export const webhooksSchema = z
  .preprocess(
    (v) => (Array.isArray(v) ? Object.fromEntries(v.map((k) => [k, {}])) : v),
    z.strictObject({
      distribution: receiver,
      harbor: receiver,
      dockerhub: receiver,
      github: receiver,
      quay: receiver,
      acr: receiver,
      gar: receiver,
      ecr: receiver,
      generic: receiver,
    }),
  )
  .superRefine((receivers, ctx) => {
    for (const kind of WEBHOOK_KINDS) {
      const r = receivers[kind];
      if (r !== undefined)
        checkReceiver(kind, r, (message, field) =>
          ctx.addIssue({ code: "custom", message, path: field ? [kind, field] : [kind] }),
        );
    }
  });

/** The effective `webhooks:` section. */
export type WebhookConfig = z.output<typeof webhooksSchema>;
/** The `webhooks:` section as written. */
export type WebhookConfigInput = z.input<typeof webhooksSchema>;

function checkReceiver(
  kind: WebhookKind,
  r: WebhookReceiverConfig,
  problem: (message: string, field?: string) => void,
): void {
  const gar = kind === "gar";
  if (!gar) {
    for (const field of ["audience", "serviceAccount"] as const) {
      if (r[field] !== undefined) problem(`only the gar receiver takes ${field}`, field);
    }
  }
  if (r.header !== undefined && (gar || kind === "github" || PATH_KINDS.includes(kind))) {
    problem(`the ${kind} receiver does not take a header: ${describeMode(kind)}`, "header");
  }
  if (r.unauthenticated) {
    if (r.secret !== undefined) problem("an unauthenticated receiver takes no secret", "secret");
    return;
  }
  if (gar) {
    if (r.secret !== undefined) {
      problem("the gar receiver checks Google's signed token, not a secret", "secret");
    }
    if (r.audience === undefined || r.serviceAccount === undefined) {
      problem(
        "the gar receiver needs audience and serviceAccount (those of the Pub/Sub push subscription), or unauthenticated: true",
      );
    }
    return;
  }
  if (r.secret === undefined) {
    problem(
      `the ${kind} receiver has no secret: give secret (env:NAME or file:PATH), or set unauthenticated: true to accept events from anyone`,
    );
  }
}

function describeMode(kind: WebhookKind): string {
  if (kind === "github") return "GitHub signs the body (X-Hub-Signature-256)";
  if (kind === "gar") return "Pub/Sub sends a signed token";
  return "the secret is part of the URL path";
}

/**
 * Turns `--webhook KIND` (repeatable) and `--webhook-secret KIND=env:NAME|file:PATH` into
 * the `webhooks:` input, over what the file gave. Returns problems instead of throwing, so
 * that the loader can name the flag.
 */
export function webhooksFromFlags(
  base: WebhookConfigInput | undefined,
  kinds: readonly string[],
  secrets: readonly string[],
): { value: Record<string, Record<string, unknown>>; problems: string[] } {
  const value: Record<string, Record<string, unknown>> = {};
  const problems: string[] = [];
  const start = Array.isArray(base) ? Object.fromEntries(base.map((k) => [k, {}])) : (base ?? {});
  for (const [k, v] of Object.entries(start as Record<string, unknown>)) {
    value[k] = { ...(typeof v === "object" && v !== null ? v : {}) };
  }
  for (const kind of kinds) value[kind] ??= {};
  for (const flag of secrets) {
    const eq = flag.indexOf("=");
    const kind = eq > 0 ? flag.slice(0, eq) : "";
    if (!(WEBHOOK_KINDS as readonly string[]).includes(kind)) {
      // Only a word that could be a mistyped kind is shown: anything else may be a secret.
      const shown = /^[a-z]{1,16}$/.test(kind) ? `got kind ${JSON.stringify(kind)}` : "got no kind";
      problems.push(
        `expected KIND=env:NAME or KIND=file:PATH with KIND one of ${WEBHOOK_KINDS.join(", ")}; ${shown}`,
      );
      continue;
    }
    value[kind] = { ...(value[kind] ?? {}), secret: flag.slice(eq + 1) };
  }
  return { value, problems };
}

/** One line per receiver for `regscan config check`: its kind and how it authenticates. */
export function describeWebhooks(config: WebhookConfig): string[] {
  const lines: string[] = [];
  for (const kind of WEBHOOK_KINDS) {
    const r = config[kind];
    if (r === undefined) continue;
    const mode = authModeOf(kind, r);
    const how =
      mode === "none"
        ? "UNAUTHENTICATED"
        : mode === "oidc"
          ? `Pub/Sub OIDC token (audience ${r.audience}, service account ${r.serviceAccount})`
          : mode === "header"
            ? `secret in header ${r.header} from ${r.secret}`
            : mode === "hmac"
              ? `HMAC-SHA256 signature, key from ${r.secret}`
              : mode === "path"
                ? `secret in the URL path (/v1/webhooks/${kind}/SECRET) from ${r.secret}`
                : `bearer token from ${r.secret}`;
    lines.push(`${kind}: ${how}`);
  }
  return lines;
}
