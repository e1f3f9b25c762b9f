/**
 * The observe layer: stamps every request with regscan's `User-Agent` and tells the
 * observers (the request counter, the caller's callback) about each request sent: its
 * host, method and status, or `error` when no answer came. Nothing secret is passed on.
 */
import type { Layer } from "./exchange.js";

/** Sees every request sent to the network: its status, or `error` when no answer came. */
export type ResponseObserver = (request: ObservedRequest) => void;

/** One request as observers see it (nothing secret: no headers, no query). */
export interface ObservedRequest {
  host: string;
  method: string;
  /** The HTTP status, or `error` when no answer came. */
  status: number | "error";
}

/** The layer; below the retries, so that every attempt is seen and counted. */
export function observeLayer(userAgent: string, observe?: ResponseObserver): Layer {
  return (next) => async (req) => {
    const host = req.url.host;
    try {
      const res = await next({ ...req, headers: { "user-agent": userAgent, ...req.headers } });
      observe?.({ host, method: req.method, status: res.status });
      return res;
    } catch (err) {
      observe?.({ host, method: req.method, status: "error" });
      throw err;
    }
  };
}
