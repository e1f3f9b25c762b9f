/**
 * The configuration as shown to people (`regscan config check`, startup logs): secrets
 * replaced by a mask, passwords in URLs hidden, durations written back as `30s` / `5m`.
 */
import { stringify } from "yaml";
import { formatDuration } from "./duration.js";
import type { Config } from "./schema.js";

/** What a masked secret looks like. */
export const MASK = "********";

/** Query parameters that carry a secret (ioredis, for one, reads `?password=`). */
const SECRET_QUERY = /([?&](?:password|pass|pwd|token|secret|auth)=)[^&#]*/gi;

/**
 * Hides the password (and a token-like username) of a URL such as `redis://:pw@host:6379`,
 * and secret query parameters such as `?password=pw`.
 */
export function maskUrl(url: string): string {
  return url
    .replace(SECRET_QUERY, `$1${MASK}`)
    .replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/?#@]*)@/i, (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(":");
      const user = colon >= 0 ? userinfo.slice(0, colon) : "";
      return colon >= 0 ? `${scheme}${user}:${MASK}@` : `${scheme}${MASK}@`;
    });
}

/** A plain object of the effective configuration with every secret masked. */
export function maskedConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    apiToken: config.apiToken === undefined ? undefined : MASK,
    cache: config.cache === undefined ? undefined : maskUrl(config.cache),
    repositories: config.repositories.map((r) =>
      r.interval === undefined ? r : { ...r, interval: formatDuration(r.interval) },
    ),
    defaults: {
      ...config.defaults,
      interval:
        config.defaults.interval === undefined
          ? undefined
          : formatDuration(config.defaults.interval),
    },
    sources: {
      ...config.sources,
      file:
        config.sources.file === undefined
          ? undefined
          : {
              ...config.sources.file,
              pollInterval: formatDuration(config.sources.file.pollInterval),
            },
    },
    webhooks: config.webhooks === undefined ? undefined : shownWebhooks(config.webhooks),
    registry: {
      ...config.registry,
      requestTimeout: formatDuration(config.registry.requestTimeout),
      tagListTimeout: formatDuration(config.registry.tagListTimeout),
    },
    warmer: {
      ...config.warmer,
      interval: formatDuration(config.warmer.interval),
      leaseTtl: formatDuration(config.warmer.leaseTtl),
    },
    server: {
      ...config.server,
      shutdownTimeout: formatDuration(config.server.shutdownTimeout),
      refreshMinGap: formatDuration(config.server.refreshMinGap),
      webhookWindow: formatDuration(config.server.webhookWindow),
    },
  };
}

/**
 * The receivers as configured, without the OIDC issuer settings on receivers other than
 * `gar` (the schema gives every receiver their defaults; only `gar` reads them). Secrets are
 * never in here: a receiver names where its secret is read (`env:NAME`, `file:PATH`).
 */
function shownWebhooks(webhooks: NonNullable<Config["webhooks"]>): Record<string, unknown> {
  const shown: Record<string, unknown> = Object.create(null);
  for (const [kind, receiver] of Object.entries(webhooks)) {
    if (receiver === undefined) continue;
    if (kind === "gar") {
      shown[kind] = receiver;
      continue;
    }
    const { issuer: _issuer, jwksUrl: _jwksUrl, ...rest } = receiver;
    shown[kind] = rest;
  }
  return shown;
}

/** The masked effective configuration as YAML, without unset settings. */
export function formatConfig(config: Config): string {
  return stringify(JSON.parse(JSON.stringify(maskedConfig(config))));
}
