/**
 * How a scan asks for tags it has never seen: `HEAD` first (a tag on an image already known
 * then costs no `GET`) or one `GET` by tag (a new image then costs its manifest and config,
 * not a `HEAD` more). Chosen per repository from how often its tags repeat an image, as seen
 * so far, and per host from whether a `GET` spends a pull quota. Known tags always go `HEAD`
 * first.
 */
import { followAbort } from "../abort.js";

/**
 * A manifest `GET` weighs this many `HEAD`s (bytes, and the weight budgets give it). `HEAD`
 * first costs a request more for a new image and saves a `GET` for a known one, so it pays
 * when the chance that a new tag's image is known exceeds 1 / GET_WEIGHT.
 */
export const GET_WEIGHT = 2;

/**
 * Tags (in the index or resolved in the scan) needed before a repository's own sharing
 * decides; below it, the host's sharing fills in, and without that `HEAD` first is kept.
 */
export const SHARING_SAMPLE = 32;

/** While a scan takes its sample, its counts are recorded for its host every this many tags. */
export const PARTIAL_RECORD_EVERY = 8;

/** Docker Hub's API host: its manifest `GET`s are pulls counted against a quota, `HEAD`s not. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** Repositories remembered per host, and hosts remembered (oldest forgotten first). */
const MAX_REPOSITORIES_PER_HOST = 10_000;
const MAX_HOSTS = 1000;

/** One repository's counts as a host keeps them (weighted to at most {@link SHARING_SAMPLE} tags). */
export interface RepositorySharing {
  repository: string;
  tags: number;
  /** Of those, tags whose image an earlier one had (tags less distinct images). */
  repeats: number;
}

/**
 * What a {@link HostSharing} tells whoever keeps it in step with other replicas (see
 * host-sharing-record.ts): called synchronously, so a listener only starts its own work.
 */
export interface HostSharingListener {
  /** A choice found too little known about the host to use its sharing. */
  miss(host: string): void;
  /** A repository's counts changed (a scan finished, or one saw its first sample). */
  change(host: string): void;
}

/**
 * One host's repositories' counts (insertion order: the most recently recorded last) with
 * their running totals, so that a repository's prior is not a walk over every repository of
 * its host for each new tag (1,000 repositories a host at 10,000).
 */
class HostCounts {
  readonly repositories = new Map<string, { tags: number; repeats: number }>();
  tags = 0;
  repeats = 0;

  /** Sets `repository`'s counts, as the most recent. */
  set(repository: string, counts: { tags: number; repeats: number }): void {
    this.delete(repository);
    this.repositories.set(repository, counts);
    this.tags += counts.tags;
    this.repeats += counts.repeats;
  }

  delete(repository: string): void {
    const counts = this.repositories.get(repository);
    if (!counts) return;
    this.repositories.delete(repository);
    if (this.repositories.size === 0) {
      // No rounding left behind by the sums.
      this.tags = 0;
      this.repeats = 0;
      return;
    }
    this.tags -= counts.tags;
    this.repeats -= counts.repeats;
  }

  /** Forgets the oldest repositories beyond `max`. */
  keep(max: number): void {
    while (this.repositories.size > max) {
      const oldest = this.repositories.keys().next();
      if (oldest.done) return;
      this.delete(oldest.value);
    }
  }
}

/**
 * Tag sharing per registry host, from the last scan of each of its repositories (each
 * counted once, however often it is scanned), so that a repository with too few tags to
 * judge by itself starts from what its host's others showed. A repository counts at most
 * {@link SHARING_SAMPLE} tags' worth, so one huge repository does not speak for every other.
 */
export class HostSharing {
  readonly #hosts = new Map<string, HostCounts>();
  #listener: HostSharingListener | undefined;

  /** Tells `listener` of misses and changes from now on (one listener; a second replaces it). */
  listen(listener: HostSharingListener | undefined): void {
    this.#listener = listener;
  }

  /** The share of tags whose image an earlier tag had, once the host has shown enough tags. */
  prior(host: string, except?: string): number | undefined {
    const counts = this.#hosts.get(host);
    let tags = counts?.tags ?? 0;
    let repeats = counts?.repeats ?? 0;
    const own = except === undefined ? undefined : counts?.repositories.get(except);
    if (own) {
      tags -= own.tags;
      repeats -= own.repeats;
    }
    if (tags >= SHARING_SAMPLE) return Math.min(1, Math.max(0, repeats / tags));
    this.#listener?.miss(host);
    return undefined;
  }

  /**
   * Whether the host's repositories together count at least `tags` tags (without telling
   * the listener: a check, not a choice).
   */
  hasSeen(host: string, tags: number): boolean {
    return (this.#hosts.get(host)?.tags ?? 0) >= tags;
  }

  /** One repository scan's counts, in place of that repository's previous ones. */
  record({ host, repository, tags, repeats }: ScanSharing): void {
    const counts = this.#touch(host);
    counts.delete(repository);
    if (tags > 0) {
      const weight = Math.min(tags, SHARING_SAMPLE) / tags;
      counts.set(repository, { tags: tags * weight, repeats: repeats * weight });
    }
    counts.keep(MAX_REPOSITORIES_PER_HOST);
    forgetOldest(this.#hosts, MAX_HOSTS);
    this.#listener?.change(host);
  }

  /** The host's repositories' counts, the most recently recorded last. */
  entries(host: string): RepositorySharing[] {
    const out: RepositorySharing[] = [];
    for (const [repository, c] of this.#hosts.get(host)?.repositories ?? []) {
      out.push({ repository, tags: c.tags, repeats: c.repeats });
    }
    return out;
  }

  /**
   * Counts learnt elsewhere (another replica): those of repositories this process has not
   * recorded itself are taken, as older than its own (its own scans are the newer word on
   * a repository it scanned). Counts out of range are clamped. True when any was taken.
   */
  adopt(host: string, entries: readonly RepositorySharing[]): boolean {
    const own = this.#hosts.get(host);
    const adopted = new Map<string, { tags: number; repeats: number }>();
    for (const e of entries) {
      if (own?.repositories.has(e.repository) || adopted.has(e.repository)) continue;
      const tags = Math.min(Math.max(e.tags, 0), SHARING_SAMPLE);
      if (!(tags > 0)) continue;
      adopted.set(e.repository, { tags, repeats: Math.min(Math.max(e.repeats, 0), tags) });
    }
    if (adopted.size === 0) return false;
    // Rebuilt with the adopted first, so that they are forgotten before this process's own.
    const merged = new HostCounts();
    for (const [repository, counts] of adopted) merged.set(repository, counts);
    for (const [repository, counts] of own?.repositories ?? []) merged.set(repository, counts);
    merged.keep(MAX_REPOSITORIES_PER_HOST);
    this.#hosts.delete(host);
    this.#hosts.set(host, merged);
    forgetOldest(this.#hosts, MAX_HOSTS);
    return true;
  }

  /** The host's counts, made the most recently used host. */
  #touch(host: string): HostCounts {
    let counts = this.#hosts.get(host);
    if (counts) this.#hosts.delete(host);
    else counts = new HostCounts();
    this.#hosts.set(host, counts);
    return counts;
  }
}

function forgetOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) {
    const oldest = map.keys().next();
    if (oldest.done) return;
    map.delete(oldest.value);
  }
}

/** One repository scan's sharing, as {@link HostSharing.record} takes it. */
export interface ScanSharing {
  /** The registry's API host (`ImageName.apiHost`). */
  host: string;
  /** The repository (canonical name). */
  repository: string;
  /** Tags whose digest the scan counted (index and new tags). */
  tags: number;
  /** Of those, tags whose digest an earlier one had (tags less distinct digests). */
  repeats: number;
}

/** What a repository's plan starts from. */
export interface NewTagFetchInput {
  /** The registry's API host (`ImageName.apiHost`). */
  host: string;
  /** The repository (canonical name): its own previous scan is not its prior. */
  repository: string;
  /**
   * Whether the host has reported a pull quota on manifest `GET`s (Docker Hub's `ratelimit-*`
   * headers); asked at each choice, since the first answers of a scan may tell it.
   */
  pullQuota: () => boolean;
  /**
   * The top-level digest of each tag the index already holds (one per tag); read only when a
   * tag not in the index comes up, so a scan with none never walks the index for it.
   */
  indexDigests: () => Iterable<string>;
  history: HostSharing;
}

/** One new tag's choice (see {@link NewTagFetchPlan.choose}), to be told how it ended. */
export interface NewTagChoice {
  readonly headFirst: boolean;
  /** The tag resolved to `digest` (by `HEAD` or `GET`); once, before {@link end}. */
  observe(digest: string): void;
  /** The tag's refresh ended (resolved or failed); call it once, in a `finally`. */
  end(): void;
}

/**
 * One repository scan's choice for tags not in its index. The chance that a new tag's image
 * is already known is estimated as the share of tags whose image an earlier tag had (tags
 * less distinct images), over the index and every tag resolved in this scan, so a cold scan
 * learns as it goes. That share is what `HEAD` first saves: of a pair of tags on one image,
 * the first costs its `GET` either way and only the second's is saved. Not the share of tags
 * on an image some other tag has (Good-Turing's estimate for a draw from a fixed set of
 * images): images are pushed with their tags and seldom tagged again, and counting both tags
 * of every pair made `HEAD` first look right at about half the cost of being so (the bench's
 * hosts, whose repositories have a pair or two each, went `HEAD` first for most of their tags).
 */
export class NewTagFetchPlan {
  readonly #input: NewTagFetchInput;
  readonly #dockerHub: boolean;
  readonly #digests = new Set<string>();
  #started = false;
  #tags = 0;
  /** Choices made whose tag has not resolved (or failed) yet. */
  #unresolved = 0;
  /** Choices waiting for the sample (see {@link choose}), woken as tags resolve. */
  #waiting: (() => void)[] = [];
  /** New tags fetched each way in this scan (for the result and metrics). */
  headFirst = 0;
  getFirst = 0;

  constructor(input: NewTagFetchInput) {
    this.#input = input;
    this.#dockerHub = input.host.toLowerCase() === DOCKER_HUB_API_HOST;
  }

  /** Counts the index's tags the first time they matter. */
  #start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const digest of this.#input.indexDigests()) this.#count(digest);
  }

  /**
   * The next new tag's choice, once the repository's own sample can decide it: while fewer
   * than {@link SHARING_SAMPLE} of its tags are known, choices beyond those that complete
   * the sample wait for them to resolve (about one round trip). A scan starts as many tags as
   * its burst at once, so without the wait a repository of a hundred tags was chosen for
   * whole on its host's prior (or, with none yet, `HEAD` first), whatever its own tags then
   * showed. Rejects when `signal` aborts.
   */
  async choose(signal: AbortSignal): Promise<NewTagChoice> {
    while (this.#sampleWaits()) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const unfollow = followAbort(signal, resolve);
        this.#waiting.push(() => {
          unfollow();
          resolve();
        });
      });
    }
    signal.throwIfAborted();
    const headFirst = this.chooseHeadFirst();
    this.#unresolved++;
    let open = true;
    const resolved = () => {
      if (!open) return false;
      open = false;
      this.#unresolved--;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const wake of waiting) wake();
      return true;
    };
    return {
      headFirst,
      observe: (digest) => {
        if (resolved()) this.observe(digest);
      },
      end: () => {
        resolved();
      },
    };
  }

  /** Whether a choice now would be made before the tags that complete the sample resolve. */
  #sampleWaits(): boolean {
    if (this.#unresolved === 0 || this.#dockerHub || this.#input.pullQuota()) return false;
    this.#start();
    return this.#tags < SHARING_SAMPLE && this.#tags + this.#unresolved >= SHARING_SAMPLE;
  }

  /**
   * Whether the next new tag goes `HEAD` first (true) or with one `GET` by tag (false), from
   * what is known now (see {@link choose}, which waits for the sample).
   */
  chooseHeadFirst(): boolean {
    const head = this.#decide();
    if (head) this.headFirst++;
    else this.getFirst++;
    return head;
  }

  #decide(): boolean {
    if (this.#dockerHub || this.#input.pullQuota()) return true;
    this.#start();
    const repeats = this.#tags - this.#digests.size;
    const threshold = 1 / GET_WEIGHT;
    if (this.#tags >= SHARING_SAMPLE) return repeats / this.#tags > threshold;
    const prior = this.#input.history.prior(this.#input.host, this.#input.repository);
    // Too little seen to tell: HEAD first never spends a GET on an image already known.
    if (prior === undefined) return true;
    return (repeats + prior * (SHARING_SAMPLE - this.#tags)) / SHARING_SAMPLE > threshold;
  }

  /** A new tag resolved to `digest` (by `HEAD` or `GET`). */
  observe(digest: string): void {
    this.#start();
    this.#count(digest);
    // While the sample is being taken, the host (and, through the store, the other
    // replicas, which are taking theirs at the same time on the host's other repositories
    // during a cold fill) hear of it every few tags, not only when the scan ends: together
    // they reach a sample sooner than each alone.
    if (this.#tags <= SHARING_SAMPLE && this.#tags % PARTIAL_RECORD_EVERY === 0) this.#record();
  }

  #count(digest: string): void {
    this.#digests.add(digest);
    this.#tags++;
  }

  /** The scan ended: its sharing becomes part of the host's (unless it met no new tag). */
  finish(): void {
    if (!this.#started) return;
    this.#record();
  }

  #record(): void {
    const { host, repository, history } = this.#input;
    const repeats = this.#tags - this.#digests.size;
    history.record({ host, repository, tags: this.#tags, repeats });
  }
}
