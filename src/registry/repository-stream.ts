/**
 * A repository's answer read a slice of its tags at a time: a 25,000-tag repository over
 * as many images is tens of megabytes of records, and one reader holding all of them at
 * once took a replica past its heap (`bench:scale` at 10,000 repositories).
 */
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";

/** A tag and the image behind it. */
export type TaggedImage = readonly [tag: string, info: ImageInfo];

/**
 * A repository's tags, and the images behind them in slices: what
 * `getImageRepositoryMetadata` answers, without holding every image at once.
 */
export interface RepositoryStream {
  /** Every tag, in the registry's order (`RepositoryMetadata.tags`). */
  readonly tags: readonly string[];
  /**
   * The images of the tags whose image is known, in the order of `tags`, about
   * `tagsPerSlice` tags at a time (default 1,024). Read as it is iterated: a slice no longer
   * referenced is garbage. Iterate once.
   */
  images(tagsPerSlice?: number): AsyncGenerator<readonly TaggedImage[]>;
}

/** Tags of a repository whose images are read at once, by default. */
export const DEFAULT_TAGS_PER_SLICE = 1_024;

/** A stream over an answer already held whole. */
export function streamOfMetadata(meta: RepositoryMetadata): RepositoryStream {
  return {
    tags: meta.tags,
    async *images(tagsPerSlice = DEFAULT_TAGS_PER_SLICE) {
      let slice: TaggedImage[] = [];
      for (const entry of meta.images) {
        slice.push(entry);
        if (slice.length >= tagsPerSlice) {
          yield slice;
          slice = [];
        }
      }
      if (slice.length > 0) yield slice;
    },
  };
}
