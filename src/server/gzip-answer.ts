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

/**
 * What {@link acceptsGzip} said of each `Accept-Encoding` value seen: clients send one of a
 * few, the same on every request, and negotiating each anew (parsing, sorting) was a sixth of
 * what the API thread allocated at 2,000 reads a second (bench:scale, 2,000,000 tags).
 * Bounded: cleared when full; values longer than {@link MAX_REMEMBERED_HEADER} are not kept.
 */
const gzipByHeader = new Map<string, boolean>();
const MAX_REMEMBERED_HEADERS = 256;
const MAX_REMEMBERED_HEADER = 256;

/** Whether `req` takes a gzip-encoded answer over an unencoded one (its `Accept-Encoding`). */
export function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers["accept-encoding"];
  if (header === undefined) return false;
  const known = gzipByHeader.get(header);
  if (known !== undefined) return known;
  const gzip = new Negotiator(req).encoding(["gzip", "identity"]) === "gzip";
  if (header.length <= MAX_REMEMBERED_HEADER) {
    if (gzipByHeader.size >= MAX_REMEMBERED_HEADERS) gzipByHeader.clear();
    gzipByHeader.set(header, gzip);
  }
  return gzip;
}

/**
 * The body of `gzip`, never more than `bytes` (zlib stops there and throws): on the event
 * loop when small, on libuv's pool otherwise.
 */
export function unzipBody(gzip: Buffer, bytes: number): Promise<Buffer> | Buffer {
  const opts = { maxOutputLength: Math.max(1, bytes) };
  return bytes <= SYNC_GUNZIP_BYTES ? gunzipSync(gzip, opts) : gunzipAsync(gzip, opts);
}
