/**
 * The bottom of the transport chain: sends one request through the dispatcher chosen for
 * its host and turns undici's failures into `NetworkError` / `TimeoutError`.
 */
import { request } from "undici";
import { lowLevelErrorCode, NetworkError, sanitizeText, TimeoutError } from "../errors.js";
import type { Dispatchers } from "./dispatchers.js";
import { type HttpRequest, type HttpResponse, type Transport, toHeaders } from "./exchange.js";

/** Decides whether TLS verification may be skipped for a host (`host[:port]`). */
export type InsecurePolicy = (host: string) => boolean;

/** Makes the innermost transport. Redirects are never followed here; callers decide. */
export function sendTransport(dispatchers: Dispatchers, isInsecure: InsecurePolicy): Transport {
  return async (req: HttpRequest): Promise<HttpResponse> => {
    const host = req.url.host;
    try {
      const res = await request(req.url, {
        method: req.method,
        headers: req.headers ?? {},
        body: req.body,
        signal: req.signal,
        dispatcher: dispatchers.for(isInsecure(host)),
        // undici closes the connection after a HEAD unless told otherwise; HEAD-first
        // refreshes would then pay a new connection (and TLS handshake) per tag.
        reset: false,
      });
      return {
        status: res.statusCode,
        headers: toHeaders(res.headers),
        url: req.url,
        body: res.body,
      };
    } catch (err) {
      throw transportError(err, host, req.signal);
    }
  };
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

/** The caller's abort stays an abort; everything else becomes a typed, secret-free error. */
function transportError(err: unknown, host: string, signal?: AbortSignal): unknown {
  if (signal?.aborted) return signal.reason ?? err;
  if (err instanceof NetworkError || err instanceof TimeoutError) return err;
  const causeCode = socketErrorCode(err);
  if (causeCode && TIMEOUT_CODES.has(causeCode)) return new TimeoutError({ host, cause: err });
  return new NetworkError(describe(err, causeCode), { host, cause: err, causeCode });
}

const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;

/** One readable line: OpenSSL's internals are left out, TLS failures say what they mean. */
function describe(err: unknown, code: string | undefined): string {
  if (code && CERT_CODES.test(code)) return `TLS certificate not trusted (${code})`;
  const message = err instanceof Error ? sanitizeText(err.message) : "";
  // A plain-HTTP server either answers the ClientHello with garbage (ERR_SSL_...) or hangs
  // up on it, which Node reports as a reset "before secure TLS connection was established".
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : "";
  if (code?.startsWith("ERR_SSL") || /before secure TLS connection/i.test(`${message} ${cause}`)) {
    return `TLS handshake failed (${code}); is the host plain HTTP?`;
  }
  return `network error (${[code, message].filter(Boolean).join(": ")})`;
}

/**
 * The most specific code: undici wraps a reset (`ECONNRESET`) in `UND_ERR_SOCKET`, and TLS
 * failures carry their own codes (`DEPTH_ZERO_SELF_SIGNED_CERT`, ...) on the cause.
 */
function socketErrorCode(err: unknown): string | undefined {
  const outer = lowLevelErrorCode(err);
  const inner = err instanceof Error ? lowLevelErrorCode(err.cause) : undefined;
  return outer === "UND_ERR_SOCKET" && inner ? inner : (outer ?? inner);
}
