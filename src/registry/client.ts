/**
 * The per-repository remote client (Flux v1's `registry.Client`) and the factory that makes
 * one for a repository and its credentials (`registry.ClientFactory`).
 */

import type { OperationOptions } from "../abort.js";
import type { ImageEntry, Platform } from "../image/info.js";
import type { ImageName } from "../image/ref.js";
import type { Credentials } from "./credentials/credentials.js";

/** What a `HEAD` of a manifest says: the digest the reference resolves to, without a pull. */
export interface ManifestHead {
  digest: string;
  mediaType: string;
  size?: number;
}

/** Options of {@link Client.fetchTag}. */
export interface FetchTagOptions extends OperationOptions {
  /**
   * Called with the digest the tag resolved to, before anything more is fetched: true when
   * the caller already has that image, so that nothing more is fetched for it.
   */
  known?: ((digest: string) => boolean) | undefined;
}

/** What a `GET` by tag found: the verified digest, and the image unless the caller knew it. */
export interface FetchedTag {
  digest: string;
  /** Absent when `known(digest)` said the caller has the image. */
  entry?: ImageEntry;
}

/** Talks to one repository of one registry. */
export interface Client {
  /** Every tag, in the registry's order, following `Link: rel="next"` to the end. */
  tags(opts?: OperationOptions): Promise<string[]>;
  /** The image behind a tag or digest, or an excluded entry saying why it has none. */
  manifest(reference: string, opts?: OperationOptions): Promise<ImageEntry>;
  /** The digest behind a tag or digest from a `HEAD`, or `undefined` when it does not exist. */
  head(reference: string, opts?: OperationOptions): Promise<ManifestHead | undefined>;
  /**
   * A tag's image with one manifest `GET` by tag in place of `HEAD` then `GET` by digest: the
   * digest (verified against the bytes), then the platform manifest and config unless
   * `known(digest)` is true. Optional: without it, `manifest(tag)` does the same work.
   */
  fetchTag?(tag: string, opts?: FetchTagOptions): Promise<FetchedTag>;
}

/** Which call of a {@link Client} a wrapper runs. */
export type ClientCall = "tags" | "manifest" | "head" | "fetchTag";

/**
 * `client` with each call run through `around` (told which call it is and its options), and
 * `fetchTag` only when `client` has it: what wrappers (metrics, the loop brake) share.
 */
export function aroundClientCalls(
  client: Client,
  around: <T>(
    call: ClientCall,
    opts: OperationOptions | undefined,
    run: () => Promise<T>,
  ) => Promise<T>,
): Client {
  const out: Client = {
    tags: (opts) => around("tags", opts, () => client.tags(opts)),
    manifest: (reference, opts) => around("manifest", opts, () => client.manifest(reference, opts)),
    head: (reference, opts) => around("head", opts, () => client.head(reference, opts)),
  };
  const fetchTag = client.fetchTag?.bind(client);
  if (fetchTag) out.fetchTag = (tag, opts) => around("fetchTag", opts, () => fetchTag(tag, opts));
  return out;
}

/** What a factory knows of the registry host behind a repository, for the warmer's choices. */
export interface HostConditions {
  /** Manifest `GET`s spend a pull quota the host reported (Docker Hub's `ratelimit-*`); `HEAD`s do not. */
  pullQuota: boolean;
  /** The host's request budget cannot keep up with what is asked of it. */
  saturated: boolean;
  /** Requests asked for over the rate the budget allows (1 or more: the budget is the bottleneck). */
  utilisation: number;
  /**
   * How long a request asked for now would wait for the budget (its queue, a pause, or the
   * pull quota), in milliseconds; absent when the factory cannot say.
   */
  queueDelayMs?: number | undefined;
  /** Requests let through so far, and the milliseconds they waited for the budget in all. */
  requests: number;
  waitedMs: number;
  /** Requests per second this process's part of the budget allows now; absent when unknown. */
  rateRps?: number | undefined;
}

/** Per-client choices that override the factory's defaults. */
export interface ClientOptions {
  /** The platform to describe when a tag is an index (default: the factory's, else linux/amd64). */
  platform?: Platform | undefined;
  /**
   * The client's requests go ahead of every other client's waiting for the host's request
   * budget (default false): the warmer's webhook and refresh scans, so that a pushed tag is
   * not seen only after a fill's or a poll's queued requests. A signal raises them from
   * when it aborts, those already waiting included (a running scan a webhook names).
   */
  priority?: boolean | AbortSignal | undefined;
}

/** Makes clients; shares transports, challenges, tokens and rate limiters between them. */
export interface ClientFactory {
  clientFor(name: ImageName, creds: Credentials, opts?: ClientOptions): Client;
  /** Tells the rate limiter that a whole pass over `name` succeeded (it may speed up). */
  succeed(name: ImageName): void;
  /** What is known of `name`'s registry host now (pull quota, budget saturation); optional. */
  hostConditions?(name: ImageName): HostConditions | undefined;
}
