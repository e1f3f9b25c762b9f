/**
 * Fault injection shared by the recording proxy and the token server: a test hook sees each
 * request and may answer it itself (429, 503, a slow answer, a dropped connection) instead of
 * letting the real server answer, or shape how the answer is sent (dripped, cut mid-body).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from "node:http";

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
  /**
   * Sends the body (the fault's, or the real server's when the fault has no `status`) `bytes`
   * at a time, one piece every `everyMs`: a registry dripping its answer.
   */
  drip?: { bytes: number; everyMs: number };
  /** Sends the headers and this many bytes of the body, then resets the connection. */
  resetAfterBytes?: number;
}

/** Whether the fault changes how a body is sent (so the real server's answer is shaped too). */
export function shapesBody(fault: FaultResponse | undefined): boolean {
  return fault?.drip !== undefined || fault?.resetAfterBytes !== undefined;
}

/**
 * Sends an answer as the fault shapes it: whole, dripped, or cut after some bytes with a
 * reset. Dripping stops as soon as the client goes away.
 */
export async function sendShaped(
  res: ServerResponse,
  { status, headers, body }: { status: number; headers: OutgoingHttpHeaders; body: Buffer },
  fault: FaultResponse,
): Promise<void> {
  res.writeHead(status, { ...headers, "content-length": String(body.length) });
  res.flushHeaders();
  const cut = fault.resetAfterBytes;
  const end = cut === undefined ? body.length : Math.min(cut, body.length);
  const step = fault.drip ? Math.max(1, fault.drip.bytes) : end;
  for (let at = 0; at < end && !res.destroyed; at += step) {
    if (at > 0 && fault.drip) await new Promise((r) => setTimeout(r, fault.drip?.everyMs));
    if (res.destroyed) return;
    res.write(body.subarray(at, Math.min(at + step, end)));
  }
  if (cut !== undefined) {
    // Let the bytes written so far leave before the reset.
    await new Promise((r) => setTimeout(r, 20));
    res.socket?.resetAndDestroy();
    return;
  }
  res.end();
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
  if (shapesBody(fault)) {
    await sendShaped(res, { status: fault.status, headers, body: body ?? Buffer.alloc(0) }, fault);
    return true;
  }
  headers["content-length"] = String(body?.length ?? 0);
  res.writeHead(fault.status, headers);
  res.end(body);
  return true;
}

/** Whatever takes a fault hook: a registry, its recording proxy, the token server. */
export interface FaultTarget {
  setFault(hook: FaultHook | undefined): void;
}

/**
 * Runs `fn` with `fault` injected by `target`, and removes the fault when `fn` ends, however
 * it ends, so that a failing test cannot leave it to the next one.
 */
export async function withFault<T>(
  target: FaultTarget,
  fault: FaultHook,
  fn: () => T | Promise<T>,
): Promise<T> {
  target.setFault(fault);
  try {
    return await fn();
  } finally {
    target.setFault(undefined);
  }
}
