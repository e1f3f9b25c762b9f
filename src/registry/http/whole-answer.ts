/**
 * A request whose answer is wanted whole (a HEAD, or a GET whose body the chain reads at
 * once), sent through undici's handler interface: the body's chunks are collected as they
 * come, with no stream, async resource or promise per chunk in between. undici's `request()`
 * costs those on every answer, and with the iteration of its body they were about a tenth of
 * a replica's CPU filling a fleet (a bench:scale profile).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { HttpMethod } from "./exchange.js";

/** An answer read whole. */
export interface WholeAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, or undefined when it was longer than the limit (its connection closed then). */
  body: Buffer | undefined;
}

/** What a request whose answer is read whole sends. */
export interface WholeRequest {
  method: HttpMethod;
  url: URL;
  headers: Record<string, string>;
  body: string | null;
}

/**
 * The reason an answer over its limit is aborted with; never seen outside this module (so,
 * like the transport's other signals, without a code of regscan's).
 */
class OverLimit extends Error {}

/**
 * Sends `req` through `dispatcher` and resolves to its whole answer, the body at most `limit`
 * bytes (a longer one, declared or found while reading, ends the exchange). `signal` aborts it,
 * and the promise rejects with its reason at once, even while the request still waits for a
 * connection; errors are undici's, as `request()` gives them.
 */
export function dispatchWhole(
  dispatcher: Dispatcher,
  req: WholeRequest,
  limit: number,
  signal: AbortSignal,
): Promise<WholeAnswer> {
  return new Promise<WholeAnswer>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let controller: Dispatcher.DispatchController | undefined;
    let settled = false;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;
    // Built only for an answer over its limit: an Error takes a stack trace, and one made for
    // every request was 2-3% of a replica's CPU filling a fleet (a bench:scale profile).
    let overLimit: OverLimit | undefined;
    const abortOverLimit = (c: Dispatcher.DispatchController) => {
      overLimit ??= new OverLimit(`body longer than ${limit} bytes`);
      c.abort(overLimit);
    };
    const onAbort = () => {
      controller?.abort(signal.reason);
      if (settle()) reject(signal.reason);
    };
    /** True the first time: the promise is settled once, whatever undici calls after. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      return true;
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (signal.aborted) c.abort(signal.reason);
      },
      onResponseStart(c, statusCode, h) {
        // Informational answers (1xx) come before the real one.
        if (statusCode < 200) return;
        status = statusCode;
        headers = h;
        // A HEAD's Content-Length is the size of the body a GET would have.
        if (req.method === "HEAD") return;
        const declared = Number(h["content-length"]);
        if (Number.isFinite(declared) && declared > limit) abortOverLimit(c);
      },
      onResponseData(c, chunk) {
        size += chunk.byteLength;
        if (size <= limit) {
          chunks.push(chunk);
          return;
        }
        chunks.length = 0;
        abortOverLimit(c);
      },
      onResponseEnd() {
        if (settle()) resolve({ status, headers, body: Buffer.concat(chunks, size) });
      },
      onResponseError(_c, err) {
        if (!settle()) return;
        if (overLimit !== undefined && err === overLimit)
          resolve({ status, headers, body: undefined });
        else reject(err);
      },
    };
    try {
      dispatcher.dispatch(
        {
          origin: req.url.origin,
          path: `${req.url.pathname}${req.url.search}`,
          method: req.method,
          headers: req.headers,
          body: req.body,
          // undici closes the connection after a HEAD unless told otherwise.
          reset: false,
        },
        handler,
      );
    } catch (err) {
      if (settle()) reject(err);
    }
  });
}
