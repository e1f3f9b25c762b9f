/**
 * The read side of regscan: what a consumer asks. The Cache implements it from a store; a
 * direct implementation could ask the registry each time.
 */
import type { OperationOptions } from "../abort.js";
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";
import type { ImageName, ImageRef } from "../image/ref.js";
import type { RepositoryStream } from "./repository-stream.js";

/** Answers questions about image repositories (Flux v1's `registry.Registry`). */
export interface Registry {
  /** Every tag of the repository, and the image behind each tag that is known. */
  getImageRepositoryMetadata(name: ImageName, opts?: OperationOptions): Promise<RepositoryMetadata>;
  /**
   * The same answer as `getImageRepositoryMetadata`, its images read a slice of tags at a
   * time (optional: the API server falls back on the whole answer without it).
   */
  streamImageRepository?(name: ImageName, opts?: OperationOptions): Promise<RepositoryStream>;
  /** The image behind one tag or digest. */
  getImage(ref: ImageRef, opts?: OperationOptions): Promise<ImageInfo>;
}
