/**
 * Errors the cache answers with: nothing cached yet, an image that was excluded, and the
 * last fetch error of a repository that never succeeded (replayed from the store).
 */
import { RegscanError } from "../errors.js";

/**
 * There is no image data for what was asked (Flux v1's `ErrNoImageData`); the subclass says
 * why: not cached yet, no such tag, or the image was excluded.
 */
export abstract class NoImageDataError extends RegscanError {}

/** The repository (or tag) has not been warmed yet. */
export class NotCachedError extends NoImageDataError {
  readonly code = "NOT_CACHED";
  constructor(
    /** What was asked for: a canonical repository name or image reference. */
    readonly subject: string,
  ) {
    super(
      `${subject} is not in the cache yet: it has not been scanned, or its scan has not finished. ` +
        "Run `regscan scan` on it (or wait for the warmer to reach it) and ask again.",
    );
  }
}

/**
 * The repository is cached, but its last listing had no such tag (or the tag filter left it
 * out): unlike `NotCachedError`, waiting will not help until the tag is pushed.
 */
export class UnknownTagError extends NoImageDataError {
  readonly code = "UNKNOWN_TAG";
  constructor(
    readonly ref: string,
    /** When the listing that lacks the tag was made. */
    readonly listedAt: Date | undefined,
  ) {
    super(
      `${ref}: no such tag in the cached listing${listedAt ? ` of ${listedAt.toISOString()}` : ""} ` +
        "(it does not exist, or the repository's tag filter leaves it out)",
    );
  }
}

/**
 * The repository is cached, but no cached tag points at the digest: it may exist in the
 * registry, but the cache only knows images through tags.
 */
export class UnknownDigestError extends NoImageDataError {
  readonly code = "UNKNOWN_DIGEST";
  constructor(readonly ref: string) {
    super(`${ref}: no cached tag of the repository points at this digest`);
  }
}

/** The tag exists, but its image was excluded (for example no manifest for the wanted platform). */
export class ImageExcludedError extends NoImageDataError {
  readonly code = "IMAGE_EXCLUDED";
  readonly ref: string;
  /** Why the image has no info, as the client said. */
  readonly excludedReason: string;
  constructor(excluded: { ref: string; excludedReason: string }) {
    super(`${excluded.ref} is excluded: ${excluded.excludedReason}`);
    this.ref = excluded.ref;
    this.excludedReason = excluded.excludedReason;
  }
}

/**
 * The last scan of a repository that has never been scanned successfully failed; `code` is
 * the code of the original error (e.g. `NAME_UNKNOWN`, `UNAUTHORIZED`), so callers can
 * switch on it as if they had made the request themselves.
 */
export class CachedFetchError extends RegscanError {
  readonly code: string;
  readonly repository: string;
  /** The original error's message (already free of secrets: it was written from one). */
  readonly originalMessage: string;
  /** When the failing scan ran. */
  readonly at: Date | undefined;
  /** `code` and `originalMessage`: the failing scan's error, as stored. */
  constructor(failed: {
    repository: string;
    code: string;
    originalMessage: string;
    at?: Date | undefined;
  }) {
    super(
      `scanning ${failed.repository} failed (and it has never succeeded): ${failed.originalMessage}`,
    );
    this.code = failed.code;
    this.repository = failed.repository;
    this.originalMessage = failed.originalMessage;
    this.at = failed.at;
  }
}

/**
 * The store refused to keep a value the warmer fetched (too large, server gone, timeout);
 * the repository's scan stops and this becomes its last error.
 */
export class StoreWriteError extends RegscanError {
  readonly code = "STORE_ERROR";
  /** The store key that was not written. */
  readonly key: string;
  /** `cause`: the store's own error. */
  constructor(failed: { key: string; message: string; cause?: unknown }) {
    super(failed.message, causeOption(failed.cause));
    this.key = failed.key;
  }
}

/** `Warmer.start` was called while the warmer's loop was already running. */
export class WarmerRunningError extends RegscanError {
  readonly code = "WARMER_RUNNING";
  constructor() {
    super("Warmer.start: this warmer is already running; stop it (abort its signal) first");
  }
}

/**
 * A listed tag the registry then has no manifest for (`HEAD` or `GET` 404, or a digest from
 * `HEAD` that does not exist): the tag's last good value is kept, and this says why it is stale.
 */
export class ListedTagMissingError extends RegscanError {
  readonly code = "MANIFEST_UNKNOWN";
  readonly repository: string;
  readonly tag: string;
  /** Which request found nothing, e.g. `HEAD`. */
  readonly request: string;
  /** `cause`: the registry's error, when the request failed rather than answered empty. */
  constructor(missing: { repository: string; tag: string; request: string; cause?: unknown }) {
    const { repository, tag, request } = missing;
    super(
      `${repository}:${tag} is listed, but the registry's ${request} found no manifest for it ` +
        "(deleted since the listing, or a wrong digest); the last good value is kept",
      causeOption(missing.cause),
    );
    this.repository = repository;
    this.tag = tag;
    this.request = request;
  }
}

/**
 * The tag is listed but none of its fetches has succeeded yet: its own last error (code and
 * message) instead of "not cached", which waiting would not fix.
 */
export class TagFetchError extends NoImageDataError {
  readonly code = "TAG_FETCH_FAILED";
  readonly ref: string;
  /** The code of the tag's last fetch error, e.g. `UNAUTHORIZED` or `MANIFEST_UNKNOWN`. */
  readonly lastErrorCode: string;
  /** Its message (free of secrets: it was written from a regscan error). */
  readonly lastErrorMessage: string;
  /** When the failing fetch ran. */
  readonly at: Date;
  constructor(failed: {
    ref: string;
    lastErrorCode: string;
    lastErrorMessage: string;
    at: Date;
  }) {
    const { ref, lastErrorCode, lastErrorMessage, at } = failed;
    super(
      `${ref} is listed but could not be fetched (${lastErrorCode} at ${at.toISOString()}): ` +
        lastErrorMessage,
    );
    this.ref = ref;
    this.lastErrorCode = lastErrorCode;
    this.lastErrorMessage = lastErrorMessage;
    this.at = at;
  }
}

/**
 * `{ cause }` only when there is one: `Error` records a `cause` property even when given
 * `undefined`, and an error without a cause should not show one.
 */
function causeOption(cause: unknown): { cause: unknown } | undefined {
  return cause === undefined ? undefined : { cause };
}
