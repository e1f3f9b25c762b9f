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

/** Talks to one repository of one registry. */
export interface Client {
  /** Every tag, in the registry's order, following `Link: rel="next"` to the end. */
  tags(opts?: OperationOptions): Promise<string[]>;
  /** The image behind a tag or digest, or an excluded entry saying why it has none. */
  manifest(reference: string, opts?: OperationOptions): Promise<ImageEntry>;
  /** The digest behind a tag or digest from a `HEAD`, or `undefined` when it does not exist. */
  head(reference: string, opts?: OperationOptions): Promise<ManifestHead | undefined>;
}

/** Per-client choices that override the factory's defaults. */
export interface ClientOptions {
  /** The platform to describe when a tag is an index (default: the factory's, else linux/amd64). */
  platform?: Platform;
}

/** Makes clients; shares transports, challenges, tokens and rate limiters between them. */
export interface ClientFactory {
  clientFor(name: ImageName, creds: Credentials, opts?: ClientOptions): Client;
  /** Tells the rate limiter that a whole pass over `name` succeeded (it may speed up). */
  succeed(name: ImageName): void;
}
