/**
 * The configuration as shown to people (`regscan config check`, startup logs): secrets
 * replaced by a mask, passwords in URLs hidden, durations written back as `30s` / `5m`.
 */
import { stringify } from "yaml";
import { formatDuration } from "./duration.js";
import type { Config } from "./schema.js";

/** What a masked secret looks like. */
export const MASK = "********";

/** Hides the password (and a token-like username) of a URL such as `redis://:pw@host:6379`. */
export function maskUrl(url: string): string {
  return url.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^/@]*)@/i,
    (_, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(":");
      const user = colon >= 0 ? userinfo.slice(0, colon) : "";
      return colon >= 0 ? `${scheme}${user}:${MASK}@` : `${scheme}${MASK}@`;
    },
  );
}

/** A plain object of the effective configuration with every secret masked. */
export function maskedConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    apiToken: config.apiToken === undefined ? undefined : MASK,
    cache: config.cache === undefined ? undefined : maskUrl(config.cache),
    registry: {
      ...config.registry,
      mirrors: Object.fromEntries(
        Object.entries(config.registry.mirrors).map(([host, list]) => [host, list.map(maskUrl)]),
      ),
    },
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
    warmer: { ...config.warmer, interval: formatDuration(config.warmer.interval) },
    server: { ...config.server, shutdownTimeout: formatDuration(config.server.shutdownTimeout) },
  };
}

/** The masked effective configuration as YAML, without unset settings. */
export function formatConfig(config: Config): string {
  return stringify(JSON.parse(JSON.stringify(maskedConfig(config))));
}
