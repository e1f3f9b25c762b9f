/**
 * One HTTP exchange as the transport chain passes it along: the request, the response with
 * its unread body, and the `Transport` function type every layer of the chain implements.
 */
import type { Dispatcher } from "undici";
import { type RegistryErrorContext, TooLargeError } from "../errors.js";
import type { PinnedAddress } from "./pinned-lookup.js";

/** The methods regscan uses. */
export type HttpMethod = "GET" | "HEAD" | "POST";

/**
 * A path on a registry's API host (`/v2/...`, query included). The origin layer gives it
 * the host's base URL: https, or plain http for an insecure host that speaks only that.
 */
export class RegistryPath {
  constructor(
    readonly host: string,
    readonly path: string,
  ) {}

  /** As logs show it: `//host/path`, without the scheme the origin layer chooses. */
  get href(): string {
    return `//${this.host}${this.path}`;
  }
}

/** A request as it moves down the chain. `headers` may carry secrets: never log them. */
export interface HttpRequest {
  method: HttpMethod;
  /** An absolute URL (a token realm, a redirect hop, a next page), or a registry path. */
  url: URL | RegistryPath;
  headers?: Record<string, string> | undefined;
  body?: string | undefined;
  signal?: AbortSignal | undefined;
  /** Total deadline of this request, headers and body (default: the stack's request timeout). */
  timeoutMs?: number | undefined;
  /** What the request is for, as errors name it, e.g. `tag list`; default the method and path. */
  operation?: string | undefined;
  /**
   * Read a 200's body (up to this many bytes) inside the chain, so that a connection dropped
   * mid-body is retried like one dropped before the headers. Only for GET, which is idempotent.
   */
  bodyLimit?: number | undefined;
  /** Connect to these addresses of the URL's host, checked by a policy: no second look-up. */
  pinnedAddresses?: readonly PinnedAddress[] | undefined;
  /** Set by the origin layer: the host is listed as insecure, its certificate is not checked. */
  skipTlsVerify?: boolean | undefined;
}

/** A response whose body has not been read yet; read it with `readBody` or drop it with `discard`. */
export interface HttpResponse {
  status: number;
  headers: Headers;
  url: URL;
  body: ResponseBody;
}

/** The body stream undici gives, or anything else that yields bytes. */
export type ResponseBody = AsyncIterable<Uint8Array> & {
  dump?: () => Promise<void>;
  /**
   * The whole body if it is at most `limit` bytes, else undefined (the rest dropped), where
   * it can be had more cheaply than by iterating it.
   */
  readAll?: (limit: number) => Promise<Buffer | undefined>;
};

/** The chain (or what is left of it below a layer): sends a request, resolves to its response. */
export type Transport = (req: HttpRequest) => Promise<HttpResponse>;

/** One layer of the pipeline: wraps the transport below it. */
export type Layer = (next: Transport) => Transport;

/** Converts undici's header record into WHATWG `Headers` (case-insensitive look-ups). */
export function toHeaders(raw: Dispatcher.ResponseData["headers"]): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const item of v) h.append(k, item);
    else h.append(k, v);
  }
  return h;
}

/** Error bodies are read up to this many bytes; the rest is dropped. */
export const ERROR_BODY_LIMIT = 16 * 1024;

/** Thrown by `readBody` when a body is larger than its bound; the caller maps it to its error. */
export class BodyTooLargeSignal extends Error {
  constructor(readonly limit: number) {
    super(`body larger than ${limit} bytes`);
  }
}

/**
 * Reads the whole body, refusing more than `limit` bytes (checked against Content-Length
 * first, then while streaming, so an endless body cannot fill memory).
 */
export async function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > limit) {
    await discard(res);
    throw new BodyTooLargeSignal(limit);
  }
  if (res.body.readAll) {
    const bytes = await res.body.readAll(limit);
    if (bytes === undefined) throw new BodyTooLargeSignal(limit);
    return bytes;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > limit) {
      await discard(res);
      throw new BodyTooLargeSignal(limit);
    }
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks, size);
}

/** `readBody`, with a body over `limit` reported as a `TooLargeError` naming `what`. */
export async function readBounded(
  res: HttpResponse,
  bound: {
    /** Most bytes read. */
    limit: number;
    /** What the body is, for the error, e.g. `manifest`. */
    what: string;
    ctx?: RegistryErrorContext | undefined;
  },
): Promise<Buffer> {
  const { limit, what, ctx = {} } = bound;
  try {
    return await readBody(res, limit);
  } catch (err) {
    if (!(err instanceof BodyTooLargeSignal)) throw err;
    const declared = Number(res.headers.get("content-length"));
    throw new TooLargeError({
      ...ctx,
      what,
      limit,
      size: Number.isFinite(declared) && declared > limit ? declared : undefined,
    });
  }
}

/** Reads at most `limit` bytes as text, dropping the rest (for error bodies). */
export async function readTextPrefix(res: HttpResponse, limit: number): Promise<string> {
  try {
    return (await readBody(res, limit)).toString("utf8");
  } catch (err) {
    if (err instanceof BodyTooLargeSignal) return "";
    throw err;
  }
}

/** A body already read into memory. */
export function bufferedBody(bytes: Buffer): ResponseBody {
  return {
    async *[Symbol.asyncIterator]() {
      if (bytes.byteLength > 0) yield bytes;
    },
    dump: async () => {},
    readAll: async (limit) => (bytes.byteLength > limit ? undefined : bytes),
  };
}

/** A body that fails with `error` when read (e.g. one found too large while buffering). */
export function failingBody(error: unknown): ResponseBody {
  return {
    // biome-ignore lint/correctness/useYield: it fails before yielding anything, by design
    async *[Symbol.asyncIterator]() {
      throw error;
    },
    dump: async () => {},
    readAll: async () => {
      throw error;
    },
  };
}

/** Drops an unread body so that the connection can be reused. */
export async function discard(res: HttpResponse): Promise<void> {
  try {
    if (res.body.dump) await res.body.dump();
    else for await (const _ of res.body) void _;
  } catch {
    // The connection is closed instead of reused; nothing else to do.
  }
}
