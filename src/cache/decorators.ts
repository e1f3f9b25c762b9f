/**
 * Decorators rewrite what the Cache answers (Flux v1's `cache.Decorator`). The one regscan
 * ships prefers an image's timestamp labels over its config's creation time, for the
 * repositories matching some globs (Flux v1's `TimestampLabelWhitelist`).
 */
import picomatch from "picomatch";
import type { ImageInfo, RepositoryMetadata } from "../image/info.js";
import {
  type LabelTimestampFormatError,
  preferLabelTimestamps,
} from "../image/label-timestamps.js";
import type { ImageName } from "../image/ref.js";

/** Rewrites answers; either hook may be left out. Must not mutate its input. */
export interface Decorator {
  /** Rewrites one image (applied to every image of a repository answer as well). */
  image?(name: ImageName, info: ImageInfo): ImageInfo;
  /** Rewrites a whole repository answer, after `image` ran on each image. */
  repository?(name: ImageName, metadata: RepositoryMetadata): RepositoryMetadata;
}

/** Applies the decorators, in order, to a repository answer. */
export function decorateRepository(
  decorators: readonly Decorator[],
  name: ImageName,
  metadata: RepositoryMetadata,
): RepositoryMetadata {
  let out = metadata;
  for (const d of decorators) {
    if (d.image) {
      const images = new Map<string, ImageInfo>();
      for (const [tag, info] of out.images) images.set(tag, d.image(name, info));
      out = { tags: out.tags, images };
    }
    if (d.repository) out = d.repository(name, out);
  }
  return out;
}

/** Applies the decorators' image hooks, in order, to one image. */
export function decorateImage(
  decorators: readonly Decorator[],
  name: ImageName,
  info: ImageInfo,
): ImageInfo {
  let out = info;
  for (const d of decorators) if (d.image) out = d.image(name, out);
  return out;
}

/**
 * For repositories whose canonical name (e.g. `docker.io/library/alpine`) or familiar name
 * matches one of `globs` (picomatch), sets `createdAt` from the first well-formed timestamp
 * label (`org.opencontainers.image.created`, then `org.label-schema.build-date`; labels
 * first, then the manifest's annotations, then the index's); images without one keep their
 * config's creation time. Malformed labels and annotations go to `onLabelError`.
 */
export function timestampLabelDecorator(
  globs: readonly string[],
  onLabelError?: (name: ImageName, info: ImageInfo, error: LabelTimestampFormatError) => void,
): Decorator {
  const matches = globs.length > 0 ? picomatch([...globs]) : () => false;
  const chosen = new Map<string, boolean>();
  const applies = (name: ImageName): boolean => {
    const canonical = name.toString();
    let yes = chosen.get(canonical);
    if (yes === undefined) {
      yes = matches(canonical) || matches(familiarOrCanonical(name));
      chosen.set(canonical, yes);
    }
    return yes;
  };
  return {
    image(name, info) {
      if (!applies(name)) return info;
      const preferred = preferLabelTimestamps(info);
      for (const error of preferred.errors) onLabelError?.(name, info, error);
      return preferred.info;
    },
  };
}

function familiarOrCanonical(name: ImageName): string {
  try {
    return name.familiar();
  } catch {
    return name.toString();
  }
}
