/**
 * Refreshes the due tags of one repository scan: `HEAD` first (an unchanged digest only
 * extends the deadline in the index), each digest's manifest and config fetched once per
 * pass and stored as an image record before any index entry names it, the adaptive
 * interval, and the events for new and moved tags.
 */
import type { Logger } from "pino";
import type { ImageEntry } from "../image/info.js";
import type { Client } from "../registry/client.js";
import { artifactTag } from "./artifact-tags.js";
import type { DueTag } from "./due-tags.js";
import { errorCode, MANIFEST_UNKNOWN, summarizeError, TOO_MANY_REQUESTS } from "./error-summary.js";
import { ListedTagMissingError, StoreWriteError } from "./errors.js";
import {
  digestOfImageId,
  encodeImageRecord,
  IMAGE_RECORD_LIFETIME_MS,
  type IndexEntry,
  imageIdOf,
  isExcludedImageId,
  isLegacyImageId,
} from "./index-records.js";
import type { KnownImages } from "./known-images.js";
import type { NewTagChoice, NewTagFetchPlan } from "./new-tag-fetch.js";
import { MAX_REFRESH_MS, nextRefreshInterval } from "./refresh-policy.js";
import type { ScanIndex } from "./scan-index.js";
import type { WarmContext, WarmJob } from "./warm-context.js";
import type { RepositoryScanResult, TagEvent } from "./warmer-types.js";

/** An image as the refresher knows it: its record's id, and whether it is excluded. */
interface StoredImage {
  id: string;
  digest: string | undefined;
}

/** What a {@link TagRefresher} works with: one repository scan's context and its results. */
export interface TagRefresherOptions {
  ctx: WarmContext;
  job: WarmJob;
  client: Client;
  index: ScanIndex;
  /** Image ids already in the index by digest, so that a new tag on a known image costs no `GET`. */
  known: KnownImages;
  /**
   * The tags of the last listing, to tell new tags apart (none on the first scan, which
   * reports no new tags).
   */
  previousTags?: readonly string[] | undefined;
  /** Counted into as tags are refreshed; new and moved tags are appended. */
  result: RepositoryScanResult;
  log: Logger;
  /** The scan's signal: every fetch stops with it (writes run on their own deadline). */
  signal: AbortSignal;
  /** How tags not in the index are asked for (`HEAD` first or one `GET` by tag). */
  plan: NewTagFetchPlan;
  /** Where new-tag and moved-tag events go (the scan holds them until its record is written). */
  emit: (event: TagEvent) => void;
}

/** What one refresh found for a tag, for the new-tag and moved-tag events. */
interface TagChange {
  tag: string;
  /** The digest found now (none when only a GET by tag without a digest answered). */
  digest: string | undefined;
  /** The digest the index had, when the tag was known. */
  previousDigest: string | undefined;
  now: number;
}

/** Refreshes single tags of one repository, sharing fetches by digest within the pass. */
export class TagRefresher {
  /** Images fetched or being fetched in this pass, by digest. */
  readonly #byDigest = new Map<string, Promise<StoredImage>>();
  /** Image ids already in the index, by digest (built when first asked; see KnownImages). */
  readonly #known: KnownImages;
  readonly #ctx: WarmContext;
  readonly #job: WarmJob;
  readonly #client: Client;
  readonly #index: ScanIndex;
  readonly #previousTagList: readonly string[] | undefined;
  readonly #result: RepositoryScanResult;
  readonly #log: Logger;
  readonly #signal: AbortSignal;
  readonly #plan: NewTagFetchPlan;
  readonly #emit: (event: TagEvent) => void;
  #previousTags: Set<string> | undefined;

  constructor(opts: TagRefresherOptions) {
    this.#ctx = opts.ctx;
    this.#job = opts.job;
    this.#client = opts.client;
    this.#index = opts.index;
    this.#previousTagList = opts.previousTags;
    this.#result = opts.result;
    this.#log = opts.log;
    this.#signal = opts.signal;
    this.#plan = opts.plan;
    this.#emit = opts.emit;
    this.#known = opts.known;
  }

  /**
   * Checks one due tag and writes what it found. Throws on a `429` (the caller abandons the
   * repository), on a refused write (`StoreWriteError`) and on other fetch failures (the
   * tag's error, `MANIFEST_UNKNOWN` included): the caller keeps the tag's last value then.
   * Artifact tags (signatures, attestations, SBOMs, referrers) are excluded by name, unfetched.
   */
  async refresh(due: DueTag): Promise<void> {
    const { tag, entry: known } = due;
    if (artifactTag(tag)) return this.#excludeArtifact(tag);
    // A tag never seen: one GET by tag may do where HEAD + GET by digest would be two.
    const fetchTag = this.#client.fetchTag?.bind(this.#client);
    if (known || !fetchTag) return this.#refreshHeadFirst(due, this.#plan);
    const choice = await this.#plan.choose(this.#signal);
    try {
      if (choice.headFirst) await this.#refreshHeadFirst(due, choice);
      else await this.#refreshNewByGet(tag, fetchTag, choice);
    } finally {
      choice.end();
    }
  }

  /**
   * `HEAD` first: an unchanged digest only extends the tag's deadline; otherwise the image
   * is fetched by digest (or, when `HEAD` failed, by tag). A new tag's digest goes to `seen`.
   */
  async #refreshHeadFirst(due: DueTag, seen: Pick<NewTagChoice, "observe">): Promise<void> {
    const { tag, entry: known } = due;
    const previousId = known?.image;
    const previousDigest = previousId === undefined ? undefined : digestOfImageId(previousId);
    let digest: string | undefined;
    try {
      const head = await this.#client.head(tag, { signal: this.#signal });
      if (!head) throw this.#missing({ tag, request: "HEAD" });
      digest = head.digest;
      if (!known) seen.observe(digest);
    } catch (error) {
      const code = errorCode(error);
      if (code === MANIFEST_UNKNOWN) throw this.#missing({ tag, request: "HEAD", cause: error });
      if (code === TOO_MANY_REQUESTS || this.#signal.aborted) throw error;
      // Some registries answer HEAD badly; a GET by tag still works there.
      this.#log.debug({ tag, error: summarizeError(error) }, "HEAD failed; fetching by tag");
    }
    const now = this.#ctx.now();
    // An unchanged digest is enough, unless the stored image predates annotations being
    // kept apart from labels: then its labels may hold them, and it is fetched again.
    if (
      known &&
      previousId !== undefined &&
      digest !== undefined &&
      digest === previousDigest &&
      !isLegacyImageId(previousId)
    ) {
      const excluded = isExcludedImageId(previousId);
      const intervalMs = nextRefreshInterval(
        { previousMs: known.intervalMs, changed: false, excluded },
        this.#ctx.refresh,
      );
      // Without the entry's last error: the check succeeded, it is fresh again.
      this.#set(tag, { image: previousId, checkedAt: now, intervalMs, deadline: now + intervalMs });
      this.#result.unchanged++;
      if (excluded) this.#result.excluded++;
      this.#ctx.metrics.getsAvoidedByHead.inc();
      return;
    }
    let image: StoredImage;
    try {
      image = digest === undefined ? await this.#fetchTag(tag) : await this.#fetchDigest(digest);
    } catch (error) {
      if (errorCode(error) === MANIFEST_UNKNOWN) {
        // HEAD named a digest the registry then does not have: a bogus answer, not a fresh value.
        throw this.#missing({
          tag,
          request: digest === undefined ? "GET" : `GET of ${digest} (from HEAD)`,
          cause: error,
        });
      }
      throw error;
    }
    if (digest === undefined && !known && image.digest !== undefined) {
      seen.observe(image.digest);
    }
    digest ??= image.digest;
    const excluded = isExcludedImageId(image.id);
    const intervalMs = nextRefreshInterval(
      {
        previousMs: known?.intervalMs,
        // Known only now when HEAD failed: a GET by tag that finds the same digest is no move.
        changed: known !== undefined && digest !== previousDigest,
        excluded,
      },
      this.#ctx.refresh,
    );
    this.#set(tag, { image: image.id, checkedAt: now, intervalMs, deadline: now + intervalMs });
    this.#result.refreshed++;
    if (excluded) this.#result.excluded++;
    this.#ctx.metrics.tagsRefreshed.inc();
    this.#notify({ tag, digest, previousDigest, now });
  }

  /**
   * A tag not in the index, with one manifest `GET` by tag: its verified digest, then the
   * rest of its image unless this pass or the index already has that image.
   */
  async #refreshNewByGet(
    tag: string,
    fetchTag: NonNullable<Client["fetchTag"]>,
    seen: Pick<NewTagChoice, "observe">,
  ): Promise<void> {
    let digest: string;
    let image: StoredImage;
    try {
      const fetched = await fetchTag(tag, {
        signal: this.#signal,
        known: (d) => this.#byDigest.has(d) || this.#known.has(d),
      });
      digest = fetched.digest;
      // Counted as soon as known: choices waiting for the sample go on meanwhile.
      seen.observe(digest);
      image = fetched.entry
        ? await this.#storeOnce(fetched.entry, digest)
        : await this.#fetchDigest(digest);
    } catch (error) {
      if (errorCode(error) === MANIFEST_UNKNOWN) {
        throw this.#missing({ tag, request: "GET", cause: error });
      }
      throw error;
    }
    const now = this.#ctx.now();
    const excluded = isExcludedImageId(image.id);
    const intervalMs = nextRefreshInterval({ changed: false, excluded }, this.#ctx.refresh);
    this.#set(tag, { image: image.id, checkedAt: now, intervalMs, deadline: now + intervalMs });
    this.#result.refreshed++;
    if (excluded) this.#result.excluded++;
    this.#ctx.metrics.tagsRefreshed.inc();
    this.#notify({ tag, digest, previousDigest: undefined, now });
  }

  /**
   * The tag is listed but the registry has no manifest for it (deleted since the listing, or
   * a bogus digest): an error, so that the last good value is kept and says why it is stale.
   */
  #missing(missing: { tag: string; request: string; cause?: unknown }): ListedTagMissingError {
    return new ListedTagMissingError({ repository: this.#job.name.toString(), ...missing });
  }

  /** An artifact tag: excluded by name, for as long as the longest interval (it cannot change). */
  #excludeArtifact(tag: string): void {
    const now = this.#ctx.now();
    this.#set(tag, {
      artifact: true,
      checkedAt: now,
      intervalMs: MAX_REFRESH_MS,
      deadline: now + MAX_REFRESH_MS,
    });
    this.#result.excluded++;
  }

  /** Reports a moved tag, or a new one (one not in the previous listing). */
  #notify({ tag, digest, previousDigest, now }: TagChange): void {
    if (digest === undefined) return;
    const repository = this.#result.repository;
    if (previousDigest !== undefined && previousDigest !== digest) {
      this.#result.movedTags.push(tag);
      this.#emit({
        type: "moved-tag",
        repository,
        tag,
        digest,
        previousDigest,
        at: new Date(now),
      });
      return;
    }
    if (!this.#previousTagList) return;
    // Built on the first fetched tag only: a scan with nothing fetched never pays for it.
    this.#previousTags ??= new Set(this.#previousTagList);
    if (!this.#previousTags.has(tag)) {
      this.#result.newTags.push(tag);
      this.#emit({ type: "new-tag", repository, tag, digest, at: new Date(now) });
    }
  }

  #fetchDigest(digest: string): Promise<StoredImage> {
    let pending = this.#byDigest.get(digest) ?? this.#knownImage(digest);
    if (!pending) {
      pending = this.#client
        .manifest(digest, { signal: this.#signal })
        .then((entry) => this.#store(entry, digest));
      // A failed fetch is not remembered: another tag may try again in this pass.
      pending.catch(() => this.#byDigest.delete(digest));
      this.#byDigest.set(digest, pending);
    }
    return pending;
  }

  /**
   * Stores an image fetched by tag under its digest, unless another tag of this pass stored
   * it meanwhile (both asked before either knew): then that one is used, written once.
   */
  #storeOnce(entry: ImageEntry, digest: string): Promise<StoredImage> {
    let pending = this.#byDigest.get(digest) ?? this.#knownImage(digest);
    if (!pending) {
      pending = this.#store(entry, digest);
      pending.catch(() => this.#byDigest.delete(digest));
      this.#byDigest.set(digest, pending);
    }
    return pending;
  }

  /** An image the index already has, made on demand: one promise per known image held 9.5 MB. */
  #knownImage(digest: string): Promise<StoredImage> | undefined {
    const id = this.#known.get(digest);
    return id === undefined ? undefined : Promise.resolve({ id, digest });
  }

  async #fetchTag(tag: string): Promise<StoredImage> {
    const entry = await this.#client.manifest(tag, { signal: this.#signal });
    const image = await this.#store(entry, entry.info?.digest);
    if (entry.info) this.#byDigest.set(entry.info.digest, Promise.resolve(image));
    return image;
  }

  /** Writes a fetched image's record (before any index entry names it). */
  async #store(entry: ImageEntry, digest: string | undefined): Promise<StoredImage> {
    if (entry.info) entry.info.lastFetched ??= new Date(this.#ctx.now());
    const id = imageIdOf(entry, digest);
    const key = this.#ctx.keys.image(id);
    try {
      // Not the scan's signal: a write that started completes, so nothing is half-written.
      await this.#ctx.store.set(
        key,
        new Date(this.#ctx.now() + IMAGE_RECORD_LIFETIME_MS),
        encodeImageRecord(entry),
        { signal: this.#ctx.writeTimeout.signal() },
      );
    } catch (error) {
      const reason = summarizeError(error).message;
      throw new StoreWriteError({
        key,
        message: `storing ${this.#job.name.toString()}@${digest ?? "?"} failed: ${reason}`,
        cause: error,
      });
    }
    return { id, digest: entry.info?.digest ?? digest };
  }

  #set(tag: string, entry: IndexEntry): void {
    this.#index.set(tag, entry);
  }
}
