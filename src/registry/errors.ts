/**
 * Every error the registry side throws, each with a stable `code`, plus the mapping from a
 * registry's error answer (`{"errors":[{code,message}]}` and an HTTP status) to the right
 * class. Messages name host, repository and reference; they never carry a secret.
 */
import { RegscanError } from "../errors.js";

/** One entry of a registry's `{"errors":[...]}` answer. */
export interface RegistryErrorDetail {
  /** The registry's code, e.g. `MANIFEST_UNKNOWN`. */
  readonly code: string;
  /** The registry's message, sanitised and shortened. */
  readonly message?: string;
}

/** Where an error happened; every field is optional and none of them is secret. */
export interface RegistryErrorContext {
  /** Registry host (with port), e.g. `ghcr.io` or `localhost:5000`. */
  host?: string;
  /** Repository path, e.g. `library/alpine`. */
  repository?: string;
  /** Tag or digest asked for. */
  reference?: string;
  /** HTTP status of the answer, when there was one. */
  status?: number;
  /** The registry's error codes and messages from the body. */
  registryErrors?: readonly RegistryErrorDetail[];
  /** The underlying error. */
  cause?: unknown;
}

const MAX_REGISTRY_MESSAGE = 200;
const MAX_REGISTRY_ERRORS = 5;

/**
 * Removes what could be secret from a string that came from the outside: a URL's userinfo
 * and query, and anything following `Bearer` / `Basic`. Also drops control characters and
 * shortens it, so a hostile registry cannot flood a log line.
 */
export function sanitizeText(text: string, max = MAX_REGISTRY_MESSAGE): string {
  let out = text
    .replace(/\p{Cc}+/gu, " ")
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, "$1")
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^\s?#]*)\?[^\s#]*/gi, "$1?…")
    .replace(/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 …")
    .replace(/\b(password|passwd|token|access_token|refresh_token|secret)=[^\s&"']+/gi, "$1=…");
  if (out.length > max) out = `${out.slice(0, max)}…`;
  return out;
}

/** A host as it may appear in a message: no userinfo, no path, bounded. */
function safeHost(host: string): string {
  const at = host.lastIndexOf("@");
  return sanitizeText(at >= 0 ? host.slice(at + 1) : host, 255);
}

/** The common base of every registry error: status, host, repository and registry codes. */
export abstract class RegistryError extends RegscanError {
  /** HTTP status of the registry's answer, when there was one. */
  readonly status: number | undefined;
  /** Registry host (with port). */
  readonly host: string | undefined;
  /** Repository path. */
  readonly repository: string | undefined;
  /** Tag or digest asked for. */
  readonly reference: string | undefined;
  /** The registry's error codes and (sanitised) messages. */
  readonly registryErrors: readonly RegistryErrorDetail[];

  constructor(what: string, ctx: RegistryErrorContext = {}) {
    const host = ctx.host === undefined ? undefined : safeHost(ctx.host);
    const repository = ctx.repository === undefined ? undefined : sanitizeText(ctx.repository, 255);
    const reference = ctx.reference === undefined ? undefined : sanitizeText(ctx.reference, 255);
    const registryErrors = (ctx.registryErrors ?? []).slice(0, MAX_REGISTRY_ERRORS).map((e) => ({
      code: sanitizeText(e.code, 64),
      ...(e.message === undefined ? {} : { message: sanitizeText(e.message) }),
    }));
    super(
      describe(what, host, repository, reference, ctx.status, registryErrors),
      ctx.cause === undefined ? undefined : { cause: ctx.cause },
    );
    this.status = ctx.status;
    this.host = host;
    this.repository = repository;
    this.reference = reference;
    this.registryErrors = registryErrors;
  }

  /** The registry's first error code, e.g. `MANIFEST_UNKNOWN`, when it sent one. */
  get registryCode(): string | undefined {
    return this.registryErrors[0]?.code;
  }
}

function describe(
  what: string,
  host: string | undefined,
  repository: string | undefined,
  reference: string | undefined,
  status: number | undefined,
  registryErrors: readonly RegistryErrorDetail[],
): string {
  let subject = "";
  if (host !== undefined && repository !== undefined) subject = `${host}/${repository}`;
  else if (host !== undefined) subject = host;
  else if (repository !== undefined) subject = repository;
  if (reference !== undefined && subject !== "") {
    subject += reference.includes(":") ? `@${reference}` : `:${reference}`;
  } else if (reference !== undefined) subject = reference;
  const details: string[] = [];
  if (status !== undefined) details.push(`HTTP ${status}`);
  for (const e of registryErrors) {
    details.push(e.message ? `${e.code}: ${e.message}` : e.code);
  }
  return `${what}${subject ? `: ${subject}` : ""}${details.length ? ` (${details.join("; ")})` : ""}`;
}

/**
 * Every class below takes either its context alone (and words its own message) or a message
 * first and then the context, for callers that know better what went wrong.
 */
function split<C extends RegistryErrorContext>(
  a: string | C | undefined,
  b: C | undefined,
): [string | undefined, C] {
  if (typeof a === "string") return [a, b ?? ({} as C)];
  return [undefined, a ?? b ?? ({} as C)];
}

/**
 * A registry error that words its own message from its class's `wording` unless the
 * caller gives one: `new DeniedError(ctx)` or `new DeniedError("message", ctx)`.
 */
export abstract class WordedRegistryError extends RegistryError {
  /** The message when the caller gives none. */
  static readonly wording: string = "registry error";
  constructor(a?: string | RegistryErrorContext, b?: RegistryErrorContext) {
    const [message, ctx] = split(a, b);
    super(message ?? (new.target as typeof WordedRegistryError).wording, ctx);
  }
}

/** The manifest (tag or digest) does not exist. */
export class ManifestUnknownError extends WordedRegistryError {
  static override readonly wording = "manifest unknown";
  readonly code = "MANIFEST_UNKNOWN";
}

/** The repository does not exist (or is invisible to these credentials). */
export class NameUnknownError extends WordedRegistryError {
  static override readonly wording = "repository name unknown";
  readonly code = "NAME_UNKNOWN";
}

/** The registry wants (other) credentials: a `401` after authenticating. */
export class UnauthorizedError extends WordedRegistryError {
  static override readonly wording = "unauthorized";
  readonly code = "UNAUTHORIZED";
}

/** The credentials are known but not allowed to do this: a `403`. */
export class DeniedError extends WordedRegistryError {
  static override readonly wording = "access denied";
  readonly code = "DENIED";
}

/** Context of a `TooManyRequestsError`. */
export interface TooManyRequestsContext extends RegistryErrorContext {
  /** Milliseconds `Retry-After` asked for. */
  retryAfterMs?: number;
}

/** The registry said `429`; `retryAfterMs` is what its `Retry-After` asked for, if anything. */
export class TooManyRequestsError extends RegistryError {
  readonly code = "TOO_MANY_REQUESTS";
  /** Milliseconds the registry asked to wait (from `Retry-After`), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(a?: string | TooManyRequestsContext, b?: TooManyRequestsContext) {
    const [message, ctx] = split(a, b);
    const after =
      ctx.retryAfterMs === undefined
        ? ""
        : ` (retry after ${Math.ceil(ctx.retryAfterMs / 1000)} s)`;
    super(message ?? `too many requests${after}`, ctx);
    this.retryAfterMs = ctx.retryAfterMs;
  }
}

/** Context of a `DigestMismatchError`. */
export interface DigestMismatchContext extends RegistryErrorContext {
  expected: string;
  actual: string;
  /** What was hashed, e.g. `manifest` or `config blob`. */
  what?: string;
}

/** Bytes received do not hash to the digest they were expected to have. */
export class DigestMismatchError extends RegistryError {
  readonly code = "DIGEST_MISMATCH";
  readonly expected: string;
  readonly actual: string;
  constructor(a: string | DigestMismatchContext, b?: DigestMismatchContext) {
    const [message, ctx] = split(a, b);
    const expected = sanitizeText(ctx.expected ?? "", 150);
    const actual = sanitizeText(ctx.actual ?? "", 150);
    super(
      message ??
        `digest mismatch for ${ctx.what ?? "content"}: expected ${expected}, got ${actual}`,
      ctx,
    );
    this.expected = expected;
    this.actual = actual;
  }
}

/** Context of an `InvalidDigestError`. */
export interface InvalidDigestContext extends RegistryErrorContext {
  digest: string;
  reason: string;
}

/** A digest string that is malformed or uses an algorithm regscan does not support. */
export class InvalidDigestError extends RegistryError {
  readonly code = "INVALID_DIGEST";
  readonly digest: string;
  constructor(a: string | InvalidDigestContext, b?: InvalidDigestContext) {
    const [message, ctx] = split(a, b);
    const digest = sanitizeText(ctx.digest ?? "", 150);
    super(message ?? `invalid digest ${JSON.stringify(digest)}: ${ctx.reason}`, ctx);
    this.digest = digest;
  }
}

/** Context of an `UnsupportedMediaTypeError`. */
export interface UnsupportedMediaTypeContext extends RegistryErrorContext {
  mediaType: string;
}

/** A manifest (or blob) of a media type regscan does not understand. */
export class UnsupportedMediaTypeError extends RegistryError {
  readonly code = "UNSUPPORTED_MEDIA_TYPE";
  readonly mediaType: string;
  constructor(a: string | UnsupportedMediaTypeContext, b?: UnsupportedMediaTypeContext) {
    const [message, ctx] = split(a, b);
    const mediaType = sanitizeText(ctx.mediaType ?? "", 150);
    super(message ?? `unsupported media type ${JSON.stringify(mediaType)}`, ctx);
    this.mediaType = mediaType;
  }
}

/** Context of a `TooLargeError`. */
export interface TooLargeContext extends RegistryErrorContext {
  /** What was too large, e.g. `manifest`. */
  what?: string;
  /** The limit in bytes. */
  limit?: number;
  /** The size seen or announced. */
  size?: number;
}

/** Something bigger than regscan is willing to read (manifest, config blob, body). */
export class TooLargeError extends RegistryError {
  readonly code = "TOO_LARGE";
  /** The limit in bytes, when known. */
  readonly limit: number | undefined;
  /** The size seen (or announced), when known. */
  readonly size: number | undefined;
  constructor(a: string | TooLargeContext, b?: TooLargeContext) {
    const [message, ctx] = split(a, b);
    const size = ctx.size === undefined ? "" : `${ctx.size} bytes, `;
    const limit = ctx.limit === undefined ? "" : `: ${size}over the limit of ${ctx.limit} bytes`;
    super(message ?? `${ctx.what ?? "content"} too large${limit}`, ctx);
    this.limit = ctx.limit;
    this.size = ctx.size;
  }
}

/** Context of a `TimeoutError`. */
export interface TimeoutContext extends RegistryErrorContext {
  /** The deadline that expired, when it was regscan's own. */
  timeoutMs?: number;
  /** What timed out, e.g. `tag list` or `GET /v2/app/manifests/1.0`. */
  operation?: string;
}

/** A request to a registry (or a whole tag listing) took longer than its deadline. */
export class TimeoutError extends RegistryError {
  readonly code = "TIMEOUT";
  /** What timed out, when known. */
  readonly operation: string | undefined;
  /** The deadline that expired, when known. */
  readonly timeoutMs: number | undefined;
  constructor(a?: string | TimeoutContext, b?: TimeoutContext) {
    const [message, ctx] = split(a, b);
    const operation = ctx.operation === undefined ? undefined : sanitizeText(ctx.operation, 200);
    const after = ctx.timeoutMs === undefined ? "" : ` after ${ctx.timeoutMs} ms`;
    super(message ?? `${operation ?? "request"} timed out${after}`, ctx);
    this.operation = operation;
    this.timeoutMs = ctx.timeoutMs;
  }
}

/** Node / undici error codes that mean a transient connection problem worth a retry. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CLOSED",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** Context of a `NetworkError`. */
export interface NetworkContext extends RegistryErrorContext {
  /** The low-level code, e.g. `ECONNRESET`, `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`. */
  causeCode?: string;
}

/** The connection failed (refused, reset, DNS, TLS...); `causeCode` is the system/undici code. */
export class NetworkError extends RegistryError {
  readonly code = "NETWORK";
  /** The low-level code, e.g. `ECONNRESET`, `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`. */
  readonly causeCode: string | undefined;
  constructor(a?: string | NetworkContext, b?: NetworkContext) {
    const [message, ctx] = split(a, b);
    super(message ?? `network error${ctx.causeCode ? ` (${ctx.causeCode})` : ""}`, ctx);
    this.causeCode = ctx.causeCode;
  }
}

/** Context of the errors that carry a reason. */
export interface ReasonContext extends RegistryErrorContext {
  reason?: string;
}

/** A manifest that is not valid JSON or does not have the shape its media type requires. */
export class InvalidManifestError extends RegistryError {
  readonly code = "INVALID_MANIFEST";
  constructor(a: string | ReasonContext, b?: ReasonContext) {
    const [message, ctx] = split(a, b);
    super(message ?? `invalid manifest: ${sanitizeText(ctx.reason ?? "malformed")}`, ctx);
  }
}

/** An image config blob that is not valid JSON or has fields of the wrong type. */
export class InvalidImageConfigError extends RegistryError {
  readonly code = "INVALID_IMAGE_CONFIG";
  constructor(a: string | ReasonContext, b?: ReasonContext) {
    const [message, ctx] = split(a, b);
    super(message ?? `invalid image config: ${sanitizeText(ctx.reason ?? "malformed")}`, ctx);
  }
}

/** An answer that is not what the API says it is: HTML or non-JSON for JSON, the wrong shape. */
export class InvalidResponseError extends RegistryError {
  readonly code = "INVALID_RESPONSE";
  constructor(a: string | ReasonContext, b?: ReasonContext) {
    const [message, ctx] = split(a, b);
    super(message ?? `invalid response: ${sanitizeText(ctx.reason ?? "malformed")}`, ctx);
  }
}

/**
 * A token realm regscan refuses to contact (plain http to a non-loopback, non-insecure
 * host, or a link-local / metadata address), so that credentials cannot be lured there.
 */
export class UnsafeRealmError extends WordedRegistryError {
  static override readonly wording = "unsafe token realm";
  readonly code = "UNSAFE_REALM";
}

/** Any other error answer: an unexpected status, or a registry code without its own class. */
export class RegistryResponseError extends WordedRegistryError {
  static override readonly wording = "registry error";
  readonly code = "REGISTRY_ERROR";
}

/** Headers as fetch (`Headers`) or undici's `request` (a plain record) give them. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

/** One header's value (several joined by `, `), whatever form the headers come in. */
export function headerValue(headers: HeaderSource | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers.get === "function") {
    const v = (headers as { get(name: string): string | null }).get(name);
    return v ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  const lower = name.toLowerCase();
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== lower) continue;
    const v = record[key];
    return Array.isArray(v) ? v.join(", ") : v;
  }
  return undefined;
}

/**
 * Milliseconds to wait from a `Retry-After` value (delta seconds or an HTTP date), or
 * `undefined` when it is absent or unreadable. Capped at one day so a hostile value cannot
 * park a caller forever.
 */
export function parseRetryAfter(
  value: string | undefined,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  const day = 24 * 3600 * 1000;
  if (/^\d+$/.test(v)) return Math.min(Number(v) * 1000, day);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, at - now), day);
}

/** Reads `{"errors":[{code,message}]}` from a body; anything else gives `[]`. */
export function parseRegistryErrors(body: string | undefined): RegistryErrorDetail[] {
  if (!body) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof parsed !== "object" || parsed === null) return [];
  const errors = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(errors)) return [];
  const out: RegistryErrorDetail[] = [];
  for (const e of errors.slice(0, MAX_REGISTRY_ERRORS)) {
    if (typeof e !== "object" || e === null) continue;
    const code = (e as { code?: unknown }).code;
    const message = (e as { message?: unknown }).message;
    if (typeof code !== "string" || code === "") continue;
    out.push({
      code: code.toUpperCase(),
      ...(typeof message === "string" && message !== "" ? { message } : {}),
    });
  }
  return out;
}

/** What `registryErrorFromResponse` needs to know about an error answer. */
export interface RegistryErrorResponse {
  status: number;
  headers?: HeaderSource;
  /** The body, already read with a size bound (a few KiB is plenty). */
  body?: string;
  host?: string;
  repository?: string;
  /** The tag or digest asked for; a `404` without a registry code means the manifest is unknown when set, the repository otherwise. */
  reference?: string;
  /** Clock for an HTTP-date `Retry-After`. */
  now?: number;
}

/**
 * Maps a registry's error answer to the right error class: the registry's code decides first
 * (MANIFEST_UNKNOWN, NAME_UNKNOWN, UNAUTHORIZED, DENIED, TOOMANYREQUESTS), then the status.
 */
export function registryErrorFromResponse(res: RegistryErrorResponse): RegistryError {
  const registryErrors = parseRegistryErrors(res.body);
  const ctx: RegistryErrorContext = {
    status: res.status,
    registryErrors,
    ...(res.host === undefined ? {} : { host: res.host }),
    ...(res.repository === undefined ? {} : { repository: res.repository }),
    ...(res.reference === undefined ? {} : { reference: res.reference }),
  };
  const codes = new Set(registryErrors.map((e) => e.code));
  if (res.status === 429 || codes.has("TOOMANYREQUESTS") || codes.has("TOO_MANY_REQUESTS")) {
    const retryAfterMs = parseRetryAfter(headerValue(res.headers, "retry-after"), res.now);
    return new TooManyRequestsError(retryAfterMs === undefined ? ctx : { ...ctx, retryAfterMs });
  }
  if (codes.has("MANIFEST_UNKNOWN")) return new ManifestUnknownError(ctx);
  if (codes.has("NAME_UNKNOWN")) return new NameUnknownError(ctx);
  if (codes.has("DENIED") || res.status === 403) return new DeniedError(ctx);
  if (codes.has("UNAUTHORIZED") || res.status === 401) return new UnauthorizedError(ctx);
  if (res.status === 404 && registryErrors.length === 0) {
    return res.reference === undefined ? new NameUnknownError(ctx) : new ManifestUnknownError(ctx);
  }
  return new RegistryResponseError(ctx);
}

/** Statuses worth a retry: rate limiting and the gateway family. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * Whether an error is transient and the request worth repeating: `429`, `502`, `503`,
 * `504`, and connection resets (and the like). Timeouts are not retried, because the
 * caller's time is already spent; everything that is not a registry error (an abort, a
 * bug) is not retried either.
 */
export function isRetryable(err: unknown): boolean {
  if (err instanceof TooManyRequestsError) return true;
  if (err instanceof NetworkError) {
    return err.causeCode !== undefined && TRANSIENT_NETWORK_CODES.has(err.causeCode);
  }
  if (err instanceof RegistryResponseError) {
    return err.status !== undefined && RETRYABLE_STATUSES.has(err.status);
  }
  return false;
}

/**
 * The low-level code of a Node / undici error (`ECONNRESET`, `UND_ERR_SOCKET`, ...),
 * looking through `cause` a few levels deep, or `undefined`.
 */
export function lowLevelErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code !== "") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
