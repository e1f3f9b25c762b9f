/**
 * The `Client` that talks to a registry over the Distribution API: tags (every page),
 * manifests to `ImageEntry` (index -> platform manifest -> config blob, every digest
 * verified), `HEAD` for the digest alone, and a `GET` by tag that stops at the digest when
 * the caller already has that image. Manifests and config blobs are kept per
 * digest for the client's life, up to a byte bound, so tags sharing an image fetch it once.
 */

import type { OperationOptions } from "../abort.js";
import type { ImageEntry, Platform } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import type { Client, FetchedTag, FetchTagOptions, ManifestHead } from "./client.js";
import { computeDigest, isDigest, parseDigest, verifyDigest } from "./digest.js";
import { DigestMismatchError, type RegistryErrorContext } from "./errors.js";
import { discard, type HttpResponse, RegistryPath, readBounded } from "./http/exchange.js";
import type { RepositoryTransports } from "./http/pipeline.js";
import { expectStatus } from "./http/status.js";
import { listTags } from "./http/tag-list.js";
import type { TagPageCaps } from "./http/tag-page-caps.js";
import { decodeImageConfig, type ImageConfigSummary, MAX_CONFIG_BYTES } from "./manifest/config.js";
import { type DecodedManifest, decodeManifest, MAX_MANIFEST_BYTES } from "./manifest/decode.js";
import { chooseIndexManifest, imageEntryFrom } from "./manifest/entry.js";
import {
  isImageConfigMediaType,
  MANIFEST_ACCEPT,
  normaliseMediaType,
} from "./manifest/media-types.js";
import { manifestDigestBytes } from "./manifest/schema1-payload.js";
import { SharedLoads } from "./shared-loads.js";
import type { InvalidTagsReport } from "./tag-names.js";

/** What a `RemoteClient` is built from (the factory fills this in). */
export interface RemoteClientDeps {
  name: ImageName;
  transports: RepositoryTransports;
  platform: Platform;
  maxTagPages: number;
  maxTags: number;
  tagPageSize: number;
  /** Total deadline of one tag listing (default 5 minutes). */
  tagListTimeoutMs?: number | undefined;
  /** Told about tags a listing dropped for breaking the tag grammar. */
  onInvalidTags?: ((report: InvalidTagsReport) => void) | undefined;
  /** Page sizes hosts refused, shared by the factory's clients. */
  tagPageCaps?: TagPageCaps | undefined;
  /**
   * Most bytes of manifests, and again of config blobs, kept decoded per client (counted
   * as their bodies' lengths; default 256 KiB each). A scan's client lives as long as
   * the scan, and 16 scans run at once: counted in entries (2,000 each), clients of big
   * repositories held 1.8 MB of heap apiece at 10,000 repositories.
   */
  maxCachedDigestBytes?: number | undefined;
}

/** Default `maxCachedDigestBytes`: a few hundred platform manifests and configs. */
export const DEFAULT_CACHED_DIGEST_BYTES = 256 * 1024;

interface FetchedManifest {
  digest: string;
  decoded: DecodedManifest;
  /** The body's length: what keeping it costs, roughly. */
  bytes: number;
}

/** A client for one repository. Make it with `RemoteClientFactory.clientFor`. */
export class RemoteClient implements Client {
  readonly #deps: RemoteClientDeps;
  readonly #host: string;
  readonly #manifests: DigestCache<FetchedManifest>;
  readonly #configs: DigestCache<ImageConfigSummary | undefined>;

  constructor(deps: RemoteClientDeps) {
    this.#deps = deps;
    this.#host = deps.name.apiHost;
    const maxBytes = deps.maxCachedDigestBytes ?? DEFAULT_CACHED_DIGEST_BYTES;
    this.#manifests = new DigestCache(maxBytes);
    this.#configs = new DigestCache(maxBytes);
  }

  /** The repository this client reads. */
  get name(): ImageName {
    return this.#deps.name;
  }

  async tags(opts: OperationOptions = {}): Promise<string[]> {
    return listTags(this.#deps.transports.registry, {
      host: this.#host,
      repository: this.#deps.name.path,
      maxPages: this.#deps.maxTagPages,
      maxTags: this.#deps.maxTags,
      pageSize: this.#deps.tagPageSize,
      pageCaps: this.#deps.tagPageCaps,
      timeoutMs: this.#deps.tagListTimeoutMs,
      onInvalidTags: this.#deps.onInvalidTags,
      signal: opts.signal,
    });
  }

  async head(reference: string, opts: OperationOptions = {}): Promise<ManifestHead | undefined> {
    const ctx = this.#ctx(reference);
    const res = await this.#manifestRequest("HEAD", reference, opts.signal);
    if (res.status === 404) {
      await discard(res);
      return undefined;
    }
    await expectStatus(res, 200, ctx);
    await discard(res);
    const header = res.headers.get("docker-content-digest");
    if (header === null || !isDigest(header)) {
      // Some registries omit the digest on HEAD; a GET (verified) gives it.
      const fetched = await this.#fetchManifest(reference, opts.signal);
      return { digest: fetched.digest, mediaType: fetched.decoded.mediaType };
    }
    if (isDigest(reference) && header !== reference) {
      throw new DigestMismatchError({
        ...ctx,
        what: "manifest (HEAD)",
        expected: reference,
        actual: header,
      });
    }
    const size = Number(res.headers.get("content-length"));
    const found: ManifestHead = {
      digest: header,
      mediaType: normaliseMediaType(res.headers.get("content-type")),
    };
    if (Number.isFinite(size) && res.headers.has("content-length")) found.size = size;
    return found;
  }

  async manifest(reference: string, opts: OperationOptions = {}): Promise<ImageEntry> {
    const top = await this.#fetchManifest(reference, opts.signal);
    return this.#entryFrom(top, reference, opts.signal);
  }

  async fetchTag(tag: string, opts: FetchTagOptions = {}): Promise<FetchedTag> {
    const top = await this.#fetchManifest(tag, opts.signal);
    if (opts.known?.(top.digest)) return { digest: top.digest };
    return { digest: top.digest, entry: await this.#entryFrom(top, tag, opts.signal) };
  }

  /** The image behind a fetched top-level manifest: an index's platform manifest, the config. */
  async #entryFrom(
    top: FetchedManifest,
    reference: string,
    signal: AbortSignal | undefined,
  ): Promise<ImageEntry> {
    const name = this.#deps.name;
    const ref = isDigest(reference) ? name.withDigest(reference) : name.withTag(reference);
    const wanted = this.#deps.platform;
    let inner = top;
    if (top.decoded.kind === "index") {
      const chosen = chooseIndexManifest(top.decoded, wanted);
      if (chosen === undefined) {
        return imageEntryFrom({
          ref,
          digest: top.digest,
          manifest: top.decoded,
          wanted,
          fetchedAt: new Date(),
        });
      }
      inner = await this.#fetchManifest(chosen.digest, signal);
    }
    let config: ImageConfigSummary | undefined;
    if (inner.decoded.kind === "image" && isImageConfigMediaType(inner.decoded.config.mediaType)) {
      config = await this.#fetchConfig({ digest: inner.decoded.config.digest, reference, signal });
    }
    return imageEntryFrom({
      ref,
      digest: top.digest,
      manifest: top.decoded,
      wanted,
      platformManifest: inner === top ? undefined : inner.decoded,
      platformDigest: inner === top ? undefined : inner.digest,
      config,
      fetchedAt: new Date(),
    });
  }

  /** `/v2/NAME/<rest>` on the registry: the origin layer knows its scheme. */
  #path(rest: string): RegistryPath {
    return new RegistryPath(this.#host, `/v2/${this.#deps.name.path}/${rest}`);
  }

  #ctx(reference: string): RegistryErrorContext {
    return { host: this.#host, repository: this.#deps.name.path, reference };
  }

  async #manifestRequest(
    method: "GET" | "HEAD",
    reference: string,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    // Tags and digests need no escaping but `:` reads better unescaped in logs.
    const escaped = encodeURIComponent(reference).replace(/%3A/gi, ":");
    return this.#deps.transports.registry({
      method,
      url: this.#path(`manifests/${escaped}`),
      headers: { accept: MANIFEST_ACCEPT },
      signal,
      operation: `${method} manifest`,
      bodyLimit: method === "GET" ? MAX_MANIFEST_BYTES : undefined,
    });
  }

  /** A manifest by tag or digest; by digest it comes from the cache when it can. */
  #fetchManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    if (isDigest(reference)) {
      return this.#manifests.get(
        reference,
        async (s) => {
          const m = await this.#getManifest(reference, s);
          return { value: m, bytes: m.bytes };
        },
        signal,
      );
    }
    return this.#getManifest(reference, signal).then((m) => {
      this.#manifests.put(m.digest, m, m.bytes);
      return m;
    });
  }

  async #getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const ctx = this.#ctx(reference);
    const res = await this.#manifestRequest("GET", reference, signal);
    await expectStatus(res, 200, ctx);
    const bytes = await readBounded(res, { limit: MAX_MANIFEST_BYTES, what: "manifest", ctx });
    const hashed = manifestDigestBytes(bytes, ctx);
    const header = res.headers.get("docker-content-digest");
    let digest: string;
    if (header !== null && header !== "") {
      digest = verifyDigest(hashed, header, { ...ctx, what: "manifest" });
    } else {
      const algorithm = isDigest(reference) ? parseDigest(reference, ctx).algorithm : "sha256";
      digest = computeDigest(hashed, algorithm);
    }
    // By digest the header is usually that digest, already verified just above.
    if (isDigest(reference) && reference !== header) {
      verifyDigest(hashed, reference, { ...ctx, what: "manifest" });
    }
    const decoded = decodeManifest(bytes, res.headers.get("content-type"), ctx);
    return { digest, decoded, bytes: bytes.byteLength };
  }

  /** The config blob `digest` of the image `reference` names, from the cache when it can. */
  #fetchConfig(config: {
    digest: string;
    reference: string;
    signal: AbortSignal | undefined;
  }): Promise<ImageConfigSummary | undefined> {
    const { digest, reference, signal } = config;
    return this.#configs.get(
      digest,
      async (s) => {
        const ctx = this.#ctx(reference);
        const bytes = await this.#fetchBlob({
          digest,
          limit: MAX_CONFIG_BYTES,
          what: "config blob",
          ctx,
          signal: s,
        });
        return { value: decodeImageConfig(bytes, ctx), bytes: bytes.byteLength };
      },
      signal,
    );
  }

  /** A blob, following redirects (credentials never leave the registry's origin), verified. */
  async #fetchBlob(blob: {
    digest: string;
    /** Most bytes read. */
    limit: number;
    /** What the blob is, for errors and logs, e.g. `config blob`. */
    what: string;
    ctx: RegistryErrorContext;
    signal: AbortSignal | undefined;
  }): Promise<Buffer> {
    const { digest, limit, what, ctx, signal } = blob;
    parseDigest(digest, ctx);
    const res = await this.#deps.transports.redirecting({
      method: "GET",
      url: this.#path(`blobs/${digest}`),
      headers: { accept: "*/*" },
      signal,
      operation: `GET ${what}`,
      bodyLimit: limit,
    });
    await expectStatus(res, 200, { ...ctx, reference: digest });
    const bytes = await readBounded(res, { limit, what, ctx });
    verifyDigest(bytes, digest, { ...ctx, what });
    return bytes;
  }
}

/**
 * Values by digest, bounded by the bytes they were decoded from (oldest out); concurrent
 * loads of one digest share one request.
 */
class DigestCache<T> {
  readonly #values = new Map<string, { value: T; bytes: number }>();
  readonly #loads = new SharedLoads<string, T>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  async get(
    digest: string,
    load: (signal?: AbortSignal) => Promise<{ value: T; bytes: number }>,
    signal?: AbortSignal,
  ): Promise<T> {
    const hit = this.#values.get(digest);
    if (hit) return hit.value;
    return this.#loads.run(
      digest,
      async (s) => {
        const { value, bytes } = await load(s);
        this.put(digest, value, bytes);
        return value;
      },
      signal,
    );
  }

  /** Keeps `value`, decoded from `bytes` bytes, unless that alone is over the bound. */
  put(digest: string, value: T, bytes: number): void {
    if (this.#values.has(digest) || bytes > this.maxBytes) return;
    this.#values.set(digest, { value, bytes });
    this.#bytes += bytes;
    for (const [oldest, held] of this.#values) {
      if (this.#bytes <= this.maxBytes) break;
      this.#values.delete(oldest);
      this.#bytes -= held.bytes;
    }
  }
}
