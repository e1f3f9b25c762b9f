/**
 * The last few repositories' JSON answers, each kept with the version of the repository
 * record it was built from: the warmer rewrites that record after every scan, so a new
 * version means the answer must be rebuilt, and until then every reader gets the same
 * bytes. Concurrent misses for one repository share one build. An answer is its whole
 * body, as text or gzip-compressed (as shared through the store: a tenth of the bytes, so
 * ten times the answers in the same bound); for a body too large to hold, its layout
 * (written out slice by slice); or, when that is too large as well, the fact that it is
 * (each reader's body is then produced as it is read).
 */

import type { RepositoryStream } from "../registry/repository-stream.js";
import type { GzipAnswer } from "./gzip-answer.js";
import { type RepositoryJsonLayout, type RepositoryText, textBytes } from "./repository-answer.js";

/** A body too large to hold, even as its layout. */
export interface OversizedAnswer {
  readonly oversized: true;
}

/** A repository's answer: its body (text or gzip), its layout, or word that neither is held. */
export type RepositoryAnswer = RepositoryText | GzipAnswer | RepositoryJsonLayout | OversizedAnswer;

/** The one {@link OversizedAnswer}. */
export const OVERSIZED: OversizedAnswer = Object.freeze({ oversized: true });

/** Whether `answer` is word that it is too large to hold. */
export function isOversized(answer: RepositoryAnswer): answer is OversizedAnswer {
  return !isText(answer) && "oversized" in answer;
}

/** Whether `answer` is its body itself. */
export function isText(answer: RepositoryAnswer): answer is RepositoryText {
  return Array.isArray(answer);
}

/** Whether `answer` is its body gzip-compressed. */
export function isGzip(answer: RepositoryAnswer): answer is GzipAnswer {
  return !isText(answer) && "gzip" in answer;
}

/** Bytes an answer keeps alive (an oversized one: its entry, roughly). */
export function answerBytes(answer: RepositoryAnswer): number {
  if (isText(answer)) return textBytes(answer);
  if (isGzip(answer)) return answer.gzip.byteLength;
  return isOversized(answer) ? 64 : answer.retainedBytes;
}

/**
 * What a repository's stored record says now: its version (changes whenever any replica's
 * warmer rewrites the record) and when its tags were last listed, by whichever replica.
 */
export interface StoredRepositoryState {
  version: string;
  /** When the tag list was last fetched successfully (the record's `lastUpdate`). */
  lastUpdate?: Date | undefined;
  /** How many tags the record lists (small repositories are built without a heavy turn). */
  tags?: number | undefined;
  /**
   * Opens the repository's answer from the record this state was read from, without
   * reading that record again: a build then costs the index and image reads alone, and its
   * answer is exactly the version it is kept under. Without it, the build reads the record.
   */
  open?: ((signal: AbortSignal) => Promise<RepositoryStream>) | undefined;
  /**
   * Lets go of the record `open` would use: the answer came without a build (kept, or
   * shared through the store), and the state is shared for a second, which at hundreds of
   * reads a second held hundreds of tag lists into the old generation. A build after it
   * reads the record again.
   */
  release?: (() => void) | undefined;
}

/** What a build of {@link RepositoryJsonCache.get} says of the body it hands over. */
export interface MadeAnswer {
  /** When the body was made, ms since the epoch, if before this build (default: now). */
  builtAt?: number;
  /** False: the body is not kept (default: kept when it fits). */
  keep?: boolean;
}

/** A built answer and the record version it belongs to. */
interface Entry {
  version: string;
  body: RepositoryAnswer;
  builtAt: number;
  /** When it was last served (or kept). */
  usedAt: number;
}

/**
 * Default bytes of answers kept: 8 MiB, about 140 answers of 100 tags as text (bench:scale's
 * images without labels: 58 KB each), about 750 as their gzip (11 KB: answers shared through
 * the store are kept so; past it they come from the store, see shared-answers.ts). These buffers are
 * outside V8's heap cap and count in full against a replica's 256 MiB, with the `malloc`
 * heap they fragment: at 16 MiB, the replica that bench:scale reads every repository through
 * (10,000 of them) had 38 MiB of `malloc` heap against the others' 10, and peaked at 261 MiB. A
 * larger answer (a 25,000-tag repository's is about 8 MB) is held as its layout instead.
 */
export const DEFAULT_REPOSITORY_CACHE_BYTES = 8 * 1024 * 1024;

/** The bounds of a {@link RepositoryJsonCache}. */
export interface RepositoryJsonCacheOptions {
  /**
   * Most repositories kept (default 4,096): the byte bound is what limits memory; this only
   * keeps the table of a fleet of tiny answers from growing without end.
   */
  maxEntries?: number | undefined;
  /** Most bytes kept together; an answer larger than this is not kept (default 8 MiB). */
  maxBytes?: number | undefined;
  /**
   * How long a body is served at most, even when its version still holds (a tag record
   * that expired or changed without a new repository record shows then); default 60 s.
   */
  maxAgeMs?: number | undefined;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: (() => number) | undefined;
}

/** A bounded, version-checked cache of response bodies. */
export class RepositoryJsonCache {
  readonly #entries = new Map<string, Entry>();
  readonly #building = new Map<string, { version: string; body: Promise<RepositoryAnswer> }>();
  /** When each repository was last asked for by {@link admits}, oldest first (bounded). */
  readonly #asked = new Map<string, number>();
  readonly #versions = new Map<
    string,
    { at: number; version: Promise<StoredRepositoryState | undefined> }
  >();
  #bytes = 0;

  readonly #maxEntries: number;
  /** Most bytes kept together (an answer larger than this is not kept). */
  readonly maxBytes: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(opts: RepositoryJsonCacheOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 4_096;
    this.maxBytes = opts.maxBytes ?? DEFAULT_REPOSITORY_CACHE_BYTES;
    this.#maxAgeMs = opts.maxAgeMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The body kept for `name` at `version`, if any (no build, no promise: the hot path). */
  peek(name: string, version: string): RepositoryAnswer | undefined {
    const hit = this.#entries.get(name);
    if (hit?.version !== version || this.#now() - hit.builtAt >= this.#maxAgeMs) return undefined;
    // Re-inserting keeps the map in least-recently-used order for eviction.
    this.#entries.delete(name);
    this.#entries.set(name, hit);
    hit.usedAt = this.#now();
    return hit.body;
  }

  /**
   * Whether an answer of `name` that is cheap to get again (shared through the store) is
   * worth keeping: when the cache has room, or when `name` was asked for last more recently
   * than the least recently used answer kept was, so that it would have stayed had it been
   * kept then. A reader going round more repositories than the cache holds gets none kept
   * (each would push out another before it is asked again). Records that `name` was asked.
   */
  admits(name: string): boolean {
    const now = this.#now();
    const last = this.#asked.get(name);
    this.#asked.delete(name);
    this.#asked.set(name, now);
    if (this.#asked.size > 2 * this.#maxEntries) {
      for (const oldest of this.#asked.keys()) {
        this.#asked.delete(oldest);
        break;
      }
    }
    if (this.#bytes < this.maxBytes / 2) return true;
    const oldest = this.#entries.values().next().value;
    return last !== undefined && (oldest === undefined || now - last <= now - oldest.usedAt);
  }

  /** Whether a body of `name` is kept, of whichever version (no use mark). */
  holds(name: string): boolean {
    return this.#entries.has(name);
  }

  /**
   * The body for `name` at `version`: from the cache, from a build already under way for
   * the same version, or from `build()` (kept for the next reader when it fits). A build
   * that hands over a body made earlier (another replica's, shared through the store) says
   * when in `made.builtAt`, so that it is not served past its maximum age, and may leave it
   * out of the cache (`made.keep = false`).
   */
  async get(
    name: string,
    version: string,
    build: (made: MadeAnswer) => Promise<RepositoryAnswer>,
  ): Promise<RepositoryAnswer> {
    const hit = this.peek(name, version);
    if (hit !== undefined) return hit;
    const pending = this.#building.get(name);
    if (pending?.version === version) return pending.body;
    const made: MadeAnswer = {};
    const body = build(made);
    const mine = { version, body };
    this.#building.set(name, mine);
    try {
      const built = await body;
      if (made.keep !== false) {
        const now = this.#now();
        this.#put(name, { version, body: built, builtAt: made.builtAt ?? now, usedAt: now });
      }
      return built;
    } finally {
      if (this.#building.get(name) === mine) this.#building.delete(name);
    }
  }

  /**
   * The stored state of `name` from `read()`, shared by every caller for `ttlMs`: reading
   * the record means a store round trip and decoding its whole tag list, which a hundred
   * readers at once need not each do. A failed read is not kept.
   */
  version(
    name: string,
    read: () => Promise<StoredRepositoryState | undefined>,
    ttlMs = 1_000,
  ): Promise<StoredRepositoryState | undefined> {
    const now = this.#now();
    const known = this.#versions.get(name);
    if (known && now - known.at < ttlMs) return known.version;
    // Forget what is past its time first: a reader of 10,000 repositories kept up to 16,384
    // states for nothing (2.3 MB at 2,000,000 tags). Deleting before setting keeps the table
    // oldest first, so this stops at the first fresh entry.
    for (const [key, v] of this.#versions) {
      if (now - v.at < ttlMs) break;
      this.#versions.delete(key);
    }
    const version = read();
    this.#versions.delete(name);
    this.#versions.set(name, { at: now, version });
    version.catch(() => {
      if (this.#versions.get(name)?.version === version) this.#versions.delete(name);
    });
    return version;
  }

  /**
   * Forgets the stored state read last for `name`, so that the next reader reads it again:
   * its record was just written (a tag event), and a reader acting on the event must not
   * get the state read before it for up to `ttlMs`.
   */
  forgetVersion(name: string): void {
    this.#versions.delete(name);
  }

  /** Forgets every stored state (record writes may have gone unnoticed). */
  forgetVersions(): void {
    this.#versions.clear();
  }

  /**
   * Holds `body` for `name` in place of the one kept, when that is still the one built
   * from `version`: the same answer in fewer bytes (its gzip, once it was shared).
   */
  replace(name: string, version: string, body: RepositoryAnswer): void {
    const kept = this.#entries.get(name);
    if (kept?.version !== version) return;
    this.#bytes += answerBytes(body) - answerBytes(kept.body);
    kept.body = body;
  }

  /** Repositories and bytes held, and stored states shared now. */
  stats(): { entries: number; bytes: number; states: number } {
    return { entries: this.#entries.size, bytes: this.#bytes, states: this.#versions.size };
  }

  #put(name: string, entry: Entry): void {
    this.#drop(name);
    if (answerBytes(entry.body) > this.maxBytes) return;
    this.#entries.set(name, entry);
    this.#bytes += answerBytes(entry.body);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries && this.#bytes <= this.maxBytes) break;
      this.#drop(oldest);
    }
  }

  #drop(name: string): void {
    const old = this.#entries.get(name);
    if (!old) return;
    this.#entries.delete(name);
    this.#bytes -= answerBytes(old.body);
  }
}
