/**
 * Registry mirrors: for a registry with mirrors configured, each request goes to the
 * mirrors first, in order, and to the origin when they fail. What comes back is described
 * with the origin's name, so the cache never learns the mirror's.
 */

import type { OperationOptions } from "../abort.js";
import type { ImageEntry } from "../image/info.js";
import { ImageName } from "../image/ref.js";
import type {
  Client,
  ClientFactory,
  ClientOptions,
  FetchedTag,
  FetchTagOptions,
  HostConditions,
  ManifestHead,
} from "./client.js";
import type { Credentials } from "./credentials/credentials.js";

/** Mirror hosts by registry domain, e.g. `{ "docker.io": ["mirror.local:5000"] }`. */
export type Mirrors = Readonly<Record<string, readonly string[]>>;

/** Told when a mirror failed and the next candidate (another mirror or the origin) is asked. */
export type FallbackListener = (info: { registry: string; mirror: string; error: unknown }) => void;

/** A ClientFactory that puts the configured mirrors in front of their registries. */
export class MirroredClientFactory implements ClientFactory {
  readonly #inner: ClientFactory;
  readonly #mirrors: Map<string, string[]>;
  readonly #onFallback: FallbackListener | undefined;

  constructor(inner: ClientFactory, mirrors: Mirrors, onFallback?: FallbackListener) {
    this.#inner = inner;
    this.#onFallback = onFallback;
    this.#mirrors = new Map(
      Object.entries(mirrors).map(([domain, hosts]) => [
        domain,
        hosts.map((h) => h.replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "")),
      ]),
    );
  }

  clientFor(name: ImageName, creds: Credentials, opts?: ClientOptions): Client {
    const origin = this.#inner.clientFor(name, creds, opts);
    const hosts = this.#mirrors.get(name.domain);
    if (!hosts || hosts.length === 0) return origin;
    const candidates = [
      ...hosts.map((host) => ({
        host,
        client: this.#inner.clientFor(new ImageName(host, name.path), creds, opts),
      })),
      { host: name.domain, client: origin },
    ];
    return new MirroredClient(name, candidates, this.#onFallback);
  }

  hostConditions(name: ImageName): HostConditions | undefined {
    return this.#inner.hostConditions?.(name);
  }

  succeed(name: ImageName): void {
    this.#inner.succeed(name);
    for (const host of this.#mirrors.get(name.domain) ?? [])
      this.#inner.succeed(new ImageName(host, name.path));
  }
}

class MirroredClient implements Client {
  /** Offered when every candidate offers it (they come from one factory, so all or none). */
  readonly fetchTag?: (tag: string, opts?: FetchTagOptions) => Promise<FetchedTag>;
  readonly #name: ImageName;
  readonly #candidates: ReadonlyArray<{ host: string; client: Client }>;
  readonly #onFallback: FallbackListener | undefined;

  constructor(
    name: ImageName,
    candidates: ReadonlyArray<{ host: string; client: Client }>,
    onFallback: FallbackListener | undefined,
  ) {
    this.#name = name;
    this.#candidates = candidates;
    this.#onFallback = onFallback;
    if (candidates.every((c) => c.client.fetchTag)) {
      this.fetchTag = async (tag, opts) => {
        const fetched = await this.#first(
          (c) => (c.fetchTag as NonNullable<Client["fetchTag"]>)(tag, opts),
          opts,
        );
        if (!fetched.entry?.info) return fetched;
        const info = { ...fetched.entry.info, ref: this.#name.withTag(tag) };
        return { digest: fetched.digest, entry: { info } };
      };
    }
  }

  tags(opts?: OperationOptions): Promise<string[]> {
    return this.#first((c) => c.tags(opts), opts);
  }

  async manifest(reference: string, opts?: OperationOptions): Promise<ImageEntry> {
    const entry = await this.#first((c) => c.manifest(reference, opts), opts);
    if (!entry.info) return entry;
    const ref =
      reference.includes(":") && /^[a-z0-9]+:[0-9a-f]+$/i.test(reference)
        ? this.#name.withDigest(reference)
        : this.#name.withTag(reference);
    return { info: { ...entry.info, ref } };
  }

  head(reference: string, opts?: OperationOptions): Promise<ManifestHead | undefined> {
    return this.#first(async (c, last) => {
      const found = await c.head(reference, opts);
      if (found === undefined && !last) throw new Error(`${reference} not found on the mirror`);
      return found;
    }, opts);
  }

  async #first<T>(
    run: (c: Client, last: boolean) => Promise<T>,
    opts: OperationOptions | undefined,
  ): Promise<T> {
    for (let i = 0; i < this.#candidates.length; i++) {
      const candidate = this.#candidates[i]!;
      const last = i === this.#candidates.length - 1;
      try {
        return await run(candidate.client, last);
      } catch (error) {
        if (last || opts?.signal?.aborted) throw error;
        this.#onFallback?.({ registry: this.#name.domain, mirror: candidate.host, error });
      }
    }
    throw new Error("unreachable: no registry to ask");
  }
}
