/**
 * Fault injection shared by the recording proxy and the token server: a test hook sees each
 * request and may answer it itself (429, 503, a slow answer, a dropped connection) instead of
 * letting the real server answer.
 */
import type { IncomingHttpHeaders, ServerResponse } from "node:http";

/** What a fault hook sees of a request. */
export interface FaultRequest {
  method: string;
  /** The path without the query, e.g. `/v2/app/tags/list`. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
}

/**
 * A fault hook's answer. With `status` the hook answers instead of the server; without it
 * the request goes on to the server after `delayMs`. `destroy` drops the connection without
 * an answer (a connection reset, as clients see it).
 */
export interface FaultResponse {
  status?: number;
  headers?: Record<string, string>;
  /** A string or bytes as they are, anything else as JSON. */
  body?: string | Buffer | object;
  delayMs?: number;
  destroy?: boolean;
}

/** Sees every request; `undefined` lets it through untouched. May be async. */
export type FaultHook = (
  req: FaultRequest,
) => FaultResponse | undefined | Promise<FaultResponse | undefined>;

/**
 * Applies a fault. Resolves `true` when the fault answered (or dropped) the request, `false`
 * when the request should go on to the server.
 */
export async function applyFault(
  fault: FaultResponse | undefined,
  res: ServerResponse,
): Promise<boolean> {
  if (fault === undefined) return false;
  if (fault.delayMs !== undefined && fault.delayMs > 0) {
    await new Promise((r) => setTimeout(r, fault.delayMs));
  }
  if (fault.destroy === true) {
    res.socket?.destroy();
    return true;
  }
  if (fault.status === undefined) return false;
  const headers: Record<string, string> = { ...fault.headers };
  let body: Buffer | undefined;
  if (fault.body !== undefined) {
    if (typeof fault.body === "string") body = Buffer.from(fault.body);
    else if (Buffer.isBuffer(fault.body)) body = fault.body;
    else {
      body = Buffer.from(JSON.stringify(fault.body));
      if (!Object.keys(headers).some((h) => h.toLowerCase() === "content-type")) {
        headers["content-type"] = "application/json";
      }
    }
  }
  headers["content-length"] = String(body?.length ?? 0);
  res.writeHead(fault.status, headers);
  res.end(body);
  return true;
}
