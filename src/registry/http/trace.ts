/**
 * The trace layer: with tracing on, one log line per request with method, URL (query values
 * other than the harmless registry ones replaced, user info dropped), status and duration,
 * and one per retry. Headers are never logged: they are where the secrets are.
 */
import type { Logger } from "pino";
import { type Layer, RegistryPath } from "./exchange.js";
import type { RetryInfo } from "./retry.js";

/** Query parameters of the Distribution and token APIs that never carry a secret. */
const HARMLESS_QUERY = new Set(["n", "last", "service", "scope", "digest"]);

/** Trace logging; with `enabled` false the layer adds nothing. */
export function traceLayer(logger: Logger, enabled: boolean): Layer {
  return (next) => {
    if (!enabled) return next;
    return async (req) => {
      const started = performance.now();
      const url = redactUrl(req.url);
      try {
        const res = await next(req);
        logger.info(
          {
            method: req.method,
            // A registry path's line shows where the origin layer sent it.
            url: req.url instanceof URL ? url : redactUrl(res.url),
            status: res.status,
            durationMs: Math.round(performance.now() - started),
          },
          "http request",
        );
        return res;
      } catch (err) {
        logger.info(
          {
            method: req.method,
            url,
            error: err instanceof Error ? err.message : String(err),
            durationMs: Math.round(performance.now() - started),
          },
          "http request failed",
        );
        throw err;
      }
    };
  };
}

/**
 * The retry layer's log line, worded here with the trace lines: at info with tracing on (a
 * traced run shows why a request came twice), at debug otherwise.
 */
export function retryLogger(logger: Logger, enabled: boolean): (info: RetryInfo) => void {
  return (info) => {
    const fields = { method: info.req.method, url: redactUrl(info.req.url), attempt: info.attempt };
    const msg = `retrying after ${info.reason} in ${info.delayMs} ms`;
    if (enabled) logger.info(fields, msg);
    else logger.debug(fields, msg);
  };
}

/** The URL as it may be shown: no user info, and only harmless query values. */
export function redactUrl(url: URL | RegistryPath): string {
  if (url instanceof RegistryPath) {
    // Above the origin layer a registry path has no scheme yet; it is shown without one.
    return redactUrl(new URL(url.path, `https://${url.host}`)).replace(/^https:/, "");
  }
  const u = new URL(url.href);
  u.username = "";
  u.password = "";
  for (const key of [...new Set(u.searchParams.keys())]) {
    if (!HARMLESS_QUERY.has(key.toLowerCase())) u.searchParams.set(key, "REDACTED");
  }
  return u.href;
}
