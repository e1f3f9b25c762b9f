/**
 * The bottom of the transport chain: sends one request through the dispatcher chosen for
 * its host, under a total deadline that covers the body too, and turns undici's failures —
 * before the headers or while the body is read — into `NetworkError` / `TimeoutError`. An
 * answer read whole at once (a HEAD, a GET with a `bodyLimit`) is collected by
 * `dispatchWhole`; any other comes as undici's stream.
 */
import type { Readable } from "node:stream";
import { finished } from "node:stream";
import { request } from "undici";
import { sanitizeText } from "../../redact.js";
import { NetworkError, TimeoutError } from "../errors.js";
import { DEFAULT_REQUEST_TIMEOUT_MS, RequestDeadline } from "./deadline.js";
import type { Dispatchers } from "./dispatchers.js";
import {
  BodyTooLargeSignal,
  bufferedBody,
  ERROR_BODY_LIMIT,
  failingBody,
  type HttpRequest,
  type HttpResponse,
  type ResponseBody,
  type Transport,
  toHeaders,
} from "./exchange.js";
import { dispatchWhole } from "./whole-answer.js";

/** Bounds of the send layer. */
export interface SendOptions {
  /** Total deadline of a request that names none (default 60 s). */
  requestTimeoutMs?: number;
}

/**
 * Makes the innermost transport, below the origin layer: every URL is absolute by now and
 * `skipTlsVerify` chooses the dispatcher. Redirects are never followed here; callers decide.
 */
export function sendTransport(dispatchers: Dispatchers, opts: SendOptions = {}): Transport {
  const defaultTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return async (sent: HttpRequest): Promise<HttpResponse> => {
    const { url } = sent;
    if (!(url instanceof URL)) {
      throw new TypeError("a registry path reached the dispatcher without the origin layer");
    }
    const req = { ...sent, url };
    const insecure = req.skipTlsVerify ?? false;
    const deadline = new RequestDeadline(req.timeoutMs ?? defaultTimeout, req.signal);
    const failure = (err: unknown) => transportError(err, req, deadline);
    const dispatcher =
      req.pinnedAddresses === undefined
        ? dispatchers.for(insecure)
        : dispatchers.pinned({
            insecure,
            hostname: req.url.hostname,
            addresses: req.pinnedAddresses,
          });
    const message = {
      method: req.method,
      headers: req.headers ?? {},
      // undici reads a null body as none, as it does an absent one.
      body: req.body ?? null,
    };
    if (req.method === "HEAD" || (req.method === "GET" && req.bodyLimit !== undefined)) {
      // Read whole here, as the chain would read it at once (retry.ts's withBody); an error
      // answer's body is kept up to what its readers read of one. The rest (a POST, a GET
      // whose caller reads the body) is undici's stream.
      const limit = Math.max(req.bodyLimit ?? 0, ERROR_BODY_LIMIT);
      try {
        const answer = await dispatchWhole(
          dispatcher,
          { ...message, url: req.url },
          limit,
          deadline.signal,
        );
        return {
          status: answer.status,
          headers: toHeaders(answer.headers),
          url: req.url,
          body:
            answer.body === undefined
              ? failingBody(new BodyTooLargeSignal(limit))
              : bufferedBody(answer.body),
        };
      } catch (err) {
        throw failure(err);
      } finally {
        deadline.clear();
      }
    }
    try {
      const pending = request(req.url, {
        ...message,
        signal: deadline.signal,
        dispatcher,
      });
      const res = await settledOrAborted(pending, deadline.signal);
      return {
        status: res.statusCode,
        headers: toHeaders(res.headers),
        url: req.url,
        body: guardedBody(res.body, deadline, failure),
      };
    } catch (err) {
      deadline.clear();
      throw failure(err);
    }
  };
}

/** undici's body: a stream that can drop what is left of itself. */
type UndiciBody = Readable & { dump(): Promise<void> };

/**
 * The body as the caller reads it: still under the request's deadline, which ends when the
 * body does, and failing with the same typed errors as the request itself.
 */
function guardedBody(
  body: UndiciBody,
  deadline: RequestDeadline,
  failure: (err: unknown) => unknown,
): ResponseBody {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of body) yield chunk;
      } catch (err) {
        throw failure(err);
      } finally {
        deadline.clear();
      }
    },
    dump: async () => {
      try {
        await body.dump();
      } finally {
        deadline.clear();
      }
    },
    readAll: async (limit) => {
      try {
        return await readWhole(body, limit);
      } catch (err) {
        throw failure(err);
      } finally {
        deadline.clear();
      }
    },
  };
}

/**
 * The whole of `body` if it is at most `limit` bytes, else undefined once the rest is
 * dropped. From its events, not by iterating it (and the guard around it): promises and
 * iterator steps for bodies that are mostly one chunk. What comes this way is what
 * `dispatchWhole` does not take: a POST's answer, a GET whose caller reads the body.
 */
function readWhole(body: UndiciBody, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      over = true;
      body.off("data", onData);
      chunks.length = 0;
      // undici reads on and drops up to 128 KiB so that the connection is reused, and
      // closes it past that.
      body.dump().then(
        () => resolve(undefined),
        () => resolve(undefined),
      );
    };
    body.on("data", onData);
    // Ends, errors and early closes alike, including those before this call.
    finished(body, (err) => {
      if (over) return;
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    });
  });
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);

/**
 * undici rejects an aborted request only once its connection is made, so a host that
 * accepts the connection and never finishes the TLS handshake would hold it for undici's
 * 10 s connect timeout whatever the deadline; the deadline ends the wait itself, and an
 * answer that still comes later is let go.
 */
function settledOrAborted<T extends { body: { destroy(): unknown } }>(
  pending: Promise<T>,
  signal: AbortSignal,
): Promise<T> {
  if (signal.aborted) {
    pending.then(
      (res) => res.body.destroy(),
      () => {},
    );
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      pending.then(
        (res) => res.body.destroy(),
        () => {},
      );
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pending.then(
      (res) => {
        signal.removeEventListener("abort", onAbort);
        resolve(res);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/**
 * The caller's abort stays an abort (unless it is a timeout signal's: then it is a
 * `TimeoutError` naming the host); everything else becomes a typed, secret-free error.
 */
function transportError(
  err: unknown,
  req: HttpRequest & { url: URL },
  deadline: RequestDeadline,
): unknown {
  const host = req.url.host;
  const operation = req.operation ?? `${req.method} ${sanitizeText(req.url.pathname, 200)}`;
  if (deadline.expired) {
    return new TimeoutError({ host, operation, timeoutMs: deadline.timeoutMs, cause: err });
  }
  if (deadline.callerAborted) {
    const reason: unknown = req.signal?.reason ?? err;
    if (reason instanceof DOMException && reason.name === "TimeoutError") {
      return new TimeoutError({ host, operation, cause: reason });
    }
    return reason;
  }
  if (err instanceof NetworkError || err instanceof TimeoutError) return err;
  const causeCode = socketErrorCode(err);
  if (causeCode && TIMEOUT_CODES.has(causeCode)) {
    return new TimeoutError({ host, operation, cause: err });
  }
  return new NetworkError({
    message: describe(err, { code: causeCode, host }),
    host,
    cause: err,
    causeCode,
  });
}

const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;
/** What OpenSSL says when the other side answers a ClientHello in plain HTTP. */
const PLAIN_HTTP_CODES =
  /WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL/;

/** One readable line: OpenSSL's internals are left out, TLS failures say what they mean. */
function describe(err: unknown, at: { code: string | undefined; host: string }): string {
  const { code, host } = at;
  if (code && CERT_CODES.test(code)) return `TLS certificate not trusted (${code})`;
  const message = err instanceof Error ? sanitizeText(err.message) : "";
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : "";
  const said = `${code ?? ""} ${message} ${cause}`;
  const h = sanitizeText(host, 255);
  const hint = `host ${h} seems to speak plain HTTP; use --insecure-host ${h}`;
  if (PLAIN_HTTP_CODES.test(said) || /wrong version number|packet length too long/i.test(said)) {
    return `TLS handshake failed (${code}): ${hint}`;
  }
  // A plain-HTTP server may also hang up on the ClientHello, which Node reports as a reset
  // "before secure TLS connection was established" (a middlebox could do the same: "seems").
  if (code?.startsWith("ERR_SSL") || /before secure TLS connection/i.test(`${message} ${cause}`)) {
    return `TLS handshake failed (${code}, the connection was closed): ${hint}`;
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

/**
 * The low-level code of a Node / undici error (`ECONNRESET`, `UND_ERR_SOCKET`, ...),
 * looking through `cause` a few levels deep, or `undefined`.
 */
function lowLevelErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
