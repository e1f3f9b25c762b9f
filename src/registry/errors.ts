/**
 * Every error the registry side throws, each a class with a stable `code` and one
 * constructor shape: `new XError(context)`, the context naming host, repository and
 * reference (and a `message` when the caller words it better). Messages never carry a secret.
 */
import { RegscanError } from "../errors.js";
import { sanitizeHost, sanitizeText } from "../redact.js";
import { withoutUndefined } from "../without-undefined.js";

export type { RegscanErrorCode } from "../errors.js";

/** One entry of a registry's `{"errors":[...]}` answer. */
export interface RegistryErrorDetail {
  /** The registry's code, e.g. `MANIFEST_UNKNOWN`. */
  readonly code: string;
  /** The registry's message, sanitised and shortened. */
  readonly message?: string;
}

/** Where an error happened; every field is optional and none of them is secret. */
export interface RegistryErrorContext {
  /** The message, when the caller words it better than the class does. */
  message?: string | undefined;
  /** Registry host (with port), e.g. `ghcr.io` or `localhost:5000`. */
  host?: string | undefined;
  /** Repository path, e.g. `library/alpine`. */
  repository?: string | undefined;
  /** Tag or digest asked for. */
  reference?: string | undefined;
  /** HTTP status of the answer, when there was one. */
  status?: number | undefined;
  /** The registry's error codes and messages from the body. */
  registryErrors?: readonly RegistryErrorDetail[] | undefined;
  /** The underlying error. */
  cause?: unknown;
}

/** Most registry error details kept (and read from a body). */
export const MAX_REGISTRY_ERRORS = 5;

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

  /**
   * `wording` is the class's own message, used when the context brings none. (The class is
   * abstract, so only a subclass reaches this constructor.)
   */
  constructor(ctx: RegistryErrorContext, wording: string) {
    const host = ctx.host === undefined ? undefined : sanitizeHost(ctx.host);
    const repository = ctx.repository === undefined ? undefined : sanitizeText(ctx.repository, 255);
    const reference = ctx.reference === undefined ? undefined : sanitizeText(ctx.reference, 255);
    const registryErrors = (ctx.registryErrors ?? []).slice(0, MAX_REGISTRY_ERRORS).map((e) =>
      withoutUndefined<RegistryErrorDetail>({
        code: sanitizeText(e.code, 64),
        message: e.message === undefined ? undefined : sanitizeText(e.message),
      }),
    );
    super(
      describe({
        what: ctx.message ?? wording,
        host,
        repository,
        reference,
        status: ctx.status,
        registryErrors,
      }),
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

/** The message: what went wrong, about which image, with status and registry codes. */
function describe(error: {
  what: string;
  host: string | undefined;
  repository: string | undefined;
  reference: string | undefined;
  status: number | undefined;
  registryErrors: readonly RegistryErrorDetail[];
}): string {
  const { what, host, repository, reference, status, registryErrors } = error;
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

/** The manifest (tag or digest) does not exist. */
export class ManifestUnknownError extends RegistryError {
  readonly code = "MANIFEST_UNKNOWN";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "manifest unknown");
  }
}

/** The repository does not exist (or is invisible to these credentials). */
export class NameUnknownError extends RegistryError {
  readonly code = "NAME_UNKNOWN";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "repository name unknown");
  }
}

/** The registry wants (other) credentials: a `401` after authenticating. */
export class UnauthorizedError extends RegistryError {
  readonly code = "UNAUTHORIZED";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "unauthorized");
  }
}

/** The credentials are known but not allowed to do this: a `403`. */
export class DeniedError extends RegistryError {
  readonly code = "DENIED";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "access denied");
  }
}

/** Context of a `TooManyRequestsError`. */
export interface TooManyRequestsContext extends RegistryErrorContext {
  /** Milliseconds `Retry-After` asked for. */
  retryAfterMs?: number | undefined;
}

/** The registry said `429`; `retryAfterMs` is what its `Retry-After` asked for, if anything. */
export class TooManyRequestsError extends RegistryError {
  readonly code = "TOO_MANY_REQUESTS";
  /** Milliseconds the registry asked to wait (from `Retry-After`), when it said. */
  readonly retryAfterMs: number | undefined;
  constructor(ctx: TooManyRequestsContext = {}) {
    const after =
      ctx.retryAfterMs === undefined
        ? ""
        : ` (retry after ${Math.ceil(ctx.retryAfterMs / 1000)} s)`;
    super(ctx, `too many requests${after}`);
    this.retryAfterMs = ctx.retryAfterMs;
  }
}

/** Context of a `DigestMismatchError`. */
export interface DigestMismatchContext extends RegistryErrorContext {
  expected: string;
  actual: string;
  /** What was hashed, e.g. `manifest` or `config blob`. */
  what?: string | undefined;
}

/** Bytes received do not hash to the digest they were expected to have. */
export class DigestMismatchError extends RegistryError {
  readonly code = "DIGEST_MISMATCH";
  readonly expected: string;
  readonly actual: string;
  constructor(ctx: DigestMismatchContext) {
    const expected = sanitizeText(ctx.expected, 150);
    const actual = sanitizeText(ctx.actual, 150);
    super(ctx, `digest mismatch for ${ctx.what ?? "content"}: expected ${expected}, got ${actual}`);
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
  constructor(ctx: InvalidDigestContext) {
    const digest = sanitizeText(ctx.digest, 150);
    super(ctx, `invalid digest ${JSON.stringify(digest)}: ${ctx.reason}`);
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
  constructor(ctx: UnsupportedMediaTypeContext) {
    const mediaType = sanitizeText(ctx.mediaType, 150);
    super(ctx, `unsupported media type ${JSON.stringify(mediaType)}`);
    this.mediaType = mediaType;
  }
}

/** Context of a `TooLargeError`. */
export interface TooLargeContext extends RegistryErrorContext {
  /** What was too large, e.g. `manifest`. */
  what?: string | undefined;
  /** The limit in bytes. */
  limit?: number | undefined;
  /** The size seen or announced. */
  size?: number | undefined;
}

/** Something bigger than regscan is willing to read (manifest, config blob, body). */
export class TooLargeError extends RegistryError {
  readonly code = "TOO_LARGE";
  /** The limit in bytes, when known. */
  readonly limit: number | undefined;
  /** The size seen (or announced), when known. */
  readonly size: number | undefined;
  constructor(ctx: TooLargeContext = {}) {
    const size = ctx.size === undefined ? "" : `${ctx.size} bytes, `;
    const limit = ctx.limit === undefined ? "" : `: ${size}over the limit of ${ctx.limit} bytes`;
    super(ctx, `${ctx.what ?? "content"} too large${limit}`);
    this.limit = ctx.limit;
    this.size = ctx.size;
  }
}

/** Context of a `TimeoutError`. */
export interface TimeoutContext extends RegistryErrorContext {
  /** The deadline that expired, when it was regscan's own. */
  timeoutMs?: number | undefined;
  /** What timed out, e.g. `tag list` or `GET /v2/app/manifests/1.0`. */
  operation?: string | undefined;
}

/** A request to a registry (or a whole tag listing) took longer than its deadline. */
export class TimeoutError extends RegistryError {
  readonly code = "TIMEOUT";
  /** What timed out, when known. */
  readonly operation: string | undefined;
  /** The deadline that expired, when known. */
  readonly timeoutMs: number | undefined;
  constructor(ctx: TimeoutContext = {}) {
    const operation = ctx.operation === undefined ? undefined : sanitizeText(ctx.operation, 200);
    const after = ctx.timeoutMs === undefined ? "" : ` after ${ctx.timeoutMs} ms`;
    super(ctx, `${operation ?? "request"} timed out${after}`);
    this.operation = operation;
    this.timeoutMs = ctx.timeoutMs;
  }
}

/** Context of a `NetworkError`. */
export interface NetworkContext extends RegistryErrorContext {
  /** The low-level code, e.g. `ECONNRESET`, `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`. */
  causeCode?: string | undefined;
}

/** The connection failed (refused, reset, DNS, TLS...); `causeCode` is the system/undici code. */
export class NetworkError extends RegistryError {
  readonly code = "NETWORK";
  /** The low-level code, e.g. `ECONNRESET`, `UND_ERR_SOCKET`, `CERT_HAS_EXPIRED`. */
  readonly causeCode: string | undefined;
  constructor(ctx: NetworkContext = {}) {
    super(ctx, `network error${ctx.causeCode ? ` (${ctx.causeCode})` : ""}`);
    this.causeCode = ctx.causeCode;
  }
}

/** Context of the errors that carry a reason. */
export interface ReasonContext extends RegistryErrorContext {
  reason?: string | undefined;
}

/** A manifest that is not valid JSON or does not have the shape its media type requires. */
export class InvalidManifestError extends RegistryError {
  readonly code = "INVALID_MANIFEST";
  constructor(ctx: ReasonContext = {}) {
    super(ctx, `invalid manifest: ${sanitizeText(ctx.reason ?? "malformed")}`);
  }
}

/** An image config blob that is not valid JSON or has fields of the wrong type. */
export class InvalidImageConfigError extends RegistryError {
  readonly code = "INVALID_IMAGE_CONFIG";
  constructor(ctx: ReasonContext = {}) {
    super(ctx, `invalid image config: ${sanitizeText(ctx.reason ?? "malformed")}`);
  }
}

/** An answer that is not what the API says it is: HTML or non-JSON for JSON, the wrong shape. */
export class InvalidResponseError extends RegistryError {
  readonly code = "INVALID_RESPONSE";
  constructor(ctx: ReasonContext = {}) {
    super(ctx, `invalid response: ${sanitizeText(ctx.reason ?? "malformed")}`);
  }
}

/** A tag listing went past its bounds (pages, tags) or pointed somewhere it may not go. */
export class TagListError extends RegistryError {
  readonly code = "TAG_LIST_LIMIT";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "tag listing stopped");
  }
}

/**
 * A token realm regscan refuses to contact (plain http to a non-loopback, non-insecure
 * host, or a link-local / metadata address), so that credentials cannot be lured there.
 */
export class UnsafeRealmError extends RegistryError {
  readonly code = "UNSAFE_REALM";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "unsafe token realm");
  }
}

/** Any other error answer: an unexpected status, or a registry code without its own class. */
export class RegistryResponseError extends RegistryError {
  readonly code = "REGISTRY_ERROR";
  constructor(ctx: RegistryErrorContext = {}) {
    super(ctx, "registry error");
  }
}

/**
 * The client factory was closed while a request shared by its clients (a host's first ping)
 * was still waiting: it is dropped, not left waiting for a budget nobody will use again.
 */
export class ClientClosedError extends RegscanError {
  readonly code = "CLIENT_CLOSED";
  constructor() {
    super("the registry clients were closed: a request still waiting to be sent was dropped");
  }
}
