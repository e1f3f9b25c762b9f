/**
 * Repository answers held gzip-compressed (as they are shared through the store): sent as
 * they are to clients that accept gzip (Go's HTTP client, browsers, `fetch`, `curl
 * --compressed` all ask for it), unzipped for the others.
 */
import type { IncomingMessage } from "node:http";
import { promisify } from "node:util";
import { gunzip, gunzipSync } from "node:zlib";
import Negotiator from "negotiator";

const gunzipAsync = promisify(gunzip);

/** A body held as one gzip member, checked when it was made or read from the store. */
export interface GzipAnswer {
  readonly gzip: Buffer;
  /** Bytes of the body unzipped. */
  readonly bytes: number;
}

/** Bodies at most this long are unzipped on the event loop (about 0.1 ms per 64 KiB). */
export const SYNC_GUNZIP_BYTES = 256 * 1024;

/** Whether `req` takes a gzip-encoded answer over an unencoded one (its `Accept-Encoding`). */
export function acceptsGzip(req: IncomingMessage): boolean {
  if (req.headers["accept-encoding"] === undefined) return false;
  return new Negotiator(req).encoding(["gzip", "identity"]) === "gzip";
}

/**
 * The body of `gzip`, never more than `bytes` (zlib stops there and throws): on the event
 * loop when small, on libuv's pool otherwise.
 */
export function unzipBody(gzip: Buffer, bytes: number): Promise<Buffer> | Buffer {
  const opts = { maxOutputLength: Math.max(1, bytes) };
  return bytes <= SYNC_GUNZIP_BYTES ? gunzipSync(gzip, opts) : gunzipAsync(gzip, opts);
}
