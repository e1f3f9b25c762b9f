/**
 * What regscan knows about an image and a repository (Flux v1's `image.Info`,
 * `ImageEntry` and `RepositoryMetadata`). These shapes are the contract every layer speaks;
 * their JSON forms are in json.ts, timestamp labels in label-timestamps.ts.
 */
import type { ImageRef } from "./ref.js";

/** A string map: image labels (`config.Labels`) or OCI annotations. */
export type Labels = Record<string, string>;

/** An OS / architecture / variant triple, as in an OCI index. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  osVersion?: string;
}

/** Everything known about the image behind one tag or digest. */
export interface ImageInfo {
  /** The reference it was fetched as (repository plus tag, or digest). */
  ref: ImageRef;
  /** Digest of what the reference resolves to at the top level (what `HEAD` returns). */
  digest: string;
  /** The chosen platform manifest's digest when the top level is an index. */
  platformDigest?: string;
  /** The config blob digest. */
  imageID?: string;
  /** Media type of the top-level manifest. */
  mediaType: string;
  /** Creation time from the config blob. */
  createdAt?: Date;
  /**
   * The image config's labels, exactly as `docker inspect` (`Config.Labels`) and
   * `skopeo inspect` (`Labels`) show them; `container_config.Labels` when the config has
   * none (older builders). Empty when there is no image config (an OCI artifact).
   * Annotations are never mixed in.
   */
  labels: Labels;
  /**
   * The image manifest's OCI annotations (for an index, the chosen platform's manifest).
   * regscan always sets it (empty when there are none); optional so that code building an
   * ImageInfo by hand need not.
   */
  annotations?: Labels;
  /** The index's own OCI annotations, when the reference resolves to an index. */
  indexAnnotations?: Labels;
  /** The platform described (the chosen one for an index). */
  platform?: Platform;
  /** Every platform an index lists (one element for a single manifest). */
  platforms: Platform[];
  /** When regscan fetched this. */
  lastFetched?: Date;
}

/** Either the image's info or the reason it was excluded, never both. */
export type ImageEntry =
  | { readonly info: ImageInfo; readonly excludedReason?: undefined }
  | { readonly info?: undefined; readonly excludedReason: string };

/** A repository's tags and the images behind them. */
export interface RepositoryMetadata {
  /** Every tag, in the registry's order. */
  tags: string[];
  /** Image info by tag, for the tags whose image is known. */
  images: Map<string, ImageInfo>;
}
