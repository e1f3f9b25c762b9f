/**
 * The root of every error regscan throws, and the list of the codes they carry. Each
 * subclass has a stable `code` that callers can switch on; messages name the input that
 * was wrong and never carry a secret. This module imports nothing: every layer may use it.
 */

/**
 * Every code an error class of regscan declares, grouped by the layer that throws it (a
 * test keeps this list and the classes in step). Codes are the stable, public contract.
 */
export const REGSCAN_ERROR_CODES = [
  // image
  "INVALID_IMAGE_REF",
  "INVALID_IMAGE_DATA",
  "LABEL_TIMESTAMP_FORMAT",
  // registry
  "MANIFEST_UNKNOWN",
  "NAME_UNKNOWN",
  "UNAUTHORIZED",
  "DENIED",
  "TOO_MANY_REQUESTS",
  "DIGEST_MISMATCH",
  "INVALID_DIGEST",
  "UNSUPPORTED_MEDIA_TYPE",
  "TOO_LARGE",
  "TIMEOUT",
  "NETWORK",
  "INVALID_MANIFEST",
  "INVALID_IMAGE_CONFIG",
  "INVALID_RESPONSE",
  "TAG_LIST_LIMIT",
  "UNSAFE_REALM",
  "REGISTRY_ERROR",
  "INVALID_CHALLENGE",
  "INVALID_OPTION",
  "INVALID_PLATFORM",
  "CA_FILE_UNREADABLE",
  "CLIENT_CLOSED",
  "METRIC_CONFLICT",
  // registry credentials
  "INVALID_CREDENTIALS_FILE",
  "CREDENTIAL_HELPER_FAILED",
  "CLOUD_CREDENTIALS_FAILED",
  // cache and stores
  "NOT_CACHED",
  "UNKNOWN_TAG",
  "UNKNOWN_DIGEST",
  "IMAGE_EXCLUDED",
  "TAG_FETCH_FAILED",
  "WARMER_RUNNING",
  "LEASE_LOST",
  "SCAN_YIELDED",
  "INVALID_TAG_FILTER",
  "STORE_ERROR",
  "STORE_UNAVAILABLE",
  "STORE_CLOSED",
  "STORE_NOT_FOUND",
  "INVALID_STORE_URL",
  "INVALID_DEADLINE",
  "VALUE_TOO_LARGE",
  // configuration, sources, files, optional packages
  "INVALID_CONFIG",
  "KUBERNETES_SOURCE",
  "NOT_A_REGULAR_FILE",
  "FILE_TOO_LARGE",
  "MISSING_DEPENDENCY",
  // server and webhooks
  "INVALID_WEBHOOK_BODY",
  "INVALID_EVENT_ID",
  "WEBHOOK_BODY_ABORTED",
  "WEBHOOK_SECRET_UNAVAILABLE",
  "JWKS_UNAVAILABLE",
  // daemon and CLI
  "NO_IMAGES",
  "LISTEN_FAILED",
  "API_THREAD_START_FAILED",
  "API_THREAD_CALL_FAILED",
  "REQUIRED_PROVIDER_FAILED",
  "CLI_ERROR",
] as const;

/** One of regscan's error codes: a `switch` over these is checked by the compiler. */
export type RegscanErrorCode = (typeof REGSCAN_ERROR_CODES)[number];

const KNOWN_CODES: ReadonlySet<string> = new Set(REGSCAN_ERROR_CODES);

/**
 * `code` as one of regscan's codes, or `undefined` for any other (a code kept in a cache by
 * another version, `UNKNOWN` for an error that had none): what a checked `switch` needs.
 */
export function knownErrorCode(code: string): RegscanErrorCode | undefined {
  return KNOWN_CODES.has(code) ? (code as RegscanErrorCode) : undefined;
}

/** The base class: a stable `code` and a message safe to show. */
export abstract class RegscanError extends Error {
  /** A stable, machine-readable code, e.g. `INVALID_IMAGE_REF` or `MANIFEST_UNKNOWN`. */
  abstract readonly code: string;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}
