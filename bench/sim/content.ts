/**
 * One simulated registry's content, generated from a seed: repositories with a skewed number
 * of tags (most small, a few huge), tag -> image, images built lazily from their id and
 * memoised in a bounded LRU, a digest index for GETs by digest, and the changes the churn
 * generator makes (moved and added tags). It is also the ground truth tests compare with.
 */
import {
  DEFAULT_KIND_MIX,
  type GeneratedImage,
  generateImage,
  type KindMix,
  MAX_LOCAL_IMAGES,
  packImage,
  type Served,
  unpackImage,
} from "./images.js";
import { hash32, seededRandom, unit } from "./rng.js";

/** What a registry holds. */
export interface FleetSpec {
  seed: string;
  /** Number of generated repositories (besides `huge`). */
  repositories: number;
  /** Tags over all generated repositories (besides `huge`); spread with a heavy-tailed skew. */
  tags: number;
  /** Repositories with exactly this many tags each (counting `latest`), named `huge/repo-<i>`. */
  huge?: number[];
  /** Prefix of every repository name (e.g. an Artifactory virtual repository, `virtual/`). */
  namePrefix?: string | undefined;
  kindMix?: KindMix;
  /**
   * Images kept in memory (default 1,000); the rest are rebuilt from their id when asked
   * for. A client asks for an image a few times within a second (manifest, then config and
   * platform manifests by digest), so a few hundred suffice; tens of thousands of images on
   * the heap made the simulator's major GCs stall every registry it serves for up to seconds.
   */
  cacheImages?: number;
  /**
   * Digests remembered for GETs by digest (default 2,000,000), kept per repository, the
   * least recently used repositories forgotten first; a forgotten repository's digests are
   * found again by rebuilding its images.
   */
  digestIndexEntries?: number;
}

type TagStyle = "semver" | "build" | "hash";

interface Repo {
  index: number;
  name: string;
  /** Indexed tags `0..indexed-1`, plus `latest`. */
  indexed: number;
  style: TagStyle;
  /** Tags per image: 1 = every tag its own image. */
  share: number;
  /** Tags moved or added by churn -> local image, in the order they last changed. */
  changed: Map<string, number>;
  nextLocal: number;
}

/** A tag of the truth: its name and the digest it points at. */
export interface TruthTag {
  tag: string;
  digest: string;
}

/** Manifests whose HEAD answer is kept per registry (a fleet 20 times the 100,000-tag one). */
const MAX_MANIFEST_HEADS = 2_000_000;

/** Where a digest leads: the image id and what it is (0 manifest, 1 config, 2 layer). */
const KIND_MANIFEST = 0;

/** Order of a tag listing. */
export type TagOrder = "lexical" | "oldest-first";

class Lru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(
    readonly max: number,
    readonly weigh: (v: V) => number = () => 1,
  ) {}
  #weight = 0;
  get size(): number {
    return this.#map.size;
  }
  get(k: K): V | undefined {
    const v = this.#map.get(k);
    if (v !== undefined) {
      this.#map.delete(k);
      this.#map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    const old = this.#map.get(k);
    if (old !== undefined) {
      this.#weight -= this.weigh(old);
      this.#map.delete(k);
    }
    this.#map.set(k, v);
    this.#weight += this.weigh(v);
    for (const [key, value] of this.#map) {
      if (this.#weight <= this.max || this.#map.size <= 1) break;
      this.#map.delete(key);
      this.#weight -= this.weigh(value);
    }
  }
  delete(k: K): void {
    const old = this.#map.get(k);
    if (old === undefined) return;
    this.#weight -= this.weigh(old);
    this.#map.delete(k);
  }
}

/**
 * A table of numbers (integers below 2^53) to numbers: open addressing in two Float64Arrays,
 * so that hundreds of thousands of entries are two buffers outside V8's heap instead of Map
 * entries and heap numbers (keys and values above 2^31) that every major GC must mark. Keys
 * are stored plus one, 0 meaning an empty slot.
 */
class NumberTable {
  #keys = new Float64Array(16);
  #values = new Float64Array(16);
  size = 0;

  /** A key's first slot: its two 32-bit halves mixed (image ids differ in high bits too). */
  #slot(key: number, mask: number): number {
    let h = Math.imul((key >>> 0) ^ Math.imul((key / 0x1_0000_0000) >>> 0, 0x85ebca6b), 0x9e3779b1);
    h ^= h >>> 15;
    return h & mask;
  }

  get(key: number): number | undefined {
    const keys = this.#keys;
    const mask = keys.length - 1;
    const stored = key + 1;
    for (let i = this.#slot(key, mask); ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === stored) return this.#values[i];
      if (k === 0) return undefined;
    }
  }

  /** Sets the value; true when the key is new. */
  set(key: number, value: number): boolean {
    if ((this.size + 1) * 2 > this.#keys.length) this.#grow();
    const keys = this.#keys;
    const mask = keys.length - 1;
    const stored = key + 1;
    for (let i = this.#slot(key, mask); ; i = (i + 1) & mask) {
      const k = keys[i] as number;
      if (k === stored || k === 0) {
        this.#values[i] = value;
        if (k === stored) return false;
        keys[i] = stored;
        this.size++;
        return true;
      }
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const values = this.#values;
    this.#keys = new Float64Array(keys.length * 2);
    this.#values = new Float64Array(keys.length * 2);
    this.size = 0;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as number;
      if (k !== 0) this.set(k - 1, values[i] as number);
    }
  }
}

/** What a HEAD of a manifest answers: its digest, media type and size. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

/**
 * The digest, size and media type of every manifest built (up to `max`), by image id, in
 * typed arrays outside V8's heap: a poll HEADs every tag of a repository each interval, and
 * with images rebuilt whenever the cache has let them go, each HEAD would rebuild one (three
 * sha256s and two JSON documents) for three of its fields.
 */
class ManifestHeads {
  readonly #slots = new NumberTable();
  readonly #mediaTypes: string[] = [];
  #digests = new Uint8Array(32 * 1024);
  #sizes = new Uint32Array(1024);
  #types = new Uint8Array(1024);
  constructor(readonly max: number) {}

  get(id: number): ManifestHead | undefined {
    const slot = this.#slots.get(id);
    if (slot === undefined) return undefined;
    const hex = Buffer.from(this.#digests.buffer, slot * 32, 32).toString("hex");
    return {
      digest: `sha256:${hex}`,
      mediaType: this.#mediaTypes[this.#types[slot] as number] as string,
      size: this.#sizes[slot] as number,
    };
  }

  add(image: GeneratedImage): void {
    const n = this.#slots.size;
    if (n >= this.max || this.#slots.get(image.id) !== undefined) return;
    let type = this.#mediaTypes.indexOf(image.mediaType);
    if (type < 0) type = this.#mediaTypes.push(image.mediaType) - 1;
    if (n === this.#sizes.length) {
      const grow = <T extends Uint8Array | Uint32Array>(a: T, make: (length: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.#digests = grow(this.#digests, (l) => new Uint8Array(l));
      this.#sizes = grow(this.#sizes, (l) => new Uint32Array(l));
      this.#types = grow(this.#types, (l) => new Uint8Array(l));
    }
    this.#digests.set(Buffer.from(image.digest.slice("sha256:".length), "hex"), n * 32);
    this.#sizes[n] = image.bytes.length;
    this.#types[n] = type;
    this.#slots.set(image.id, n);
  }
}

/**
 * digestKey -> image id * 4 + what (0 manifest, 1 config, 2 layer), per repository, with a
 * bound on entries: the least recently used repositories are dropped whole.
 */
class DigestIndex {
  readonly #repos = new Map<number, { map: NumberTable; indexedLocals: number }>();
  #entries = 0;
  constructor(readonly maxEntries: number) {}

  /** The repository's entry (made if missing), marked as just used. */
  repository(repo: number): { map: NumberTable; indexedLocals: number } {
    let r = this.#repos.get(repo);
    if (r !== undefined) this.#repos.delete(repo);
    else r = { map: new NumberTable(), indexedLocals: 0 };
    this.#repos.set(repo, r);
    return r;
  }

  lookup(repo: number, key: number): number | undefined {
    return this.#repos.get(repo)?.map.get(key);
  }

  put(repo: number, key: number, value: number): void {
    const r = this.repository(repo);
    if (r.map.set(key, value)) this.#entries++;
    if (this.#entries <= this.maxEntries) return;
    for (const [k, old] of this.#repos) {
      if (this.#entries <= this.maxEntries) break;
      if (k === repo) continue;
      this.#repos.delete(k);
      this.#entries -= old.map.size;
    }
  }
}

/** The part of a digest used as index key: 52 bits of its hex, exact in a double. */
function digestKey(digest: string): number | undefined {
  if (!digest.startsWith("sha256:") || digest.length !== 71) return undefined;
  const n = Number.parseInt(digest.slice(7, 20), 16);
  return Number.isNaN(n) ? undefined : n;
}

interface TagList {
  tags: string[];
  position?: Map<string, number>;
}

export class RegistryContent {
  readonly seed: string;
  readonly kindMix: KindMix;
  readonly #repos: Repo[] = [];
  readonly #byName = new Map<string, Repo>();
  readonly #images: Lru<number, GeneratedImage>;
  readonly #digests: DigestIndex;
  readonly #heads = new ManifestHeads(MAX_MANIFEST_HEADS);
  readonly #lists = new Lru<string, TagList>(600_000, (l) => l.tags.length + 1);
  #churnSeq = 0;
  #imageHits = 0;
  #imagesBuilt = 0;

  constructor(spec: FleetSpec) {
    this.seed = spec.seed;
    this.kindMix = spec.kindMix ?? DEFAULT_KIND_MIX;
    this.#images = new Lru(spec.cacheImages ?? 1000);
    this.#digests = new DigestIndex(spec.digestIndexEntries ?? 2_000_000);
    const prefix = spec.namePrefix ?? "";
    (spec.huge ?? []).forEach((count, i) => {
      this.#add(`${prefix}huge/repo-${i}`, Math.max(1, count) - 1);
    });
    for (const [i, count] of skewedCounts(spec).entries()) {
      this.#add(`${prefix}org-${i % 97}/app-${i}`, count - 1);
    }
  }

  #add(name: string, indexed: number): void {
    const index = this.#repos.length;
    const u = unit(this.seed, "share", index);
    const styleU = unit(this.seed, "style", index);
    const repo: Repo = {
      index,
      name,
      indexed: Math.min(indexed, MAX_LOCAL_IMAGES / 2),
      style: styleU < 0.5 ? "semver" : styleU < 0.8 ? "build" : "hash",
      share: u < 0.8 ? 1 : u < 0.95 ? 2 : 10,
      changed: new Map(),
      nextLocal: 0,
    };
    repo.nextLocal = Math.ceil(repo.indexed / repo.share) + 1;
    this.#repos.push(repo);
    this.#byName.set(name, repo);
  }

  /** Repository names, in generation order (huge ones first). */
  repositories(): string[] {
    return this.#repos.map((r) => r.name);
  }

  hasRepository(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Number of tags of a repository (including `latest` and churned ones). */
  tagCount(name: string): number {
    const repo = this.#repo(name);
    let added = 0;
    for (const tag of repo.changed.keys()) if (this.#parseIndexed(repo, tag) === undefined) added++;
    return repo.indexed + 1 + added;
  }

  /** Every tag of the repository in the given order (the ground truth of a listing). */
  tags(name: string, order: TagOrder = "lexical"): string[] {
    return this.#list(this.#repo(name), order).tags;
  }

  /**
   * A page: up to `n` tags after `last` (exclusive) in the order. For the lexical order
   * `last` need not be a tag (distribution's semantics); otherwise an unknown `last` ends.
   */
  page(name: string, order: TagOrder, after: string | undefined, n: number): string[] {
    const list = this.#list(this.#repo(name), order);
    return list.tags.slice(...this.#pageRange(list, order, after, n));
  }

  /** The index in the order of the first tag after `after`. */
  startAfter(name: string, order: TagOrder, after: string | undefined): number {
    const list = this.#list(this.#repo(name), order);
    return this.#pageRange(list, order, after, 0)[0];
  }

  #pageRange(
    list: TagList,
    order: TagOrder,
    after: string | undefined,
    n: number,
  ): [number, number] {
    let start = 0;
    if (after !== undefined) {
      if (order === "lexical") {
        let lo = 0;
        let hi = list.tags.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if ((list.tags[mid] as string) <= after) lo = mid + 1;
          else hi = mid;
        }
        start = lo;
      } else {
        if (list.position === undefined) {
          list.position = new Map(list.tags.map((t, i) => [t, i]));
        }
        const at = list.position.get(after);
        start = at === undefined ? list.tags.length : at + 1;
      }
    }
    return [start, Math.min(list.tags.length, start + n)];
  }

  /** The image a tag points at, or undefined when the repository has no such tag. */
  resolveTag(name: string, tag: string): GeneratedImage | undefined {
    const repo = this.#byName.get(name);
    if (repo === undefined) return undefined;
    const local = this.#localOf(repo, tag);
    if (local === undefined) return undefined;
    return this.image(packImage({ repo: repo.index, local, part: 0 }));
  }

  /** A manifest of the repository by digest (tagged, or a platform manifest of an index). */
  manifestByDigest(name: string, digest: string): GeneratedImage | undefined {
    const found = this.#byDigest(name, digest);
    if (found === undefined || found.what !== KIND_MANIFEST) return undefined;
    const image = this.image(found.id);
    return image.digest === digest ? image : undefined;
  }

  /**
   * What a HEAD of a manifest by tag or digest answers (undefined where a GET is a 404): from
   * the table of manifests built when it is there, so that a poll's HEAD rebuilds nothing.
   */
  manifestHead(name: string, ref: string): ManifestHead | undefined {
    if (ref.startsWith("sha256:")) {
      const found = this.#byDigest(name, ref);
      if (found === undefined || found.what !== KIND_MANIFEST) return undefined;
      const head = this.#heads.get(found.id) ?? headOf(this.image(found.id));
      return head.digest === ref ? head : undefined;
    }
    const repo = this.#byName.get(name);
    if (repo === undefined) return undefined;
    const local = this.#localOf(repo, ref);
    if (local === undefined) return undefined;
    const id = packImage({ repo: repo.index, local, part: 0 });
    return this.#heads.get(id) ?? headOf(this.image(id));
  }

  /** A config or layer blob of the repository by digest. */
  blob(name: string, digest: string): Served | undefined {
    const found = this.#byDigest(name, digest);
    if (found === undefined || found.what === KIND_MANIFEST) return undefined;
    const blob = this.image(found.id).blobs[found.what - 1];
    return blob?.digest === digest ? blob : undefined;
  }

  #byDigest(name: string, digest: string): { id: number; what: number } | undefined {
    const repo = this.#byName.get(name);
    const key = digestKey(digest);
    if (repo === undefined || key === undefined) return undefined;
    let v = this.#digests.lookup(repo.index, key);
    const state = this.#digests.repository(repo.index);
    if (v === undefined && state.indexedLocals < repo.nextLocal) {
      // A digest not generated here yet, or forgotten (a client that knows it from an
      // earlier run, from another process built from the same seed, or from long ago):
      // build the repository's images, tagged or not, so every digest it served is known.
      for (let local = state.indexedLocals; local < repo.nextLocal; local++) {
        this.#register(this.image(packImage({ repo: repo.index, local, part: 0 })));
      }
      state.indexedLocals = repo.nextLocal;
      v = this.#digests.lookup(repo.index, key);
    }
    if (v === undefined) return undefined;
    const what = v % 4;
    const id = (v - what) / 4;
    if (unpackImage(id).repo !== repo.index) return undefined;
    return { id, what };
  }

  /** Images asked for that were in memory, and those built (again). */
  imageCounts(): { cached: number; hits: number; built: number } {
    return { cached: this.#images.size, hits: this.#imageHits, built: this.#imagesBuilt };
  }

  /** Generates (or recalls) image `id`, registering its digests for GETs by digest. */
  image(id: number): GeneratedImage {
    const hit = this.#images.get(id);
    if (hit !== undefined) {
      this.#imageHits++;
      return hit;
    }
    this.#imagesBuilt++;
    const image = generateImage(this.seed, id, this.kindMix);
    this.#register(image);
    this.#images.set(id, image);
    return image;
  }

  #register(image: GeneratedImage): void {
    this.#heads.add(image);
    const repo = unpackImage(image.id).repo;
    const put = (digest: string, what: number) => {
      const key = digestKey(digest);
      if (key !== undefined) this.#digests.put(repo, key, image.id * 4 + what);
    };
    put(image.digest, KIND_MANIFEST);
    for (const [i, b] of image.blobs.entries()) put(b.digest, i + 1);
    for (const child of image.children) {
      this.#register(child);
      this.#images.set(child.id, child);
    }
  }

  /** The full truth of a repository: every tag and its digest, in lexical order. */
  truth(name: string): TruthTag[] {
    return this.tags(name, "lexical").map((tag) => ({
      tag,
      digest: (this.resolveTag(name, tag) as GeneratedImage).digest,
    }));
  }

  /** Up to `count` of the most recently pushed tags, newest first, without listing them all. */
  recentTags(name: string, count: number): string[] {
    const repo = this.#repo(name);
    const out = [...repo.changed.keys()].slice(-count).reverse();
    if (out.length < count && !repo.changed.has("latest")) out.push("latest");
    for (let i = repo.indexed - 1; i >= 0 && out.length < count; i--) {
      const tag = tagName(repo, this.seed, i);
      if (!repo.changed.has(tag)) out.push(tag);
    }
    return out;
  }

  /** Points `tag` at a new image (the churn generator's "move"); returns the new image. */
  moveTag(name: string, tag: string): GeneratedImage {
    const repo = this.#repo(name);
    if (this.#localOf(repo, tag) === undefined) throw new Error(`no tag ${name}:${tag}`);
    return this.#setTag(repo, tag);
  }

  /** Adds a new tag on a new image; returns its name and image. */
  addTag(name: string): { tag: string; image: GeneratedImage } {
    const repo = this.#repo(name);
    const tag = `churn-${++this.#churnSeq}-${(hash32(this.seed, "churn", this.#churnSeq) & 0xffff).toString(16)}`;
    return { tag, image: this.#setTag(repo, tag) };
  }

  #setTag(repo: Repo, tag: string): GeneratedImage {
    if (repo.nextLocal >= MAX_LOCAL_IMAGES) throw new Error(`repository ${repo.name} is full`);
    const local = repo.nextLocal++;
    repo.changed.delete(tag);
    repo.changed.set(tag, local);
    this.#lists.delete(`${repo.index}:lexical`);
    this.#lists.delete(`${repo.index}:oldest-first`);
    return this.image(packImage({ repo: repo.index, local, part: 0 }));
  }

  #repo(name: string): Repo {
    const repo = this.#byName.get(name);
    if (repo === undefined) throw new Error(`no repository ${name}`);
    return repo;
  }

  #list(repo: Repo, order: TagOrder): TagList {
    const key = `${repo.index}:${order}`;
    const hit = this.#lists.get(key);
    if (hit !== undefined) return hit;
    const tags: string[] = [];
    for (let i = 0; i < repo.indexed; i++) {
      const tag = tagName(repo, this.seed, i);
      if (!repo.changed.has(tag)) tags.push(tag);
    }
    // `latest` was pushed last of the generated tags; changed tags after it, in change order.
    if (!repo.changed.has("latest")) tags.push("latest");
    for (const tag of repo.changed.keys()) tags.push(tag);
    if (order === "lexical") tags.sort();
    const list = { tags };
    this.#lists.set(key, list);
    return list;
  }

  #localOf(repo: Repo, tag: string): number | undefined {
    const changed = repo.changed.get(tag);
    if (changed !== undefined) return changed;
    if (tag === "latest") return Math.floor(Math.max(0, repo.indexed - 1) / repo.share);
    const i = this.#parseIndexed(repo, tag);
    return i === undefined ? undefined : Math.floor(i / repo.share);
  }

  #parseIndexed(repo: Repo, tag: string): number | undefined {
    let i: number;
    if (repo.style === "build") {
      if (!tag.startsWith("build-")) return undefined;
      i = Number(tag.slice(6));
    } else if (repo.style === "semver") {
      const m = /^v(\d+)\.(\d+)\.(\d+)$/.exec(tag);
      if (m === null) return undefined;
      i = Number(m[1]) * 10_000 + Number(m[2]) * 100 + Number(m[3]);
    } else {
      const m = /^r(\d+)-[0-9a-f]{4}$/.exec(tag);
      if (m === null) return undefined;
      i = Number(m[1]);
    }
    if (!Number.isInteger(i) || i < 0 || i >= repo.indexed) return undefined;
    return tagName(repo, this.seed, i) === tag ? i : undefined;
  }
}

function headOf(image: GeneratedImage): ManifestHead {
  return { digest: image.digest, mediaType: image.mediaType, size: image.bytes.length };
}

function tagName(repo: Repo, seed: string, i: number): string {
  switch (repo.style) {
    case "build":
      return `build-${i}`;
    case "semver":
      return `v${Math.floor(i / 10_000)}.${Math.floor(i / 100) % 100}.${i % 100}`;
    default:
      return `r${i}-${(hash32(seed, repo.index, i) & 0xffff).toString(16).padStart(4, "0")}`;
  }
}

/**
 * Tags per repository with a heavy tail (Pareto, alpha 1.1): most repositories get a few
 * tags, a handful get thousands. Each gets at least 1; the sum is close to `spec.tags`.
 */
function skewedCounts(spec: FleetSpec): number[] {
  const n = spec.repositories;
  if (n <= 0) return [];
  const random = seededRandom(hash32(spec.seed, "counts"));
  const weights = Array.from({ length: n }, () => (1 - random()) ** (-1 / 1.1));
  const sum = weights.reduce((a, b) => a + b, 0);
  const spare = Math.max(0, spec.tags - n);
  return weights.map((w) => 1 + Math.floor((w / sum) * spare));
}
